"""The engine interface shared by the embedded and Spark engines."""

import itertools
from abc import ABC, abstractmethod
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.dataset as ds

__all__ = ["Engine", "build_engine"]

ArrowData: TypeAlias = pa.Table | pa.RecordBatchReader | ds.Dataset


class Engine(ABC):
    """A PySpark-API session plus Arrow in and out."""

    name: str
    F: Any
    """The `functions` module of this engine's PySpark API."""
    Window: Any
    """The `Window` class of this engine's PySpark API."""

    _ids = itertools.count()

    def unique_name(self, stem: str) -> str:
        return f"{stem}_{next(self._ids)}"

    @abstractmethod
    def dataframe(self, data: ArrowData, name: str = "input") -> Any:
        """A DataFrame over Arrow data (lazily scanned where the engine can)."""

    @abstractmethod
    def to_arrow(self, df: Any) -> pa.Table:
        """Runs `df` and returns its rows as Arrow."""

    def to_reader(self, df: Any, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Runs `df` and streams its rows in record batches of at most `batch_rows`."""
        table = self.to_arrow(df)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))

    def count(self, df: Any) -> int:
        return int(df.count())

    @abstractmethod
    def persist(self, df: Any) -> Any:
        """Computes `df` once so several outputs can read it without recomputing."""

    def checkpoint(self, df: Any) -> Any:
        """`df` as a fresh plan over the same (lazy) result, where building plans costs in
        proportion to their depth; nothing is computed. The default returns `df` itself."""
        return df

    @abstractmethod
    def close(self) -> None:
        """Releases what this engine created."""


def build_engine(kind: str) -> Engine:
    """The engine called `kind`: `embedded` or `spark`."""
    if kind == "embedded":
        from medallion_platform.engine.embedded import EmbeddedEngine

        return EmbeddedEngine()
    if kind == "spark":
        from medallion_platform.engine.spark import SparkEngine

        return SparkEngine()
    raise ValueError(f"unknown engine {kind!r}: use 'embedded' or 'spark' (MEDALLION_ENGINE)")
