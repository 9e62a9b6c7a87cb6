"""Erasure of one data subject across every zone, with a receipt in an append-only ledger.

`erase(lake, "customer_id", "cus-000042")` (behind `medallion erase --key customer_id=cus-000042`):

1. The key must be declared identifying: a contract lists the column in `subject_keys`. Anything else is
   refused (an event id is a key but names nobody; a typo must not erase by accident).
2. Every catalogued table that has the column loses the subject's rows, one Delta delete per table: raw (text
   as it landed; also a malformed record whose text names the value), trusted, quarantine (where the column
   is personal data it holds the keyed hash: both forms match) and any other table the catalog lists with the
   column (history tables when they land). Rejected landing objects carry no record, so they hold no row.
3. The refined tables built from a table that lost rows are brought up to date from their inputs
   (`zones/refined/base.py::refresh_refined`: the dates whose fact files were rewritten, master data changes
   rebuild), then any refined row still naming the subject is deleted.
4. The tables are vacuumed with the given retention: files older than it go now; the rest "age out" when
   the nightly maintenance vacuums them, and the receipt says when (`files_age_out_at`).
5. One row is appended to `raw/erasure_ledger`: the subject as its keyed hash (`zones/pii.py`), the tables
   with the version of each delete and the rows it removed, the refined tables rebuilt, the landing objects
   that held the subject (listed, or deleted from a local landing store when asked), the time and reason.

Kill -9 at any point, then a rerun, gives one receipt with the same figures: erasure number `n` of a subject
is an app transaction on every delete (`medallion/erasure/<hash>` = n) and on the ledger append, so a
rerun skips the tables already done and reads their figures back from the delete commits' metadata
(`medallion.erasure`), and the ledger row is written once. A rerun after the receipt finds nothing left and
writes nothing. The whole erasure holds the lake lock (`lake/lock.py`) when called through the CLI.
"""

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from medallion_platform.catalog import TableEntry, build_catalog
from medallion_platform.errors import ConfigError
from medallion_platform.lake.delta_io import DeltaTableIO, is_local
from medallion_platform.lake.lakehouse import ERASURE_LEDGER, Lakehouse
from medallion_platform.lake.sql import ident, literal
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, RowsWrite
from medallion_platform.zones.entries import subject_keys
from medallion_platform.zones.pii import pii_hasher
from medallion_platform.zones.refined.dependents import refresh_dependents

__all__ = ["ERASURE_METADATA", "LEDGER_SCHEMA", "Erasure", "TableErased", "erase", "subject_keys"]

ERASURE_METADATA = "medallion.erasure"
"""Commit metadata of an erasure's delete: `{"erasure", "rows", "landing"}` as JSON."""

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("erasure_id", pa.string(), nullable=False),
        pa.field("key_column", pa.string(), nullable=False),
        pa.field("subject", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("erased_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("rows_deleted", pa.int64(), nullable=False),
        pa.field("tables", pa.string(), nullable=False),
        pa.field("refined", pa.string(), nullable=False),
        pa.field("landing_objects", pa.string(), nullable=False),
        pa.field("landing_action", pa.string(), nullable=False),
        pa.field("retention_hours", pa.int64(), nullable=False),
        pa.field("files_age_out_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
_LEDGER_COLUMNS = {
    "erasure_id": "<first 16 hex digits of the subject's hash>-<n>: the subject's n-th erasure (from 0)",
    "subject": "keyed hash (sha256:…) of the key's value: the subject is never named in clear",
    "tables": "JSON: [{table, version, rows}] the Delta delete of each table, with the rows it removed",
    "refined": "JSON: [{table, version, mode}] refined tables brought up to date from their inputs",
    "landing_objects": "JSON: landing objects whose records named the subject",
    "landing_action": "listed (left in the landing store) or deleted",
    "files_age_out_at": "when the vacuum retention lets maintenance remove the data files that still hold rows",
}


@dataclass(frozen=True)
class TableErased:
    """One table's delete: its catalog name, the version of the commit and the rows it removed."""

    table: str
    version: int | None
    rows: int


@dataclass
class Erasure:
    """What one `erase` did (or, `already`, that an earlier erasure left nothing to do)."""

    erasure_id: str
    key_column: str
    subject: str
    tables: list[TableErased] = field(default_factory=list)
    refined: list[dict] = field(default_factory=list)
    landing_objects: list[str] = field(default_factory=list)
    landing_action: str = "listed"
    vacuumed_files: int = 0
    files_age_out_at: dt.datetime | None = None
    ledger_version: int | None = None
    already: bool = False

    @property
    def rows_deleted(self) -> int:
        return sum(t.rows for t in self.tables)

    def summary(self) -> list[str]:
        """Lines for people: the receipt."""
        if self.already:
            return [f"nothing left of {self.key_column} {self.subject}: erased before (receipt {self.erasure_id})"]
        lines = [f"erasure {self.erasure_id} of {self.key_column} {self.subject}: {self.rows_deleted} rows deleted"]
        lines += [f"  {t.table:44} {t.rows:>7} rows  (version {t.version})" for t in self.tables]
        lines += [f"  {r['table']:44} rebuilt ({r['mode']}, version {r['version']})" for r in self.refined]
        lines.append(f"  landing objects {self.landing_action}: {len(self.landing_objects)}")
        lines += [f"    {o}" for o in self.landing_objects]
        if self.files_age_out_at is not None:
            ages_out = f"{self.files_age_out_at:%Y-%m-%d %H:%M} UTC"
            lines.append(f"  vacuumed {self.vacuumed_files} files; the older ones age out by {ages_out}")
        lines.append(f"  receipt: raw/{ERASURE_LEDGER} version {self.ledger_version}")
        return lines


def _refuse_unless_identifying(column: str) -> None:
    declared = subject_keys()
    if column not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise ConfigError(
            f"--key {column}: not declared identifying in any contract (declared: {known}); "
            "a contract declares it with `subject_keys: [<column>]` (medallion_platform/contracts/<dataset>.yaml)"
        )


LINEAGE = ("_source_file", "_batch_seq", "_source_line")
"""What names one raw row in every table that carries it: raw, trusted, quarantine (and history tables)."""
Lineage = list[tuple[str, int, list[int]]]
"""Rows by lineage: (source file, batch, [lines])."""


@dataclass
class _Match:
    """The subject's rows in one table: how many, the landing objects they came from, their lineage (if the
    table carries it) and the delete predicate (by lineage where it can: the Delta log records a delete's
    predicate, and it must not name the subject)."""

    rows: int
    landing: list[str]
    lineage: Lineage
    predicate: str


def _columns(table: DeltaTableIO) -> set[str]:
    delta = table.table()
    return set() if delta is None else set(pa.schema(delta.schema().to_arrow()).names)


def _by_lineage(lineage: Lineage) -> str:
    return " OR ".join(
        f"({ident('_source_file')} = {literal(f)} AND {ident('_batch_seq')} = {seq} "
        f"AND {ident('_source_line')} IN ({', '.join(map(str, lines))}))"
        for f, seq, lines in lineage
    )


def _match(table: DeltaTableIO, column: str, value: str, hashed: str, known: Lineage) -> _Match | None:
    """The subject's rows in `table`: its `column` equals the value or its keyed hash (quarantine keeps personal
    data hashed), a record that did not parse names the value (`_raw_record`), or its lineage is that of a raw
    row of the subject (`known`: a quarantined unparseable record, whose text is hashed). None: not applicable."""
    names = _columns(table)
    has_lineage = set(LINEAGE) <= names
    if column not in names and not (has_lineage and known):
        return None
    dataset = table.duckdb_dataset()
    if dataset is None:
        return None
    cond = [f"{ident(column)} IN ({literal(value)}, {literal(hashed)})"] if column in names else []
    if "_raw_record" in names:
        cond.append(f"strpos({ident('_raw_record')}, {literal(value)}) > 0")
    con = duckdb.connect()
    try:
        con.register("t", dataset)
        if has_lineage and known:
            flat = [(f, seq, line) for f, seq, lines in known for line in lines]
            con.register("known", pa.table({k: list(v) for k, v in zip(LINEAGE, zip(*flat, strict=True), strict=True)}))
            keys = " AND ".join(f"k.{ident(c)} = t.{ident(c)}" for c in LINEAGE)
            cond.append(f"EXISTS (SELECT 1 FROM known k WHERE {keys})")
        where = " OR ".join(cond)
        if not has_lineage:
            (count,) = con.execute(f"SELECT count(*) FROM t WHERE {where}").fetchone()  # type: ignore[misc]
            return _Match(int(count), [], [], where)
        found = con.execute(
            f"SELECT {ident('_source_file')}, {ident('_batch_seq')}, list({ident('_source_line')} ORDER BY 1) "
            f"FROM t WHERE {where} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    lineage = [(str(f), int(seq), [int(x) for x in lines]) for f, seq, lines in found]
    rows = sum(len(lines) for _, _, lines in lineage)
    return _Match(rows, sorted({f for f, _, _ in lineage}), lineage, _by_lineage(lineage))


def _earlier(table: DeltaTableIO, erasure_id: str) -> dict | None:
    """The metadata of this erasure's delete commit in `table`, if it was made (a rerun after a kill)."""
    delta = table.table()
    for commit in delta.history() if delta is not None else []:
        record = commit.get(ERASURE_METADATA)
        if record and json.loads(record).get("erasure") == erasure_id:
            return {**json.loads(record), "version": commit.get("version")}
    return None


def _erase_table(
    table: DeltaTableIO, name: str, match: Callable[[], _Match | None], erasure_id: str, app: str, n: int
) -> tuple[TableErased, list[str], Lineage] | None:
    """Deletes the subject's rows from `table` once for erasure `n`: what was deleted, the landing objects and
    the lineage of the rows (read back from the delete commit on a rerun). None: the table holds no such column."""
    if table.transaction_version(app) >= n:
        done = _earlier(table, erasure_id) or {"rows": 0, "landing": [], "lineage": [], "version": table.version()}
        lineage = [(f, int(seq), list(lines)) for f, seq, lines in done.get("lineage", [])]
        return TableErased(name, done["version"], int(done["rows"])), list(done["landing"]), lineage
    found = match()
    if found is None:
        return None
    if found.rows == 0:
        return TableErased(name, table.version(), 0), [], []
    record = {"erasure": erasure_id, "rows": found.rows, "landing": found.landing, "lineage": found.lineage}
    result = table.delete(found.predicate, txns={app: n}, metadata={ERASURE_METADATA: json.dumps(record)})
    deleted = found.rows if result.skipped else result.deleted
    return TableErased(name, result.version, deleted), found.landing, found.lineage


def _landing_path(lake: Lakehouse, source: str) -> Path | None:
    """The local file of landing object `source` (as raw records it), None when the landing store is not local
    (an object store's landing bucket keeps its own lifecycle rules: its objects are listed)."""
    root = lake.settings.landing_root
    if not is_local(root):
        return None
    return Path(root.removeprefix("file://")) / source


def erase(
    lake: Lakehouse,
    column: str,
    value: str,
    *,
    reason: str | None = None,
    retention_hours: int = 168,
    delete_landing: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Erasure:
    """Erases the subject `column` = `value` from every catalogued table that holds the column, rebuilds the
    refined tables built from them, vacuums, and appends the receipt (see the module docstring)."""
    _refuse_unless_identifying(column)
    settings = lake.settings
    subject = pii_hasher(settings).hash_text(value)
    digest = subject.removeprefix("sha256:")
    app = f"medallion/erasure/{digest[:32]}"
    ledger = lake.erasure_ledger()
    n = ledger.transaction_version(app) + 1
    erasure = Erasure(erasure_id=f"{digest[:16]}-{n}", key_column=column, subject=subject)
    catalog = build_catalog(settings)
    entries = [e for e in catalog.entries().values() if not (e.zone == "raw" and e.table == ERASURE_LEDGER)]
    landing: set[str] = set()
    lineage: Lineage = []
    touched: list[DeltaTableIO] = []

    def sweep(zones: Sequence[str]) -> None:
        for entry in (e for e in entries if e.zone in zones):
            table = lake.for_key([entry.zone, entry.table])
            name = f"{entry.zone}/{entry.table}"
            known = list(lineage)

            def match(table: DeltaTableIO = table, known: Lineage = known) -> _Match | None:
                return _match(table, column, value, subject, known)

            done = _erase_table(table, name, match, erasure.erasure_id, app, n)
            if done is None:
                continue
            erased, sources, rows = done
            landing.update(sources)
            if entry.zone == "raw":
                lineage.extend(rows)
            if erased.rows:
                erasure.tables.append(erased)
                touched.append(table)

    sweep(["raw"])  # first: the lineage of the subject's raw rows finds their quarantined unparseable records
    sweep(["trusted", *sorted({e.zone for e in entries} - {"raw", "trusted", "refined"})])
    changed = {t.table.split("/", 1)[1] for t in erasure.tables if t.table.startswith("trusted/")}
    erasure.refined = refresh_dependents(lake, changed)
    sweep(["refined"])  # what a rebuild could not remove (a refined table that copies the key from elsewhere)
    erasure.landing_objects = sorted(landing)
    if n > 0 and not erasure.tables:
        erasure.already, erasure.erasure_id = True, f"{digest[:16]}-{n - 1}"
        return erasure
    if delete_landing:
        paths = [p for p in (_landing_path(lake, o) for o in erasure.landing_objects) if p is not None]
        if len(paths) == len(erasure.landing_objects):
            for path in paths:
                path.unlink(missing_ok=True)
            erasure.landing_action = "deleted"  # also when a killed run deleted them before its receipt
    erasure.vacuumed_files = sum(t.vacuum(retention_hours=retention_hours) for t in touched)
    erased_at = now()
    erasure.files_age_out_at = erased_at + dt.timedelta(hours=retention_hours)
    erasure.ledger_version = _write_receipt(lake, erasure, reason, erased_at, retention_hours, app, n)
    return erasure


def _write_receipt(
    lake: Lakehouse, erasure: Erasure, reason: str | None, at: dt.datetime, retention_hours: int, app: str, n: int
) -> int | None:
    """Appends the erasure's ledger row (once: app transaction `app` = `n`); the ledger's version after it."""
    row = {
        "erasure_id": erasure.erasure_id,
        "key_column": erasure.key_column,
        "subject": erasure.subject,
        "reason": reason,
        "erased_at": at,
        "rows_deleted": erasure.rows_deleted,
        "tables": json.dumps([t.__dict__ for t in erasure.tables]),
        "refined": json.dumps(erasure.refined),
        "landing_objects": json.dumps(erasure.landing_objects),
        "landing_action": erasure.landing_action,
        "retention_hours": retention_hours,
        "files_age_out_at": erasure.files_age_out_at,
    }
    entry = TableEntry(
        description="Erasure receipts: one row per subject erased (append-only), the subject as a keyed hash.",
        owner=lake.settings.platform_principal,
        column_descriptions=_LEDGER_COLUMNS,
    )
    write = RowsWrite(
        rows=pa.Table.from_pylist([row], schema=LEDGER_SCHEMA),
        spec=Append(txns={app: n}),
        schema=LEDGER_SCHEMA,
        entry=entry,
    )
    return persist(lake, ("raw", ERASURE_LEDGER), write).version
