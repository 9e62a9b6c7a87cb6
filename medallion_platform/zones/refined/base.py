"""What a refined table declares, and how it is computed and written."""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.schema import conform
from medallion_platform.settings import Settings

__all__ = [
    "CURRENCIES",
    "MONEY",
    "RefinedTable",
    "RefreshResult",
    "amount",
    "build_refined",
    "refresh_refined",
    "write_refined",
]

PARTITION = "event_date"
MONEY = pa.decimal128(18, 2)
"""Money in refined tables: decimal(18,2) on every engine."""
CURRENCIES = ("EUR", "USD", "GBP")
"""The currencies refined tables report a column for (the contracts allow exactly these)."""


@dataclass(frozen=True)
class RefinedTable:
    """A refined table: its trusted inputs, its schema and the PySpark-API function that builds it."""

    name: str
    description: str
    owner: str
    inputs: tuple[str, ...]
    """Trusted tables it reads; `order_events` is read only for the partitions being built."""
    schema: pa.Schema
    build: Callable[..., Any]
    partitioned: bool = True
    """Partitioned by `event_date`: a run rewrites exactly the dates it is given."""
    combine: Callable[..., Any] | None = None
    """For unpartitioned tables: folds `build` over new events into the stored rows
    (`combine(engine, stored, partial, **master_data)`), so a refresh costs what the new events cost."""


def amount(F: Any) -> Any:
    """quantity x unit_price as decimal(18,2) on every engine."""
    return (F.col("quantity") * F.col("unit_price")).cast("decimal(18,2)")


def _input(settings: Settings, name: str, dates: Sequence[str] | None) -> ds.Dataset:
    scope = None
    if name == "order_events" and dates is not None:
        scope = ds.field(PARTITION).isin([dt.date.fromisoformat(d) for d in dates])
    dataset = _trusted(settings, name).duckdb_dataset(scope)
    if dataset is None:
        raise RuntimeError(f"trusted/{name} does not exist yet: materialize it before the refined tables")
    return dataset


def _trusted(settings: Settings, name: str) -> DeltaTableIO:
    return DeltaTableIO(settings.table_uri("trusted", name), storage_options=settings.storage_options)


def _frame(settings: Settings, engine: Any, name: str, dates: Sequence[str] | None) -> Any:
    """A trusted input as a DataFrame: read by DuckDB itself when the lake is local and the engine
    is DuckDB (bounded memory), else scanned through Arrow."""
    if hasattr(engine, "query_frame"):
        values = [dt.date.fromisoformat(d) for d in dates] if name == "order_events" and dates is not None else None
        query = _trusted(settings, name).local_parquet_sql(PARTITION if values is not None else None, values)
        if query is not None:
            return engine.query_frame(query, name)
    return engine.dataframe(_input(settings, name, dates), name)


def build_refined(settings: Settings, engine: Any, table: RefinedTable, dates: Sequence[str] | None) -> pa.Table:
    """Computes `table` (for `dates` if partitioned) on `engine`, conformed to its schema."""
    frames = {name: _frame(settings, engine, name, dates) for name in table.inputs}
    return conform(engine.to_arrow(table.build(engine, **frames)), table.schema)


def write_refined(settings: Settings, table: RefinedTable, rows: pa.Table, dates: Sequence[str] | None) -> WriteResult:
    """Overwrites exactly `dates` (partitioned tables) or the whole table, in one commit."""
    target = DeltaTableIO(settings.table_uri("refined", table.name), storage_options=settings.storage_options)
    if table.partitioned:
        values = [dt.date.fromisoformat(d) for d in dates or []]
        return target.overwrite_partitions(rows, partition_column=PARTITION, values=values)
    return target.overwrite(rows)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: `rebuild`, `incremental` (folded new events in) or `unchanged`."""

    mode: str
    rows: int
    version: int | None


def _app(table: RefinedTable, source: str) -> str:
    return f"medallion/refined/{table.name}/{source}"


def refresh_refined(settings: Settings, engine: Any, table: RefinedTable, dates: Sequence[str] | None) -> RefreshResult:
    """Brings `table` up to date: the given dates, or (unpartitioned) only the events new since last time.

    An unpartitioned table with `combine` records, as app transactions, the trusted versions it
    has folded in. New events since then come from trusted's change data feed; a change in the
    master data (or anything the feed cannot express) means a full rebuild.
    """
    if table.partitioned or table.combine is None:
        rows = build_refined(settings, engine, table, dates)
        result = write_refined(settings, table, rows, dates)
        return RefreshResult("rebuild", rows.num_rows, result.version)
    sources = {
        name: DeltaTableIO(settings.table_uri("trusted", name), storage_options=settings.storage_options)
        for name in table.inputs
    }
    found = {name: io.version() for name, io in sources.items()}
    missing = [n for n, v in found.items() if v is None]
    if missing:
        raise RuntimeError(f"trusted/{missing[0]} does not exist yet: materialize it before the refined tables")
    versions = {name: int(v) for name, v in found.items() if v is not None}
    target = DeltaTableIO(settings.table_uri("refined", table.name), storage_options=settings.storage_options)
    txns = {_app(table, name): v for name, v in versions.items()}
    done = {name: target.transaction_version(_app(table, name)) for name in table.inputs}
    masters_same = all(done[n] == versions[n] for n in table.inputs if n != "order_events")
    if target.exists() and masters_same and done["order_events"] == versions["order_events"]:
        return RefreshResult("unchanged", 0, target.version())
    new_events = None
    if target.exists() and masters_same and done["order_events"] >= 0:
        events_schema = sources["order_events"].table().schema().to_arrow()  # type: ignore[union-attr]
        columns = [f.name for f in pa.schema(events_schema) if not f.name.startswith("_")]
        new_events = sources["order_events"].inserted_since(done["order_events"], columns)
    if new_events is None:
        rows = build_refined(settings, engine, table, None)
        result = target.overwrite(rows, txns=txns)
        return RefreshResult("rebuild", rows.num_rows, result.version)
    masters = {n: _frame(settings, engine, n, None) for n in table.inputs if n != "order_events"}
    # persisted in the engine (DuckDB spills), so `build` may read the new events more than once
    events = engine.persist(engine.dataframe(new_events, "new_events"))
    partial = engine.checkpoint(table.build(engine, order_events=events, **masters))
    stored = engine.dataframe(target.duckdb_dataset(), "stored")
    rows = conform(engine.to_arrow(table.combine(engine, stored, partial, **masters)), table.schema)
    result = target.overwrite(rows, txns=txns)
    return RefreshResult("incremental", rows.num_rows, result.version)
