"""What a step hands the write layer: rows (on the step's engine, or in memory) and a typed write spec.

`persist()` (`write/persist.py`) writes a `TableWrite` with the writer for the frame's engine
(`writers.writer_for`), streaming, in one Delta commit, registers the table in the catalog, and fills
in `result`, so the caller (an asset body and its checks, through the IO manager) can read what was
written. A `RowsWrite` carries a small Arrow table instead of a frame (the ingest log, rejections).
"""

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from medallion_platform.catalog.base import TableEntry
from medallion_platform.contracts.model import WhenMatched
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.delta_io import WriteResult

__all__ = ["Append", "Merge", "Overwrite", "OverwritePartitions", "RowsWrite", "TableWrite", "WhenMatched", "WriteSpec"]


@dataclass(frozen=True)
class Append:
    """Append the rows, tagged with app transactions (a batch already committed is skipped)."""

    partition_by: tuple[str, ...] = ()
    txns: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Merge:
    """MERGE on `keys`, scanning only `partition_values` of `partition_column` (one row per key in the source)."""

    keys: tuple[str, ...]
    when_matched: WhenMatched = "ignore"
    newer_column: str | None = None
    partition_column: str | None = None
    partition_values: tuple[dt.date, ...] = ()
    txns: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, object] = field(default_factory=dict)
    newer_columns: tuple[str, ...] = ()
    """`update_if_newer` by several columns compared in order (a change's sequence and its tie-breakers);
    when given, it replaces `newer_column`."""

    @property
    def newer(self) -> tuple[str, ...]:
        """The columns `update_if_newer` compares, in order."""
        return self.newer_columns or ((self.newer_column,) if self.newer_column else ())


@dataclass(frozen=True)
class OverwritePartitions:
    """Replace exactly `values` of `partition_column` (rows outside them are an error)."""

    partition_column: str
    values: tuple[dt.date, ...]
    txns: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Overwrite:
    """Replace the whole table (small, unpartitioned tables)."""

    txns: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, object] = field(default_factory=dict)


WriteSpec = Append | Merge | OverwritePartitions | Overwrite


@dataclass(eq=False)
class TableWrite:
    """Rows to persist (`frame` on `engine`, conformed to `schema`) and how.

    `frame` None means nothing new to write: the IO manager records the table as it stands.
    `figures`, if given, turns the write's result into extra output metadata (for example the
    reconciliation of a promotion, which needs the rows the MERGE inserted).
    """

    engine: Engine
    frame: Frame | None
    spec: WriteSpec
    schema: pa.Schema
    figures: Callable[[WriteResult], Mapping[str, Any]] | None = None
    entry: TableEntry | None = None
    """The table's catalog metadata: `persist()` registers the table with it right after the write."""
    result: WriteResult | None = None
    """Filled in by the writer."""

    def written(self) -> WriteResult:
        """What the write did; raises if it has not happened yet."""
        if self.result is None:
            raise RuntimeError("this TableWrite has not been persisted yet (persist() writes it)")
        return self.result


@dataclass(eq=False)
class RowsWrite:
    """A few rows already in memory (`rows`, of `schema`: what the catalog records) appended in one commit:
    the ingest log, the rejected landing objects. `entry` None: an internal table the catalog does not list."""

    rows: pa.Table
    spec: Append
    schema: pa.Schema
    entry: TableEntry | None = None
    result: WriteResult | None = None

    def written(self) -> WriteResult:
        """What the write did; raises if it has not happened yet."""
        if self.result is None:
            raise RuntimeError("this RowsWrite has not been persisted yet (persist() writes it)")
        return self.result
