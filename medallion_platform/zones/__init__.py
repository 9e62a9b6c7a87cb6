"""The zones as plain steps over the lake, the engines and the write layer: raw, trusted, refined (no Dagster)."""
