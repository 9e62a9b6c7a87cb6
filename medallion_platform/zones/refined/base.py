"""How a refined table is computed and brought up to date (its declaration is `model.py`)."""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Overwrite, OverwritePartitions, TableWrite, WriteSpec
from medallion_platform.zones.entries import refined_entry
from medallion_platform.zones.refined.coverage import coverage_metadata
from medallion_platform.zones.refined.model import PARTITION, RefinedTable, RefreshMode

__all__ = [
    "RefreshPlan",
    "RefreshResult",
    "build_refined",
    "fact_rows_by_date",
    "input_frame",
    "plan_refresh",
    "refined_frame",
    "refresh_refined",
]


def _missing_input(name: str) -> RuntimeError:
    return RuntimeError(f"trusted/{name} does not exist yet: materialize it before the refined tables")


def input_frame(
    lake: Lakehouse, engine: Engine, name: str, dates: Sequence[str] | None, *, scoped: bool = False
) -> Frame:
    """A trusted input as a DataFrame on `engine`; the fact input (`scoped`) only for `dates`, if given."""
    scoped = scoped and dates is not None
    values = [dt.date.fromisoformat(d) for d in dates or []] if scoped else None
    table = lake.trusted(name)
    if not table.exists():
        raise _missing_input(name)
    return engine.delta_frame(table, PARTITION if scoped else None, values)


def fact_rows_by_date(lake: Lakehouse, table: RefinedTable) -> dict[str, int]:
    """Rows of the fact input per event date, from the Delta log (no data file is read)."""
    delta = lake.trusted(table.fact).table()
    if delta is None:
        return {}
    counts: dict[str, int] = {}
    for action in pa.table(delta.get_add_actions(flatten=True)).to_pylist():
        date = action.get(f"partition.{PARTITION}")
        if date is not None:
            counts[str(date)] = counts.get(str(date), 0) + int(action.get("num_records") or 0)
    return counts


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
            frames[name] = input_frame(lake, engine, name, dates, scoped=name == table.fact)
    return table.build(engine, **frames)


def build_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> pa.Table:
    """`table` computed on `engine` and collected as Arrow, conformed to its schema (parity tests, the bench)."""
    return conform(engine.to_arrow(refined_frame(lake, engine, table, dates)), table.schema)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: `rebuild`, `incremental` (folded new events in) or `unchanged`."""

    mode: RefreshMode
    rows: int
    version: int | None


@dataclass(frozen=True)
class RefreshPlan:
    """How a refined table is brought up to date, and the write that does it (frame None: unchanged)."""

    mode: RefreshMode
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

    def write(mode: RefreshMode, frame: Frame | None, spec: WriteSpec) -> RefreshPlan:
        return RefreshPlan(mode, TableWrite(engine=engine, frame=frame, spec=spec, schema=table.schema))

    if table.partitioned:
        values = tuple(dt.date.fromisoformat(d) for d in dates or [])
        frame = refined_frame(lake, engine, table, dates, inputs)
        # records the fact version these dates are built from, so later runs know which dates are behind
        covered = coverage_metadata(lake, table, dates or [])
        return write("rebuild", frame, OverwritePartitions(partition_column=PARTITION, values=values, metadata=covered))
    if table.combine is None:
        return write("rebuild", refined_frame(lake, engine, table, None, inputs), Overwrite())
    versions = _input_versions(lake, table)
    target = lake.refined(table.name)
    txns = {_app(table, name): v for name, v in versions.items()}
    folded = {name: target.transaction_version(_app(table, name)) for name in table.inputs}
    masters_unchanged = all(folded[n] == versions[n] for n in table.master_data)
    if target.exists() and masters_unchanged and folded[table.fact] == versions[table.fact]:
        return write("unchanged", None, Overwrite())
    new_events = None
    if target.exists() and masters_unchanged and folded[table.fact] >= 0:
        new_events = _fact_inserted_since(lake, table, folded[table.fact])
    if new_events is None:
        return write("rebuild", refined_frame(lake, engine, table, None, inputs), Overwrite(txns=txns))
    frame = _fold_new_events(lake, engine, table, new_events, inputs)
    return write("incremental", frame, Overwrite(txns=txns))


def _input_versions(lake: Lakehouse, table: RefinedTable) -> dict[str, int]:
    """The current Delta version of every input (all must exist)."""
    versions: dict[str, int] = {}
    for name in table.inputs:
        version = lake.trusted(name).version()
        if version is None:
            raise _missing_input(name)
        versions[name] = int(version)
    return versions


def _fact_inserted_since(lake: Lakehouse, table: RefinedTable, version: int) -> pa.RecordBatchReader | None:
    """The fact rows inserted after `version` (its business columns), or None if the feed cannot tell."""
    fact = lake.trusted(table.fact)
    delta = fact.table()
    if delta is None:
        raise _missing_input(table.fact)
    columns = [f.name for f in pa.schema(delta.schema().to_arrow()) if not f.name.startswith("_")]
    return fact.inserted_since(version, columns)


def _fold_new_events(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    new_events: pa.RecordBatchReader,
    inputs: Mapping[str, Frame] | None,
) -> Frame:
    """`combine` of the stored rows with `build` over the new fact rows only."""
    assert table.combine is not None  # only tables with `combine` refresh incrementally
    given = inputs or {}
    masters = {
        n: given[n] if given.get(n) is not None else input_frame(lake, engine, n, None) for n in table.master_data
    }
    # persisted in the engine (DuckDB spills), so `build` may read the new events more than once
    events = engine.persist(engine.dataframe(new_events, "new_events"))
    partial = engine.checkpoint(table.build(engine, **{table.fact: events}, **masters))
    stored = engine.delta_frame(lake.refined(table.name))
    return table.combine(engine, stored, partial, **masters)


def refresh_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> RefreshResult:
    """Brings `table` up to date and persists it (what the IO manager does in a run)."""
    plan = plan_refresh(lake, engine, table, dates)
    plan.write.entry = refined_entry(table)
    persist(lake, ("refined", table.name), plan.write)
    return plan.result()
