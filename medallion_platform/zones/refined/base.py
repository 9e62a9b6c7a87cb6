"""What a refined table declares, and how it is computed and written."""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform
from medallion_platform.lake.writers import write_table
from medallion_platform.lake.writes import Overwrite, OverwritePartitions, TableWrite, WriteSpec

__all__ = [
    "CURRENCIES",
    "MONEY",
    "RefinedTable",
    "RefreshPlan",
    "RefreshResult",
    "amount",
    "build_refined",
    "input_frame",
    "plan_refresh",
    "refined_frame",
    "refresh_refined",
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
    """Trusted tables it reads; the fact input is read only for the partitions being built."""
    schema: pa.Schema
    build: Callable[..., Any]
    fact: str = "order_events"
    """The input whose rows it aggregates (one of `inputs`): its event dates are the table's partitions,
    and its new rows are what an incremental refresh folds in. The other inputs are master data."""
    partitioned: bool = True
    """Partitioned by `event_date`: a run rewrites exactly the dates it is given."""
    combine: Callable[..., Any] | None = None
    """For unpartitioned tables: folds `build` over new events into the stored rows
    (`combine(engine, stored, partial, **master_data)`), so a refresh costs what the new events cost."""


def amount(F: Any) -> Any:
    """quantity x unit_price as decimal(18,2) on every engine."""
    return (F.col("quantity") * F.col("unit_price")).cast("decimal(18,2)")


def input_frame(lake: Lakehouse, engine: Engine, name: str, dates: Sequence[str] | None) -> Frame:
    """A trusted input as a DataFrame on `engine`: `order_events` only for `dates` (its event dates), if given."""
    scoped = name == "order_events" and dates is not None
    values = [dt.date.fromisoformat(d) for d in dates or []] if scoped else None
    table = lake.trusted(name)
    if not table.exists():
        raise RuntimeError(f"trusted/{name} does not exist yet: materialize it before the refined tables")
    return engine.delta_frame(table, PARTITION if scoped else None, values)


def refined_frame(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    dates: Sequence[str] | None,
    inputs: Mapping[str, Frame] | None = None,
) -> Frame:
    """`table` (for `dates` if partitioned) as a lazy frame on `engine` over its inputs (read if not given)."""
    frames = {name: (inputs or {}).get(name) for name in table.inputs}
    for name, frame in frames.items():
        if frame is None:
            frames[name] = input_frame(lake, engine, name, dates)
    return table.build(engine, **frames)


def build_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> pa.Table:
    """`table` computed on `engine` and collected as Arrow, conformed to its schema (parity tests, the bench)."""
    return conform(engine.to_arrow(refined_frame(lake, engine, table, dates)), table.schema)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: `rebuild`, `incremental` (folded new events in) or `unchanged`."""

    mode: str
    rows: int
    version: int | None


@dataclass(frozen=True)
class RefreshPlan:
    """How a refined table is brought up to date, and the write that does it (frame None: unchanged)."""

    mode: str
    write: TableWrite

    def result(self) -> RefreshResult:
        written = self.write.written()
        return RefreshResult(self.mode, 0 if self.mode == "unchanged" else written.inserted, written.version)


def _app(table: RefinedTable, source: str) -> str:
    return f"medallion/refined/{table.name}/{source}"


def plan_refresh(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    dates: Sequence[str] | None,
    inputs: Mapping[str, Frame] | None = None,
) -> RefreshPlan:
    """How to bring `table` up to date: the given dates, or (unpartitioned) only the events new since last time.

    An unpartitioned table with `combine` records, as app transactions, the trusted versions it
    has folded in. New events since then come from trusted's change data feed; a change in the
    master data (or anything the feed cannot express) means a full rebuild.
    """

    def write(mode: str, frame: Frame | None, spec: WriteSpec) -> RefreshPlan:
        return RefreshPlan(mode, TableWrite(engine=engine, frame=frame, spec=spec, schema=table.schema))

    if table.partitioned:
        from medallion_platform.automation.pending import coverage_metadata  # imports this module

        values = tuple(dt.date.fromisoformat(d) for d in dates or [])
        frame = refined_frame(lake, engine, table, dates, inputs)
        # records the fact version these dates are built from, so later runs know which dates are behind
        covered = coverage_metadata(lake, table, dates or [])
        return write("rebuild", frame, OverwritePartitions(partition_column=PARTITION, values=values, metadata=covered))
    if table.combine is None:
        return write("rebuild", refined_frame(lake, engine, table, None, inputs), Overwrite())
    sources = {name: lake.trusted(name) for name in table.inputs}
    found = {name: io.version() for name, io in sources.items()}
    missing = [n for n, v in found.items() if v is None]
    if missing:
        raise RuntimeError(f"trusted/{missing[0]} does not exist yet: materialize it before the refined tables")
    versions = {name: int(v) for name, v in found.items() if v is not None}
    target = lake.refined(table.name)
    txns = {_app(table, name): v for name, v in versions.items()}
    done = {name: target.transaction_version(_app(table, name)) for name in table.inputs}
    masters_same = all(done[n] == versions[n] for n in table.inputs if n != "order_events")
    if target.exists() and masters_same and done["order_events"] == versions["order_events"]:
        return write("unchanged", None, Overwrite())
    new_events = None
    if target.exists() and masters_same and done["order_events"] >= 0:
        events_schema = sources["order_events"].table().schema().to_arrow()  # type: ignore[union-attr]
        columns = [f.name for f in pa.schema(events_schema) if not f.name.startswith("_")]
        new_events = sources["order_events"].inserted_since(done["order_events"], columns)
    if new_events is None:
        return write("rebuild", refined_frame(lake, engine, table, None, inputs), Overwrite(txns=txns))
    masters = {n: (inputs or {}).get(n) for n in table.inputs if n != "order_events"}
    masters = {n: f if f is not None else input_frame(lake, engine, n, None) for n, f in masters.items()}
    # persisted in the engine (DuckDB spills), so `build` may read the new events more than once
    events = engine.persist(engine.dataframe(new_events, "new_events"))
    partial = engine.checkpoint(table.build(engine, order_events=events, **masters))
    stored = engine.delta_frame(target)
    return write("incremental", table.combine(engine, stored, partial, **masters), Overwrite(txns=txns))


def refresh_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> RefreshResult:
    """Brings `table` up to date and writes it with the engine's writer (what the IO manager does in a run)."""
    plan = plan_refresh(lake, engine, table, dates)
    write_table(lake.refined(table.name), plan.write, batch_rows=lake.settings.write_batch_rows)
    return plan.result()
