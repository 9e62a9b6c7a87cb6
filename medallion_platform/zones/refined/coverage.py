"""Which event dates of a date-partitioned refined table are behind its fact input, read from the Delta logs.

A refined table is rebuilt from what its inputs hold, not from what the last run happened to touch: a
run killed between the trusted commit and the refined commits, or a refined run that failed, leaves
dates that no later run would rebuild if runs only followed the touched dates they made themselves.

Every partition overwrite of a refined table records, in its commit metadata (`medallion.covered`),
the version of its fact input (`RefinedTable.fact`, trusted) it was built from and the dates still
pending after it. The dates pending now are those, plus the event dates of every data file the fact
gained or lost since that version: a comparison of the two versions' Delta logs (`DeltaTableIO.
changes_since`), so it costs what the number of files costs, not the rows a batch wrote, and it needs
no change data feed (an engine or a table without one works the same). Both versions' file lists are
kept per process, so the refined tables of one run read them once. A missing refined table, or one
without the record, is pending for every event date its fact holds; so is a table whose recorded fact
version's log is gone. A compaction of the fact (files rewritten, rows unchanged) makes its dates
pending too: they are rebuilt once, with the same rows.

A refresh reads the fact's files of one version and records that version: a trusted commit landing
while it runs leaves its dates pending for the next run.

The record also keeps the versions of the master data inputs the overwrite joined (`masters`) and the
dates whose stored rows were all built with exactly those versions (`fresh`, as ISO 8601 date intervals).
A stored date that is fresh, not pending at the recorded version, and whose fact files since then were
only added (late events: an insert-only MERGE or an append) holds `build` over the fact's rows of that
version: `build` over the added files folded in with `combine` is then what a rebuild of the date gives
(`foldable`). A change of any master input starts `fresh` again from the dates that overwrite wrote.
"""

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.delta_reads import DataFile
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.table_state import cluster_of, current_version, has_table, log_changes, partition_rows
from medallion_platform.zones.refined.model import PARTITION, RefinedTable

__all__ = [
    "COVERED",
    "Coverage",
    "coverage_metadata",
    "foldable",
    "inputs_missing",
    "master_versions",
    "pending_dates",
    "read_coverage",
]

COVERED = "medallion.covered"
"""Commit metadata of a refined partition overwrite: `{"fact", "version", "pending", "masters", "fresh"}`
as JSON."""


@dataclass(frozen=True)
class Coverage:
    """What a refined table's newest overwrite recorded: the fact version it was built from, the dates
    still pending after it, the master data versions it joined and the dates built with those."""

    fact: str
    version: int
    pending: tuple[str, ...]
    masters: Mapping[str, int] | None = None
    """None in a record older than this field: no stored date counts as fresh."""
    fresh: frozenset[str] = field(default_factory=frozenset)


def read_coverage(refined: DeltaTableIO, engine: Engine | None = None) -> Coverage | None:
    """The newest `medallion.covered` record in `refined`'s log (maintenance commits carry none); on a
    cluster read by its Spark from the log's commits."""
    cluster = cluster_of(engine)
    if cluster is not None:
        found = cluster.delta_log_metadata(refined.uri, COVERED)
        return None if found is None else _coverage(found)
    table = refined.table()
    if table is None:
        return None
    for limit in (10, 200, None):
        history = table.history(limit=limit) if limit else table.history()
        for commit in history:  # newest first
            found = commit.get(COVERED) or json.loads(commit.get("userMetadata") or "{}").get(COVERED)
            if found:  # delta-rs keeps custom metadata as keys; Spark's writer as `userMetadata` JSON
                return _coverage(found)
        if limit is None or len(history) < limit:
            return None
    return None


def _coverage(found: str) -> Coverage:
    record = json.loads(found)
    masters = record.get("masters")
    return Coverage(
        record["fact"],
        int(record["version"]),
        tuple(record["pending"]),
        None if masters is None else {str(k): int(v) for k, v in masters.items()},
        frozenset(_expand(record.get("fresh") or [])),
    )


def _all_dates(fact: DeltaTableIO, engine: Engine | None) -> set[str]:
    return set(partition_rows(engine, fact, PARTITION) or {})


def _pending(lake: Lakehouse, table: RefinedTable, upto: int | None = None, engine: Engine | None = None) -> set[str]:
    """The dates pending at the fact's version `upto` (the current one if None)."""
    if not table.partitioned:
        return set()
    fact = lake.trusted(table.fact)
    covered = read_coverage(lake.refined(table.name), engine)
    if covered is None or covered.fact != table.fact:
        return _all_dates(fact, engine)
    changes = log_changes(engine, fact, covered.version, upto)
    if changes is None:
        return _all_dates(fact, engine)
    return set(covered.pending) | changes.partition_values(PARTITION)


def pending_dates(lake: Lakehouse, table: RefinedTable, engine: Engine | None = None) -> list[str]:
    """The event dates of `table` its fact input holds newer rows for than `table` was built from (sorted);
    every date when `table` is missing. Empty for unpartitioned tables and while the fact is missing. On a
    cluster (`engine`) its Spark reads the logs."""
    if not has_table(engine, lake.trusted(table.fact)):
        return []
    return sorted(_pending(lake, table, engine=engine))


def inputs_missing(lake: Lakehouse, table: RefinedTable) -> list[str]:
    """The trusted inputs of `table` that do not exist yet (`trusted/<name>`): it cannot be built before."""
    return [f"trusted/{name}" for name in table.inputs if not lake.trusted(name).exists()]


def master_versions(lake: Lakehouse, table: RefinedTable, engine: Engine | None = None) -> dict[str, int] | None:
    """The current Delta version of each master data input of `table`; None while one is missing."""
    versions = {name: current_version(engine, lake.trusted(name)) for name in table.master_data}
    return None if None in versions.values() else {k: int(v) for k, v in versions.items() if v is not None}


def foldable(
    lake: Lakehouse,
    table: RefinedTable,
    dates: Sequence[str],
    version: int,
    masters: Mapping[str, int] | None,
    engine: Engine | None = None,
) -> dict[str, tuple[DataFile, ...]]:
    """The `dates` whose stored rows the fact's new rows can be folded into, each with the data files its
    date gained since the recorded version, up to `version`: dates fresh for `masters` (the master
    versions the refresh joins), not pending at the recorded version, and whose fact files since then
    were only added. Every other date of `dates` is rebuilt. From the Delta logs: no data file is read.
    None on a cluster: Spark reads a Delta table whole or by predicate, never by data file, so a cluster
    rebuilds its pending dates (pruned to their partitions)."""
    if not table.partitioned or table.combine is None or masters is None or cluster_of(engine) is not None:
        return {}
    covered = read_coverage(lake.refined(table.name), engine)
    if covered is None or covered.fact != table.fact or covered.masters != dict(masters):
        return {}
    changes = lake.trusted(table.fact).changes_since(covered.version, version)
    if changes is None:
        return {}
    rewritten = {str(f.value(PARTITION)) for f in changes.removed}
    added: dict[str, list[DataFile]] = {}
    for file in changes.added:
        added.setdefault(str(file.value(PARTITION)), []).append(file)
    ready = covered.fresh - set(covered.pending) - rewritten
    return {d: tuple(added[d]) for d in dates if d in ready and d in added}


def coverage_metadata(
    lake: Lakehouse,
    table: RefinedTable,
    dates: Sequence[str],
    version: int | None = None,
    masters: Mapping[str, int] | None = None,
    engine: Engine | None = None,
) -> dict[str, str]:
    """The commit metadata of an overwrite of `dates` of `table`, built from its fact's `version` and its
    master inputs' `masters` versions (the current ones if None); on a cluster (`engine`) its Spark reads."""
    fact = lake.trusted(table.fact)
    version = current_version(engine, fact) if version is None else version
    if version is None:
        return {}
    masters = master_versions(lake, table, engine) if masters is None else dict(masters)
    still = _pending(lake, table, version, engine) - set(dates)
    before = read_coverage(lake.refined(table.name), engine)
    fresh = set(dates)
    if before is not None and masters is not None and before.masters == masters and before.fact == table.fact:
        fresh |= before.fresh
    record = {
        "fact": table.fact,
        "version": version,
        "pending": sorted(still),
        "masters": masters,
        "fresh": _intervals(fresh) if masters is not None else [],
    }
    return {COVERED: json.dumps(record, separators=(",", ":"))}


def _intervals(dates: Iterable[str]) -> list[str]:
    """Dates as ISO 8601 intervals of consecutive days (`2026-11-01/2026-11-30`, or one date alone): a year
    of daily partitions built in order is one entry."""
    days = sorted(dt.date.fromisoformat(d) for d in dates)
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [a.isoformat() if a == b else f"{a.isoformat()}/{b.isoformat()}" for a, b in runs]


def _expand(intervals: Iterable[str]) -> Iterable[str]:
    for interval in intervals:
        first, _, last = interval.partition("/")
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
        while day <= end:
            yield day.isoformat()
            day += dt.timedelta(days=1)
