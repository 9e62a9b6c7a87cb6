"""Raw's ledger: which landing objects raw holds (the ingest log), which it rejected, and what a
landing prefix holds that raw has not taken (the survey a source step starts from).

The ingest log (`raw/_ingest_log/<dataset>`) records which files each raw batch took; if a run died
between the raw commit and the log write, the next survey rebuilds the missing log rows from raw
itself. Rejected objects (`raw/<dataset>_rejected`) are recorded once per key and fingerprint (size
and modification time): a rejected object is skipped while its fingerprint stays the same.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.ingestion.landing import LandingFile, LandingScan, RejectedObject, landing_sizes, scan_landing
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, RowsWrite, TableWrite

__all__ = [
    "LOG_SCHEMA",
    "REJECTED_SCHEMA",
    "LedgerAppend",
    "Survey",
    "ingest_log_append",
    "raw_app_id",
    "rejected_objects",
    "rejection_rows",
    "rejections_by_key",
    "survey_landing",
]

LOG_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("rows", pa.int64()),
        pa.field("landing_date", pa.string()),
        pa.field("batch_seq", pa.int64()),
        pa.field("batch_id", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string()),
        pa.field("reason", pa.string()),  # a key of ingestion.landing.REJECTION_REASONS
        pa.field("detail", pa.string()),  # the error in words
        pa.field("fingerprint", pa.string()),  # size@mtime_ns: a re-landed object has a new one
        pa.field("landing_date", pa.string()),  # from the key, when it is in the layout
        pa.field("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class LedgerAppend:
    """Rows appended in one commit to one of raw's bookkeeping tables (the ingest log, the rejections),
    through `persist()` like every other write: small Arrow tables, written as they are."""

    lake: Lakehouse
    key: tuple[str, str]
    """The table's `[zone, name]`; it is registered under it when `write.entry` is set."""
    table: DeltaTableIO
    write: RowsWrite
    engine: Engine | None = None
    """The engine that writes the rows: None, delta-rs on the driver; on a cluster (`databricks`), the
    cluster's Spark (by name, or by path for the uncatalogued ingest log)."""

    def apply(self) -> WriteResult:
        """Appends the rows (one commit) and registers the table if it is catalogued."""
        if self.engine is None:
            return persist(self.lake, self.key, self.write, table=self.table)
        rows = self.write
        frame = TableWrite(
            engine=self.engine,
            frame=self.engine.dataframe(rows.rows, "ledger"),
            spec=rows.spec,
            schema=rows.schema,
            entry=rows.entry,
        )
        rows.result = persist(self.lake, self.key, frame, table=self.table)
        return rows.result


def ingest_log_append(lake: Lakehouse, dataset: str, rows: pa.Table, *, engine: Engine | None = None) -> LedgerAppend:
    """Rows for the ingest log `raw/_ingest_log/<dataset>`: internal bookkeeping, which the catalog does not list."""
    write = RowsWrite(rows=rows, spec=Append(), schema=LOG_SCHEMA)
    return LedgerAppend(lake, ("raw", f"_ingest_log/{dataset}"), lake.ingest_log(dataset), write, engine)


def raw_app_id(dataset: str) -> str:
    return f"medallion/raw/{dataset}"


@dataclass(frozen=True)
class Survey:
    """What the landing prefix holds for a run, against raw's ledger."""

    last_seq: int
    """The last raw batch committed (-1 for none)."""
    raw_version: int | None
    """Raw's Delta version when surveyed (None: no raw table yet)."""
    new: list[LandingFile]
    """Objects neither in raw nor rejected before with the same fingerprint: to parse."""
    already_ingested: int
    rejected: list[RejectedObject]
    """Objects raw does not take: rejected before and unchanged since, and `newly_rejected`."""
    newly_rejected: list[RejectedObject]
    """Entries the listing cannot take (outside the layout, a folder, a dangling link) seen for the first time."""


def survey_landing(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None) -> Survey:
    """Lists the landing prefix (of some landing dates, or all) once and sorts what it holds: new
    objects, objects raw already holds, objects rejected before and entries rejected now.

    Repairs the ingest log first if a run died between its raw commit and its log write.
    """
    raw = lake.raw(contract.name)
    with raw.opened():
        last_seq = raw.transaction_version(raw_app_id(contract.name))
        ingested = _ingested_keys(lake, contract, raw, last_seq)
        version = raw.version()
    scan = _scan(lake, contract, landing_dates)
    recorded = rejected_objects(lake, contract.name)
    held_back = [recorded[(f.key, f.fingerprint)] for f in scan.files if (f.key, f.fingerprint) in recorded]
    unseen = [r for r in scan.rejected if (r.key, r.fingerprint) not in recorded]
    seen = [recorded[(r.key, r.fingerprint)] for r in scan.rejected if (r.key, r.fingerprint) in recorded]
    return Survey(
        last_seq=last_seq,
        raw_version=version,
        new=[f for f in scan.files if f.key not in ingested and (f.key, f.fingerprint) not in recorded],
        already_ingested=sum(f.key in ingested for f in scan.files),
        rejected=sorted([*held_back, *seen, *unseen], key=lambda r: r.key),
        newly_rejected=unseen,
    )


def _ingested_keys(lake: Lakehouse, contract: Contract, raw: DeltaTableIO, last_seq: int) -> set[str]:
    """Files already in raw; repairs the log if a run died after its raw commit."""
    log = lake.ingest_log(contract.name)
    logged = log.read(columns=["source_file", "batch_seq"])
    keys = set() if logged is None else set(logged.column("source_file").to_pylist())
    logged_max = -1 if logged is None or logged.num_rows == 0 else pc.max(logged.column("batch_seq")).as_py()
    if last_seq > logged_max:
        lost = raw.read(
            filter=ds.field("_batch_seq") > logged_max,
            columns=["_source_file", "_batch_seq", "_batch_id", "_ingested_at", "_landing_date"],
        )
        repaired = _summarise(lake, lost)
        if repaired.num_rows:
            ingest_log_append(lake, contract.name, repaired).apply()
        keys |= set(repaired.column("source_file").to_pylist())
    return keys


def _summarise(lake: Lakehouse, rows: pa.Table) -> pa.Table:
    """The ingest-log rows of raw rows whose batch the log lost (sizes from the landing objects, as logged)."""
    grouped = rows.group_by(["_source_file", "_batch_seq", "_batch_id", "_landing_date"]).aggregate(
        [("_ingested_at", "max"), ("_source_file", "count")]
    )
    keys = grouped["_source_file"].to_pylist()
    sizes = landing_sizes(lake.settings, keys)
    return pa.table(
        {
            "source_file": grouped["_source_file"],
            "size": pa.array([sizes[k] for k in keys], pa.int64()),
            "rows": grouped["_source_file_count"].cast(pa.int64()),
            "landing_date": grouped["_landing_date"],
            "batch_seq": grouped["_batch_seq"],
            "batch_id": grouped["_batch_id"],
            "ingested_at": grouped["_ingested_at_max"],
        },
        schema=LOG_SCHEMA,
    )


def rejected_objects(lake: Lakehouse, dataset: str) -> dict[tuple[str, str], RejectedObject]:
    """Every rejection recorded for `dataset`, by (key, fingerprint)."""
    table = lake.rejected(dataset).read()
    if table is None:
        return {}
    return rejections_by_key(table.to_pylist())


def rejections_by_key(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], RejectedObject]:
    """Rows of a `raw/<dataset>_rejected` table as rejections, by (key, fingerprint)."""
    return {
        (row["source_file"], row["fingerprint"]): RejectedObject(
            key=row["source_file"],
            reason=row["reason"],
            detail=row["detail"],
            fingerprint=row["fingerprint"],
            landing_date=row["landing_date"],
        )
        for row in rows
    }


def rejection_rows(rejected: Sequence[RejectedObject], now: dt.datetime) -> pa.Table:
    """The rows of `raw/<dataset>_rejected` that record `rejected`."""
    return pa.table(
        {
            "source_file": [r.key for r in rejected],
            "reason": [r.reason for r in rejected],
            "detail": [r.detail for r in rejected],
            "fingerprint": [r.fingerprint for r in rejected],
            "landing_date": [r.landing_date for r in rejected],
            "rejected_at": [now] * len(rejected),
        },
        schema=REJECTED_SCHEMA,
    )


def _scan(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None) -> LandingScan:
    """Landed objects of the given landing dates (or all), and the entries raw cannot take."""
    scan = LandingScan()
    scopes: list[str | None] = list(landing_dates) if landing_dates else [None]
    for date in scopes:
        found = scan_landing(lake.settings, contract, date=date)
        scan.files += found.files
        scan.rejected += found.rejected
    return scan
