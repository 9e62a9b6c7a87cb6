"""Local PySpark (`local[2]`): the parity engine, and the model of what runs on Databricks.

Spark cannot load Delta here (delta-spark fetches jars from Maven), so data goes in and out
as Arrow and delta-rs does the Delta IO.
"""

import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.engine.base import ArrowData, Engine

__all__ = ["SparkEngine", "local_spark_session"]


def local_spark_session(master: str = "local[2]") -> Any:
    """A small local session: ANSI mode on (the Spark 4 default), UTC, Arrow transfer on."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, like every local service here
    return (
        SparkSession.builder.master(master)
        .appName("medallion")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )


class SparkEngine(Engine):
    """The PySpark API on a real Spark session."""

    name = "spark"

    def __init__(self, spark: Any | None = None):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        self.F = F
        self.Window = Window
        self.spark = spark or local_spark_session()

    def dataframe(self, data: ArrowData, name: str = "input") -> Any:
        if isinstance(data, ds.Dataset):
            data = data.to_table()
        elif isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        return self.spark.createDataFrame(_plain_types(data))

    def to_arrow(self, df: Any) -> pa.Table:
        return df.toArrow()

    def persist(self, df: Any) -> Any:
        return df.localCheckpoint()

    def close(self) -> None:
        """The Spark session is process-wide (one per test run or worker); it stays up."""


def _plain_types(table: pa.Table) -> pa.Table:
    """Spark's Arrow reader wants plain strings (not large or view strings)."""
    fields = []
    for field in table.schema:
        if pa.types.is_large_string(field.type) or pa.types.is_string_view(field.type):
            field = field.with_type(pa.string())
        fields.append(field)
    return table.cast(pa.schema(fields))
