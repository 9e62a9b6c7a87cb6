"""Which event dates of a date-partitioned refined table are behind its fact input, read from the Delta logs.

A refined table is rebuilt from what its inputs hold, not from what the last run happened to touch: a
run killed between the trusted commit and the refined commits, or a refined run that failed, leaves
dates that no later run would rebuild if runs only followed the touched dates they made themselves.

Every partition overwrite of a refined table records, in its commit metadata (`medallion.covered`),
the version of its fact input (`RefinedTable.fact`, trusted) it was built from and the dates still
pending after it. The dates pending now are those, plus every event date the fact's change data feed
shows changed since that version. A missing refined table, or one without the record, is pending for
every event date its fact holds; so is a table whose fact's feed since the recorded version is gone.

The fact version is read when the refresh is planned, just after its inputs were loaded: a trusted
commit landing in between is counted as covered. Such a commit also records its touched dates as
materialization metadata, which the late-event sensor requests as before.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from deltalake import DeltaTable

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.refined.model import PARTITION, RefinedTable

__all__ = ["COVERED", "Coverage", "coverage_metadata", "inputs_missing", "pending_dates", "read_coverage"]

COVERED = "medallion.covered"
"""Commit metadata of a refined partition overwrite: `{"fact", "version", "pending"}` as JSON."""


@dataclass(frozen=True)
class Coverage:
    """What a refined table's newest overwrite recorded: the fact version it was built from, and the
    dates still pending after it."""

    fact: str
    version: int
    pending: tuple[str, ...]


def read_coverage(refined: DeltaTableIO) -> Coverage | None:
    """The newest `medallion.covered` record in `refined`'s log (maintenance commits carry none)."""
    table = refined.table()
    if table is None:
        return None
    for limit in (10, 200, None):
        history = table.history(limit=limit) if limit else table.history()
        for commit in history:  # newest first
            found = commit.get(COVERED) or json.loads(commit.get("userMetadata") or "{}").get(COVERED)
            if found:  # delta-rs keeps custom metadata as keys; Spark's writer as `userMetadata` JSON
                record = json.loads(found)
                return Coverage(record["fact"], int(record["version"]), tuple(record["pending"]))
        if limit is None or len(history) < limit:
            return None
    return None


def _dates(values: pa.ChunkedArray | pa.Array) -> set[str]:
    return {str(v) for v in values.to_pylist() if v is not None}


def _all_dates(fact: DeltaTable) -> set[str]:
    actions = pa.table(fact.get_add_actions(flatten=True))
    column = f"partition.{PARTITION}"
    return _dates(actions.column(column)) if column in actions.column_names else set()


def _changed_since(fact: DeltaTable, version: int, upto: int) -> set[str] | None:
    """Event dates with rows changed in versions (version, upto], or None when the feed cannot say."""
    if version >= upto:
        return set()
    try:
        stream = fact.load_cdf(version + 1, upto, columns=[PARTITION])
        return _dates(pa.RecordBatchReader.from_stream(stream).read_all().column(PARTITION))
    except Exception:  # feed off, or those versions vacuumed away: the caller rebuilds every date
        return None


def _pending(lake: Lakehouse, table: RefinedTable, fact: DeltaTable) -> set[str]:
    if not table.partitioned:
        return set()
    covered = read_coverage(lake.refined(table.name))
    if covered is None or covered.fact != table.fact:
        return _all_dates(fact)
    changed = _changed_since(fact, covered.version, fact.version())
    return _all_dates(fact) if changed is None else set(covered.pending) | changed


def pending_dates(lake: Lakehouse, table: RefinedTable) -> list[str]:
    """The event dates of `table` its fact input holds newer rows for than `table` was built from (sorted);
    every date when `table` is missing. Empty for unpartitioned tables and while the fact is missing."""
    fact = lake.trusted(table.fact).table()
    return [] if fact is None else sorted(_pending(lake, table, fact))


def inputs_missing(lake: Lakehouse, table: RefinedTable) -> list[str]:
    """The trusted inputs of `table` that do not exist yet (`trusted/<name>`): it cannot be built before."""
    return [f"trusted/{name}" for name in table.inputs if not lake.trusted(name).exists()]


def coverage_metadata(lake: Lakehouse, table: RefinedTable, dates: Sequence[str]) -> dict[str, str]:
    """The commit metadata of an overwrite of `dates` of `table`, built from its fact's current version."""
    fact = lake.trusted(table.fact).table()
    if fact is None:
        return {}
    still = _pending(lake, table, fact) - set(dates)
    record = {"fact": table.fact, "version": fact.version(), "pending": sorted(still)}
    return {COVERED: json.dumps(record, separators=(",", ":"))}
