"""Medallion: a governed data lakehouse on AWS and Databricks, orchestrated by Dagster."""

import warnings

# Dagster marks `backfill_policy` on `@asset` as beta and warns each time an asset is defined with it:
# every code-server and daemon load in `dagster dev` (about 100 lines in 5 minutes) and every CLI run.
# The partitioned assets use it on purpose (docs/architecture.md, Orchestration); only that warning goes.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
    module=r"dagster\._core\.decorator_utils",
)
