"""Databricks compute for the medallion: the `databricks` environment's step launcher and notebooks. (The local
stand-in of the Databricks REST API is a development tool: `devtools/medallion_devtools/standins/databricks/`.)"""
