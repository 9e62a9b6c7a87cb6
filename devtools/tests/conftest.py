"""The product tests' shared fixtures (a temporary lake, its settings, the contracts), used here as they are."""

# Re-exported fixtures: pytest finds a fixture by its name in a conftest module.
from medallion_tests.conftest import contracts, lake, settings, spark_engine  # noqa: F401

# The session's moto server and a fresh stack per test, from the AWS ingestion tests.
from medallion_tests.ingestion.aws.conftest import local_aws, stack  # noqa: F401
