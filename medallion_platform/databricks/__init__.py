"""Databricks compute for the medallion: the `databricks` environment's clients and, in `standin`, a local
stand-in of the Databricks REST API that the real dagster-databricks and databricks-sdk clients drive."""
