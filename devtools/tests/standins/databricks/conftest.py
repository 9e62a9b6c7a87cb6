"""The stand-in fixtures the product's Databricks tests start (one stand-in, and one whose Unity Catalog reads
tables on the session's moto S3), used here as they are."""

# Re-exported fixtures: pytest finds a fixture by its name in a conftest module.
from medallion_tests.databricks.conftest import (  # noqa: F401
    local_aws,
    local_databricks,
    s3_storage_options,
    strict_databricks,
    unity_databricks,
    unity_workspace,
    workspace,
)
