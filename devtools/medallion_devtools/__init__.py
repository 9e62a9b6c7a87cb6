"""Medallion's developer tools, a distribution of their own beside the product (`medallion-devtools`).

- `standins/databricks/`: a local stand-in of the Databricks REST API (DBFS, Jobs, Unity Catalog, SQL
  warehouses); it imports nothing of `medallion_platform` (import-linter contract in `pyproject.toml`).
- `local_aws.py`, `serve.py`: moto's server on 127.0.0.1 with a stack's resources (`medallion local-aws up`).
- `bench/`: `medallion bench`; `chaos/`: `medallion chaos` (kill -9, re-delivery, two writers).
- `commands.py`: the `medallion` subcommands above, found by the product CLI through the `medallion.commands`
  entry-point group, so the product never imports this package.
"""
