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
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

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


def _all_dates(fact: DeltaTableIO) -> set[str]:
    return {v for f in fact.files() or [] if (v := f.value(PARTITION)) is not None}


def _pending(lake: Lakehouse, table: RefinedTable, upto: int | None = None) -> set[str]:
    """The dates pending at the fact's version `upto` (the current one if None)."""
    if not table.partitioned:
        return set()
    fact = lake.trusted(table.fact)
    covered = read_coverage(lake.refined(table.name))
    if covered is None or covered.fact != table.fact:
        return _all_dates(fact)
    changes = fact.changes_since(covered.version, upto)
    return _all_dates(fact) if changes is None else set(covered.pending) | changes.partition_values(PARTITION)


def pending_dates(lake: Lakehouse, table: RefinedTable) -> list[str]:
    """The event dates of `table` its fact input holds newer rows for than `table` was built from (sorted);
    every date when `table` is missing. Empty for unpartitioned tables and while the fact is missing."""
    return sorted(_pending(lake, table)) if lake.trusted(table.fact).exists() else []


def inputs_missing(lake: Lakehouse, table: RefinedTable) -> list[str]:
    """The trusted inputs of `table` that do not exist yet (`trusted/<name>`): it cannot be built before."""
    return [f"trusted/{name}" for name in table.inputs if not lake.trusted(name).exists()]


def coverage_metadata(
    lake: Lakehouse, table: RefinedTable, dates: Sequence[str], version: int | None = None
) -> dict[str, str]:
    """The commit metadata of an overwrite of `dates` of `table`, built from its fact's `version` (the
    current one if None)."""
    version = lake.trusted(table.fact).version() if version is None else version
    if version is None:
        return {}
    still = _pending(lake, table, version) - set(dates)
    record = {"fact": table.fact, "version": version, "pending": sorted(still)}
    return {COVERED: json.dumps(record, separators=(",", ":"))}
