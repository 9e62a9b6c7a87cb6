"""The `databricks` engine: the SparkSession the Databricks runtime gives the driver.

Used when a step runs on a cluster (the Databricks step launcher sets `MEDALLION_ENGINE=databricks`
there). It is the Spark engine over the cluster's active session instead of a local one; Delta is
read and written natively when the runtime has it (a real cluster), through delta-rs otherwise
(the local stand-in's cluster, plain PySpark).
"""

from typing import Any

from medallion_platform.engine.spark import SparkEngine

__all__ = ["DatabricksEngine"]


class DatabricksEngine(SparkEngine):
    """The PySpark API on the cluster's own session."""

    name = "databricks"

    def _default_session(self) -> Any:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        # The runtime configures the session; on a driver it already exists, and getOrCreate returns it.
        return active if active is not None else SparkSession.builder.getOrCreate()
