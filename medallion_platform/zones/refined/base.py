"""How a refined table is computed and brought up to date (its declaration is `model.py`)."""

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.engine.plans import Template
from medallion_platform.lake.delta_reads import DataFile
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform
from medallion_platform.write.app_transactions import transaction_version
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Overwrite, OverwritePartitions, TableWrite, WriteSpec
from medallion_platform.write.table_state import cluster_of, current_version, has_table, partition_rows, table_at
from medallion_platform.zones.entries import refined_entry
from medallion_platform.zones.refined.coverage import coverage_metadata, foldable, master_versions, read_coverage
from medallion_platform.zones.refined.model import PARTITION, RefinedTable, RefreshMode

__all__ = [
    "RefreshPlan",
    "RefreshResult",
    "build_refined",
    "built_from",
    "fact_files",
    "fact_rows_by_date",
    "input_frame",
    "plan_refresh",
    "refined_frame",
    "refresh_refined",
]


def _missing_input(name: str) -> RuntimeError:
    return RuntimeError(f"trusted/{name} does not exist yet: materialize it before the refined tables")


def input_frame(
    lake: Lakehouse,
    engine: Engine,
    name: str,
    dates: Sequence[str] | None,
    *,
    scoped: bool = False,
    files: Sequence[DataFile] | None = None,
    version: int | None = None,
) -> Frame:
    """A trusted input as a DataFrame on `engine`; the fact input (`scoped`) only for `dates`, if given,
    and only the data `files` (from `fact_files`), if given. On a cluster the input is read by Spark by its
    name, at `version` if given (Spark reads no list of files: `files` is not given there)."""
    scoped = scoped and dates is not None
    values = [dt.date.fromisoformat(d) for d in dates or []] if scoped else None
    table = lake.trusted(name)
    if not has_table(engine, table):
        raise _missing_input(name)
    if cluster_of(engine) is not None:
        return table_at(engine, table, version, PARTITION if scoped else None, values)
    paths = None if files is None else [f.path for f in files]
    return engine.delta_frame(table, PARTITION if scoped else None, values, paths=paths)


def fact_files(
    lake: Lakehouse, table: RefinedTable, dates: Sequence[str] | None, version: int | None = None
) -> list[DataFile]:
    """The data files of `table`'s fact input (at `version`, else the current one) that hold `dates`
    (every file if None), from the Delta log: what building those dates reads."""
    files = lake.trusted(table.fact).files(PARTITION if dates is not None else None, dates, version=version)
    if files is None:
        raise _missing_input(table.fact)
    return files


def built_from(lake: Lakehouse, table: RefinedTable, engine: Engine | None = None) -> int | None:
    """The version of the fact input the stored rows of `table` were built from, as its writes recorded it
    (a partitioned table's coverage, an incremental table's app transaction); None when nothing records it.
    On a cluster (`engine`) its Spark reads the records."""
    refined = lake.refined(table.name)
    if table.partitioned:
        covered = read_coverage(refined, engine)
        return None if covered is None else covered.version
    if table.combine is not None:
        app = _app(table, table.fact)
        folded = refined.transaction_version(app) if engine is None else transaction_version(engine, refined, app)
        return folded if folded >= 0 else None
    return None


def fact_rows_by_date(lake: Lakehouse, table: RefinedTable, engine: Engine | None = None) -> dict[str, int]:
    """Rows of the fact input per event date: from the Delta log (no data file is read), counted by Spark
    on a cluster (`engine`)."""
    return partition_rows(engine, lake.trusted(table.fact), PARTITION) or {}


def refined_frame(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    dates: Sequence[str] | None,
    inputs: Mapping[str, Frame] | None = None,
    *,
    files: Sequence[DataFile] | None = None,
    version: int | None = None,
) -> Frame:
    """`table` (for `dates` if partitioned) as a lazy frame on `engine` over its inputs (read if not given;
    the fact input only from `files`, if given, or at `version` on a cluster)."""
    frames = {name: (inputs or {}).get(name) for name in table.inputs}
    for name, frame in frames.items():
        if frame is None:
            fact = name == table.fact
            frames[name] = input_frame(
                lake,
                engine,
                name,
                dates,
                scoped=fact,
                files=files if fact else None,
                version=version if fact else None,
            )
    return engine.planned(Template(f"refined/{table.name}/build", table.build), **frames)


def build_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> pa.Table:
    """`table` computed on `engine` and collected as Arrow, conformed to its schema (parity tests, the bench)."""
    return conform(engine.to_arrow(refined_frame(lake, engine, table, dates)), table.schema)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: `rebuild`, `incremental` (folded new events in) or `unchanged`."""

    mode: RefreshMode
    rows: int
    version: int | None
    files_read: int = 0
    """Data files of the fact input the refresh read (the pruning: only the files of its dates, or of
    the new events)."""
    dates: int | None = None
    """Event dates built (None: the whole table)."""
    folded: int = 0
    """Of `dates`, those whose stored rows the new events were folded into (the others were rebuilt)."""
    files_probed: int = 0
    """Older data files of the folded dates read for the columns `counted_once` only (the check that
    the new rows repeat no value a distinct count already counted)."""


@dataclass(frozen=True)
class RefreshPlan:
    """How a refined table is brought up to date, and the write that does it (frame None: unchanged)."""

    mode: RefreshMode
    write: TableWrite
    files_read: int = 0
    """Data files of the fact input the frame reads."""
    dates: int | None = None
    folded: int = 0
    files_probed: int = 0

    def result(self) -> RefreshResult:
        written = self.write.written()
        rows = 0 if self.mode == "unchanged" else written.inserted
        return RefreshResult(
            self.mode, rows, written.version, self.files_read, self.dates, self.folded, self.files_probed
        )


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

    A partitioned table reads the fact's files of its dates only: with `combine`, only the files a stored
    date gained since it was built, folded into its stored rows (`coverage.foldable`; a date whose new
    rows repeat a value a distinct count counted is rebuilt), every other date from all its files. An
    unpartitioned table with
    `combine` records, as app transactions, the trusted versions it has folded in; the new events
    since then are the rows of the data files the fact gained since that version (from the Delta
    log: no change data feed needed). A change in the master data, or fact rows updated or deleted
    (files removed), means a full rebuild.
    """

    with lake.held():  # one snapshot of the inputs and the table, each log read once
        return _plan_refresh(lake, engine, table, dates, inputs)


def _plan_refresh(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    dates: Sequence[str] | None,
    inputs: Mapping[str, Frame] | None,
) -> RefreshPlan:
    def write(mode: RefreshMode, frame: Frame | None, spec: WriteSpec, files: int = 0) -> RefreshPlan:
        planned = TableWrite(engine=engine, frame=frame, spec=spec, schema=table.schema)
        return RefreshPlan(mode, planned, files, len(dates or []) if table.partitioned else None)

    if table.partitioned:
        return _plan_dates(lake, engine, table, list(dates or []), inputs)
    cluster = cluster_of(engine) is not None
    if table.combine is None:  # nothing recorded: the inputs as given
        files = [] if cluster else fact_files(lake, table, None)
        frame = refined_frame(lake, engine, table, None, inputs, files=None if cluster else files)
        return write("rebuild", frame, Overwrite(), len(files))
    versions = _input_versions(lake, table, engine)
    inputs = _pinned_masters(lake, engine, table, versions, inputs)
    target = lake.refined(table.name)
    txns = {_app(table, name): v for name, v in versions.items()}
    folded = {name: transaction_version(engine, target, _app(table, name)) for name in table.inputs}
    masters_unchanged = all(folded[n] == versions[n] for n in table.master_data)
    exists = has_table(engine, target)
    if exists and masters_unchanged and folded[table.fact] == versions[table.fact]:
        return write("unchanged", None, Overwrite())
    changes = None
    if exists and masters_unchanged and folded[table.fact] >= 0 and not cluster:  # a cluster reads no file list
        changes = lake.trusted(table.fact).changes_since(folded[table.fact], versions[table.fact])
    if changes is None or not changes.inserts_only:
        # the fact at the version its transaction records
        files = [] if cluster else fact_files(lake, table, None, versions[table.fact])
        frame = refined_frame(
            lake, engine, table, None, inputs, files=None if cluster else files, version=versions[table.fact]
        )
        return write("rebuild", frame, Overwrite(txns=txns), len(files))
    frame = _fold_new_events(lake, engine, table, changes.added, inputs)
    return write("incremental", frame, Overwrite(txns=txns), len(changes.added))


def _plan_dates(
    lake: Lakehouse, engine: Engine, table: RefinedTable, dates: list[str], inputs: Mapping[str, Frame] | None
) -> RefreshPlan:
    """The partition overwrite of `dates`: the foldable ones folded, the others rebuilt from their files."""
    values = tuple(dt.date.fromisoformat(d) for d in dates)
    version = current_version(engine, lake.trusted(table.fact))
    if version is None:
        raise _missing_input(table.fact)
    # the files of one fact version are read (on a cluster: that version, by name), and that version is
    # recorded as covered: a trusted commit landing meanwhile leaves its dates pending for the next run
    masters = master_versions(lake, table, engine)
    if masters is not None:
        inputs = _pinned_masters(lake, engine, table, masters, inputs)
    folds = foldable(lake, table, dates, version, masters, engine)
    probed = 0
    if folds and table.counted_once:
        probed, repeated = _counted_before(lake, engine, table, folds, version)
        folds = {d: files for d, files in folds.items() if d not in repeated}
    rebuilt = [d for d in dates if d not in folds]
    cluster = cluster_of(engine) is not None
    files = [] if cluster else fact_files(lake, table, rebuilt, version)
    if cluster:
        frame = refined_frame(lake, engine, table, rebuilt, inputs, version=version)
    elif folds:
        # one plan: `build` over the rebuilt dates' files and the folded dates' new files, combined with
        # the stored rows of the folded dates only (a rebuilt date's rows pass `combine` unchanged)
        files += [f for d in sorted(folds) for f in folds[d]]
        frame = _fold_new_events(lake, engine, table, files, inputs, stored=sorted(folds))
    else:
        frame = refined_frame(lake, engine, table, rebuilt, inputs, files=files)
    covered = coverage_metadata(lake, table, dates, version, masters, engine)
    spec = OverwritePartitions(partition_column=PARTITION, values=values, metadata=covered)
    planned = TableWrite(engine=engine, frame=frame, spec=spec, schema=table.schema)
    mode: RefreshMode = "incremental" if folds else "rebuild"
    return RefreshPlan(mode, planned, len(files), len(dates), len(folds), probed)


def _counted_before(
    lake: Lakehouse, engine: Engine, table: RefinedTable, folds: Mapping[str, Sequence[DataFile]], version: int
) -> tuple[int, set[str]]:
    """The dates of `folds` whose new rows (the files listed) repeat a value of `table.counted_once`
    that the date's older files already hold, and how many older files were read to tell.

    The log's statistics answer first: a date whose every new file is, on some of those columns, outside
    the range of every older file of the date repeats nothing (order ids grow: late events bring new
    ones). The other dates are told by one semi-join over the `counted_once` columns of their older files.
    """
    new = {f.path for files in folds.values() for f in files}
    older: dict[str, list[DataFile]] = {}
    for file in fact_files(lake, table, sorted(folds), version):
        if file.path not in new:
            older.setdefault(str(file.value(PARTITION)), []).append(file)
    unsure = sorted(d for d in folds if not _apart(table.counted_once, folds[d], older.get(d, [])))
    probed = [f for d in unsure for f in older.get(d, [])]
    if not probed:
        return 0, set()
    keyed = [PARTITION, *table.counted_once]
    before = input_frame(lake, engine, table.fact, unsure, scoped=True, files=probed).select(*keyed)
    added = input_frame(lake, engine, table.fact, unsure, scoped=True, files=[f for d in unsure for f in folds[d]])
    repeats = before.join(added.select(*keyed).distinct(), on=keyed, how="left_semi").select(PARTITION).distinct()
    return len(probed), {str(d) for d in engine.to_arrow(repeats).column(PARTITION).to_pylist()}


def _apart(columns: Sequence[str], new: Sequence[DataFile], older: Sequence[DataFile]) -> bool:
    """Every row of `new` differs from every row of `older` on some of `columns`, by the files' ranges."""

    def disjoint(a: DataFile, b: DataFile) -> bool:
        for column in columns:
            ra, rb = a.range(column), b.range(column)
            comparable = ra is not None and rb is not None and type(ra[0]) is type(rb[0])
            if comparable and (ra[1] < rb[0] or rb[1] < ra[0]):  # type: ignore[index,operator]
                return True
        return False

    return all(disjoint(n, o) for n in new for o in older)


def _pinned_masters(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    versions: Mapping[str, int],
    inputs: Mapping[str, Frame] | None,
) -> dict[str, Frame]:
    """`inputs` with each master data input read at the version of it the refresh records (`versions`), in
    place of a frame the IO manager loaded earlier: a commit landing in between would otherwise be recorded
    as joined while the rows joined the older version, and the next refresh would see nothing to rebuild."""
    cluster = cluster_of(engine) is not None
    pinned = dict(inputs or {})
    for name in table.master_data:
        version = versions[name]
        files = None if cluster else lake.trusted(name).files(version=version)
        pinned[name] = input_frame(lake, engine, name, None, files=files, version=version)
    return pinned


def _input_versions(lake: Lakehouse, table: RefinedTable, engine: Engine) -> dict[str, int]:
    """The current Delta version of every input (all must exist)."""
    versions: dict[str, int] = {}
    for name in table.inputs:
        version = current_version(engine, lake.trusted(name))
        if version is None:
            raise _missing_input(name)
        versions[name] = int(version)
    return versions


def _fold_new_events(
    lake: Lakehouse,
    engine: Engine,
    table: RefinedTable,
    new_files: Sequence[DataFile],
    inputs: Mapping[str, Frame] | None,
    *,
    stored: Sequence[str] | None = None,
) -> Frame:
    """`combine` of the stored rows (of the dates `stored` only, if given) with `build` over the fact rows
    of `new_files` only."""
    assert table.combine is not None  # only tables with `combine` refresh incrementally
    given = inputs or {}
    masters = {
        n: given[n] if given.get(n) is not None else input_frame(lake, engine, n, None) for n in table.master_data
    }
    new_events = input_frame(lake, engine, table.fact, None, files=new_files)
    values = None if stored is None else [dt.date.fromisoformat(d) for d in stored]
    rows = engine.delta_frame(lake.refined(table.name), PARTITION if stored is not None else None, values)
    fold = Template(f"refined/{table.name}/fold", functools.partial(_fold, table), (table.build, table.combine))
    return engine.planned(fold, **{_STORED: rows, table.fact: new_events}, **masters)


_STORED = "stored_rows"
"""The input of a fold template that holds the table's stored rows."""


def _fold(table: RefinedTable, engine: Engine, **inputs: Frame) -> Frame:
    """`combine` of the stored rows with `build` over the new events (their lineage columns left out)."""
    assert table.combine is not None
    stored, new_events = inputs.pop(_STORED), inputs.pop(table.fact)
    events = new_events.select(*[c for c in new_events.columns if not c.startswith("_")])  # not the lineage
    partial = engine.checkpoint(table.build(engine, **{table.fact: events}, **inputs))
    return table.combine(engine, stored, partial, **inputs)


def refresh_refined(lake: Lakehouse, engine: Engine, table: RefinedTable, dates: Sequence[str] | None) -> RefreshResult:
    """Brings `table` up to date and persists it (what the IO manager does in a run)."""
    with lake.held():
        plan = plan_refresh(lake, engine, table, dates)
        plan.write.entry = refined_entry(table)
        persist(lake, ("refined", table.name), plan.write)
    return plan.result()
