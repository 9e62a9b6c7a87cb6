"""Local PySpark (`local[2]`): the parity engine, and the model of what runs on Databricks.

Spark cannot load Delta here (delta-spark fetches jars from Maven), so a session without Delta
hands its rows to delta-rs as Arrow (`write/writers.py::ArrowDeltaRsWriter`) and reads Delta tables
through delta-rs; a session with Delta (a Databricks cluster) reads and writes them natively.
"""

import os
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.engine.base import ArrowData, Engine, Frame

if TYPE_CHECKING:
    from medallion_platform.lake.delta_io import DeltaTableIO

__all__ = ["SparkEngine", "has_delta", "local_spark_session"]


def local_spark_session(master: str = "local[2]") -> Any:
    """A small local session: ANSI mode on (the Spark 4 default), UTC, Arrow transfer on."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, like every local service here
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (mapInArrow) use this environment
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


def has_delta(spark: Any) -> bool:
    """True when the session can read and write Delta itself: a Databricks runtime, or delta-spark's
    catalog configured (neither is possible here: no Delta jars)."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):  # set by the Databricks runtime on every cluster
        return True
    return "DeltaCatalog" in spark.conf.get("spark.sql.catalog.spark_catalog", "")


class SparkEngine(Engine):
    """The PySpark API on a real Spark session."""

    name = "spark"
    spark: Any
    """The SparkSession this engine's frames live on (pyspark ships no usable stubs)."""

    def __init__(self, spark: Any | None = None):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        self.F = F
        self.Window = Window
        self.spark = spark or self._default_session()

    def _default_session(self) -> Any:
        return local_spark_session()

    def has_delta(self) -> bool:
        """True when the session reads and writes Delta itself (see the module function `has_delta`)."""
        return has_delta(self.spark)

    def dataframe(self, data: ArrowData, name: str = "input") -> Frame:
        if isinstance(data, ds.Dataset):
            data = data.to_table()
        elif isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        return self.spark.createDataFrame(_plain_types(data))

    def sql(self, query: str, name: str = "query") -> Frame:
        return self.spark.sql(query)

    def duckdb_frame(self, connection: duckdb.DuckDBPyConnection, table: str) -> Frame:
        return self.dataframe(connection.sql(f'SELECT * FROM "{table}"').to_arrow_table(), table)

    def delta_frame(
        self,
        table: "DeltaTableIO",
        partition_column: str | None = None,
        values: Sequence[object] | None = None,
        *,
        paths: Collection[str] | None = None,
    ) -> Frame:
        """Spark's own Delta reader when the session has Delta (for `paths` too when they are the files of
        the partitions asked for: Spark prunes to them); else the current version through delta-rs. Files
        outside a partition scope (a batch's new rows) are read through delta-rs and handed over as Arrow."""
        scoped = partition_column is not None and values is not None
        if self.has_delta() and (paths is None or scoped):
            df = self.delta_table(table)
            return df.where(self.F.col(partition_column).isin(*values)) if scoped else df
        scope = ds.field(partition_column).isin(list(values or [])) if scoped else None
        rows = table.read(filter=scope, paths=paths)
        if rows is None:
            raise LookupError(f"{table.uri} is not a Delta table yet: materialize it first")
        return self.dataframe(rows, "delta")

    def delta_table(self, table: "DeltaTableIO", version: int | None = None) -> Frame:
        """The table read natively (a session with Delta): by its three-level name once the catalog lists it,
        by path before its first registration; at `version` (Delta's `versionAsOf`) if given."""
        reader = self.spark.read if version is None else self.spark.read.option("versionAsOf", str(version))
        if table.name is not None and self.spark.catalog.tableExists(table.name):
            return reader.table(table.name)
        return reader.format("delta").load(table.uri)

    def to_arrow(self, df: Frame) -> pa.Table:
        return df.toArrow()

    def persist(self, df: Frame) -> Frame:
        return df.localCheckpoint()

    def child(self) -> "SparkEngine":
        return self

    def close(self) -> None:
        """The Spark session is process-wide (one per test run, worker or cluster); it stays up."""


def _plain_types(table: pa.Table) -> pa.Table:
    """Spark's Arrow reader wants plain strings (not large or view strings)."""
    fields = []
    for field in table.schema:
        if pa.types.is_large_string(field.type) or pa.types.is_string_view(field.type):
            field = field.with_type(pa.string())
        fields.append(field)
    return table.cast(pa.schema(fields))
