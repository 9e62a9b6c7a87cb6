"""Every Delta table of a local lake, read whole and compared with a reference run's.

What is compared: all columns except the ones that say *when* or *in which run* a row arrived
(`VOLATILE_COLUMNS`: the ingestion timestamp and the random batch id), which legitimately differ between a
killed-and-rerun lake and an uninterrupted one. Everything else must match row for row as a multiset: the
data, the lineage (`_source_file`, `_source_line`, `_landing_date`) and the batch sequence number (each
dataset numbers its batches 0, 1, … and a rerun must resume the numbering, not restart or skip it).
Floats are rounded to 9 decimals (DuckDB sums in parallel, so their last bits can differ between runs).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from medallion_platform.contracts import Contract
from medallion_platform.lake.lakehouse import REJECTED_SUFFIX
from medallion_platform.naming import ZONES

__all__ = [
    "VOLATILE_COLUMNS",
    "LakeComparison",
    "TableDiff",
    "TableState",
    "compare_lakes",
    "read_lake",
    "rejected_objects",
]

VOLATILE_COLUMNS = frozenset({"_ingested_at", "_batch_id", "ingested_at", "batch_id", "rejected_at", "recorded_at"})
"""Arrival time and random batch ids (raw, trusted, quarantine, the ingest logs, rejected objects), and when a
batch's quality figures were recorded (`trusted/<dataset>_quality`)."""

_LANDING = "raw/landing"
_FLOAT_DECIMALS = 9


@dataclass
class TableState:
    """One table as read: its comparable rows, or the error that stopped it opening or reading."""

    name: str
    rows: pa.Table | None
    error: str | None = None


def find_tables(data_dir: Path) -> list[str]:
    """Names (`<zone>/<table>`, e.g. `raw/_ingest_log/order_events`) of every Delta table under the zones."""
    names = []
    for zone in ZONES:
        root = data_dir / zone
        if not root.is_dir():
            continue
        for log in root.rglob("_delta_log"):
            name = log.parent.relative_to(data_dir).as_posix()
            if not name.startswith(_LANDING):
                names.append(name)
    return sorted(names)


def _comparable(table: pa.Table) -> pa.Table:
    columns, names = [], []
    for name in table.column_names:
        if name in VOLATILE_COLUMNS:
            continue
        column = table[name]
        if pa.types.is_floating(column.type):
            column = pc.round(column, _FLOAT_DECIMALS)
        columns.append(column)
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def read_table(data_dir: Path, name: str) -> TableState:
    """Opens `name` with delta-rs and reads every file of its current version."""
    from deltalake import DeltaTable

    try:
        table = DeltaTable(str(data_dir / name)).to_pyarrow_table()
    except Exception as exc:  # any failure to open or read is what the trial measures
        return TableState(name, None, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    return TableState(name, _comparable(table))


def read_lake(data_dir: Path) -> dict[str, TableState]:
    """Every table of the lake at `data_dir`."""
    return {name: read_table(data_dir, name) for name in find_tables(data_dir)}


def _key_columns(name: str, contracts: Mapping[str, Contract]) -> list[str]:
    """Columns that identify a row: the contract key in trusted, (file, line) in raw, the file in the ingest log."""
    zone, _, table = name.partition("/")
    if zone == "trusted" and table in contracts:
        return list(contracts[table].primary_key)
    if zone == "raw" and table in contracts:
        return ["_source_file", "_source_line"]
    if zone == "raw" and table.startswith("_ingest_log/"):
        return ["source_file"]
    return []


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def duplicate_keys(name: str, rows: pa.Table, contracts: Mapping[str, Contract]) -> int:
    """Rows beyond the first per key (0 for tables without a key)."""
    keys = [k for k in _key_columns(name, contracts) if k in rows.column_names]
    if not keys:
        return 0
    con = duckdb.connect()
    con.register("t", rows)
    cols = ", ".join(f'"{k}"' for k in keys)
    return _scalar(con, f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {cols} FROM t)) FROM t")


def _except_all(con: duckdb.DuckDBPyConnection, left: str, right: str, cols: str) -> int:
    return _scalar(con, f"SELECT count(*) FROM (SELECT {cols} FROM {left} EXCEPT ALL SELECT {cols} FROM {right})")


@dataclass
class TableDiff:
    """One table against the reference: rows lost, rows the reference lacks, duplicate keys, open errors."""

    table: str
    reference_rows: int
    rows: int
    lost: int = 0
    unexpected: int = 0
    duplicates: int = 0
    error: str | None = None
    note: str = ""

    @property
    def equal(self) -> bool:
        """Opens, and holds exactly the reference's rows."""
        return self.error is None and self.lost == 0 and self.unexpected == 0 and self.duplicates == 0


def diff_table(
    name: str, reference: TableState | None, state: TableState | None, contracts: Mapping[str, Contract]
) -> TableDiff:
    """Compares one table with the reference's (either may be missing)."""
    ref_rows = reference.rows if reference is not None and reference.rows is not None else None
    ref_count = ref_rows.num_rows if ref_rows is not None else 0
    if state is None:
        return TableDiff(name, ref_count, 0, lost=ref_count, note="missing")
    if state.rows is None:
        return TableDiff(name, ref_count, 0, lost=ref_count, error=state.error)
    rows = state.rows
    diff = TableDiff(name, ref_count, rows.num_rows, duplicates=duplicate_keys(name, rows, contracts))
    if ref_rows is None:
        diff.unexpected, diff.note = rows.num_rows, "not in the reference"
        return diff
    if set(ref_rows.column_names) != set(rows.column_names):
        diff.lost, diff.unexpected, diff.note = ref_count, rows.num_rows, "columns differ"
        return diff
    con = duckdb.connect()
    con.register("ref", ref_rows)
    con.register("got", rows)
    cols = ", ".join(f'"{c}"' for c in ref_rows.column_names)
    diff.lost = _except_all(con, "ref", "got", cols)
    diff.unexpected = _except_all(con, "got", "ref", cols)
    return diff


@dataclass
class LakeComparison:
    """Every table of a lake against the reference lake."""

    tables: list[TableDiff] = field(default_factory=list)

    @property
    def corrupt(self) -> list[str]:
        """Tables that fail to open or read."""
        return [d.table for d in self.tables if d.error]

    @property
    def lost_rows(self) -> int:
        """Reference rows absent (a missing table loses all of its rows)."""
        return sum(d.lost for d in self.tables)

    @property
    def unexpected_rows(self) -> int:
        """Rows the reference does not have."""
        return sum(d.unexpected for d in self.tables)

    @property
    def duplicated_rows(self) -> int:
        """Rows repeating a key: the contract key in trusted, (file, line) in raw, the file in the ingest log."""
        return sum(d.duplicates for d in self.tables)

    @property
    def differing(self) -> list[str]:
        """Tables not equal to the reference's."""
        return [d.table for d in self.tables if not d.equal]

    def summary(self) -> str:
        """One line per differing table."""
        return "; ".join(
            f"{d.table} ({d.error or d.note or 'differs'}): rows {d.rows} of {d.reference_rows}, "
            f"lost {d.lost}, unexpected {d.unexpected}, duplicate keys {d.duplicates}"
            for d in self.tables
            if not d.equal
        )


def compare_lakes(
    reference: Mapping[str, TableState],
    lake: Mapping[str, TableState],
    contracts: Mapping[str, Contract],
    *,
    only: Callable[[str], bool] = lambda name: True,
) -> LakeComparison:
    """Every table in either lake (filtered by `only`) against the reference's."""
    names = sorted(n for n in set(reference) | set(lake) if only(n))
    return LakeComparison([diff_table(n, reference.get(n), lake.get(n), contracts) for n in names])


def rejected_objects(lake: Mapping[str, TableState]) -> int | None:
    """Distinct objects in the rejected-objects tables (`raw/<dataset>_rejected`); None if there are none."""
    tables = [s for n, s in lake.items() if n.startswith("raw/") and n.endswith(REJECTED_SUFFIX) and s.rows is not None]
    if not tables:
        return None
    return sum(len(pc.unique(state.rows["source_file"])) for state in tables if state.rows is not None)
