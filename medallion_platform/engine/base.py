"""The engine interface: everything transforms, readers and writers use, on every implementation.

Three implementations: `embedded` (SQLFrame on DuckDB, the default), `spark` (local PySpark) and
`databricks` (the cluster's own SparkSession, when a step runs on a Databricks cluster).
"""

import itertools
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

if TYPE_CHECKING:
    from medallion_platform.engine.plans import Template
    from medallion_platform.lake.delta_io import DeltaTableIO

from medallion_platform.settings import EngineKind

__all__ = ["ArrowData", "Engine", "EngineKind", "Frame"]

ArrowData: TypeAlias = pa.Table | pa.RecordBatchReader | ds.Dataset

Frame: TypeAlias = Any
"""A PySpark-API DataFrame of some engine: SQLFrame's on `embedded`, pyspark's on `spark`/`databricks`.
The two share the API but no base class, so this is the one `Any` engines hand out."""


class Engine(ABC):
    """A PySpark-API session plus Arrow, DuckDB and Delta in and out."""

    name: ClassVar[str]
    F: Any
    """The `functions` module of this engine's PySpark API (a module: no better type)."""
    Window: Any
    """The `Window` class of this engine's PySpark API."""

    _ids = itertools.count()

    def unique_name(self, stem: str) -> str:
        return f"{stem}_{next(self._ids)}"

    # -- frames in -------------------------------------------------------------------------
    @abstractmethod
    def dataframe(self, data: ArrowData, name: str = "input") -> Frame:
        """A DataFrame over Arrow data (lazily scanned where the engine can)."""

    @abstractmethod
    def sql(self, query: str, name: str = "query") -> Frame:
        """A DataFrame over a query in the engine's own SQL (DuckDB's, or Spark SQL)."""

    @abstractmethod
    def duckdb_frame(self, connection: duckdb.DuckDBPyConnection, table: str) -> Frame:
        """A DataFrame over a table of a DuckDB connection (a raw batch parsed on the driver):
        no copy when the engine is that DuckDB, else the rows are handed over as Arrow."""

    @abstractmethod
    def delta_frame(
        self,
        table: "DeltaTableIO",
        partition_column: str | None = None,
        values: Sequence[object] | None = None,
        *,
        paths: Collection[str] | None = None,
    ) -> Frame:
        """A DataFrame over a Delta table's current version: only `values` of `partition_column`, and only
        the data files `paths` (relative, as the Delta log names them), if given."""

    # -- results out -----------------------------------------------------------------------
    @abstractmethod
    def to_arrow(self, df: Frame) -> pa.Table:
        """Runs `df` and returns its rows as Arrow."""

    def to_reader(self, df: Frame, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Runs `df` and streams its rows in record batches of at most `batch_rows`."""
        table = self.to_arrow(df)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))

    def count(self, df: Frame) -> int:
        return int(df.count())

    @abstractmethod
    def persist(self, df: Frame) -> Frame:
        """Computes `df` once so several outputs can read it without recomputing."""

    def checkpoint(self, df: Frame) -> Frame:
        """`df` as a fresh plan over the same (lazy) result, where building plans costs in
        proportion to their depth; nothing is computed. The default returns `df` itself."""
        return df

    def planned(self, template: "Template", /, **inputs: Frame) -> Frame:
        """`template.build(self, **inputs)`. An engine whose plans cost more to build than to run (the
        embedded one) reuses the plan an earlier call built over inputs of the same columns and types."""
        return template.build(self, **inputs)

    @abstractmethod
    def child(self) -> "Engine":
        """A child engine on the same session: frames pass freely between the two, and closing the
        child drops only what the child created (a step's persisted tables, not its inputs)."""

    @abstractmethod
    def close(self) -> None:
        """Releases what this engine created."""
