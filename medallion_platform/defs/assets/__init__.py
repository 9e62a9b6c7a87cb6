"""Dagster assets: one step per source (raw, trusted, quarantine) and one per refined table."""
