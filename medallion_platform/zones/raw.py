"""Raw zone: new landing files appended to `raw/<dataset>`, source-faithful, exactly once per file.

Each run is one batch: the files not yet ingested are parsed and streamed into one Delta commit
tagged with the app transaction `(medallion/raw/<dataset>, batch_seq)`. The ingest log
(`raw/_ingest_log/<dataset>`) records which files each batch took; if a run dies between the
raw commit and the log write, the next run rebuilds the missing log rows from raw itself.

Poison input never blocks a batch: a landing object raw cannot take (outside the layout, a directory,
a dangling link, not a file, a gzip that does not decompress, bytes that are not text) is recorded once,
with its key, fingerprint (size and modification time) and reason, in `raw/<dataset>_rejected`, named
in a warning, and left out; the other objects go through. A rejected object is skipped while its
fingerprint stays the same; re-landed with new content under the same key, it is tried again.
"""

import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.landing import (
    LandingFile,
    LandingScan,
    RejectedObject,
    UnreadableObject,
    landing_sizes,
    read_landing_file,
    scan_landing,
)
from medallion_platform.ingestion.parsers import ParsedInserter
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import REJECTED_SUFFIX, Lakehouse
from medallion_platform.lake.schema import raw_schema
from medallion_platform.lake.sql import duckdb_type, ident, idents, literal
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, RowsWrite, TableWrite
from medallion_platform.zones.entries import rejected_entry, source_entries

__all__ = [
    "REJECTED_SCHEMA",
    "RawBatch",
    "RawIngestResult",
    "commit_raw",
    "ingest_raw",
    "log_batch",
    "nothing_new",
    "raw_app_id",
    "raw_write",
    "rejected_objects",
    "stage_raw",
]

_log = logging.getLogger(__name__)

PREFETCH_BYTES = 64 * 1024 * 1024
"""Landing bytes read and split into lines ahead of the parser: about one parse chunk, so the next
chunk is ready when DuckDB finishes the current one (fewer bytes left DuckDB waiting for the lines)."""

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


@dataclass(frozen=True, kw_only=True)
class RawIngestResult:
    """What one raw ingestion did."""

    dataset: str
    batch_seq: int | None = None
    batch_id: str | None = None
    files: list[str] = field(default_factory=list)
    rows: int = 0
    rows_by_file: dict[str, int] = field(default_factory=dict)
    already_ingested: int = 0
    rejected: list[RejectedObject] = field(default_factory=list)
    """Landing objects raw does not take (rejected by this run or before and unchanged since)."""
    newly_rejected: int = 0
    version: int | None = None
    landing_dates: list[str] = field(default_factory=list)
    malformed: int = 0
    max_batch_rows: int = 0


def raw_app_id(dataset: str) -> str:
    return f"medallion/raw/{dataset}"


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
            _append_to_log(lake, contract.name, repaired)
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


@dataclass
class RawBatch:
    """New landing files parsed into a DuckDB table, ready to commit to raw (and to promote from).

    Held in the process's embedded DuckDB connection, which spills to disk past its memory limit.
    """

    contract: Contract
    seq: int
    batch_id: str
    ingested_at: dt.datetime
    files: list[LandingFile]
    table: str
    connection: duckdb.DuckDBPyConnection
    rows_by_file: dict[str, int] = field(default_factory=dict)
    already_ingested: int = 0
    rejected: list[RejectedObject] = field(default_factory=list)
    """Landing objects raw does not take (this run's and earlier ones still in place)."""
    newly_rejected: int = 0
    max_chunk_rows: int = 0
    """Largest chunk of lines parsed at once (bounded by the configured batch size)."""

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())

    def reader(self, batch_rows: int) -> pa.RecordBatchReader:
        """The batch's rows in the raw schema, streamed in record batches of at most `batch_rows`."""
        schema = raw_schema(self.contract)
        source = self.connection.sql(f"SELECT {idents(schema.names)} FROM {ident(self.table)}")
        source = source.to_arrow_reader(batch_rows)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in source))

    def malformed(self) -> int:
        """Rows of the batch that could not be parsed (kept in raw with `_parse_error`)."""
        found = self.connection.execute(f"SELECT count(*) FROM {ident(self.table)} WHERE _parse_error IS NOT NULL")
        return int(found.fetchall()[0][0])

    def drop(self) -> None:
        self.connection.execute(f"DROP TABLE IF EXISTS {ident(self.table)}")


@dataclass
class _Survey:
    """What the landing prefix holds for a run: objects to parse, and what raw does not take."""

    new: list[LandingFile]
    already_ingested: int
    rejected: list[RejectedObject]
    newly_rejected: list[RejectedObject]


def _survey(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None, ingested: set[str]) -> _Survey:
    """The objects not yet in raw nor rejected before (same fingerprint), and the rejected ones."""
    scan = _scan(lake, contract, landing_dates)
    recorded = rejected_objects(lake, contract.name)
    held_back = [recorded[(f.key, f.fingerprint)] for f in scan.files if (f.key, f.fingerprint) in recorded]
    unseen = [r for r in scan.rejected if (r.key, r.fingerprint) not in recorded]
    seen = [recorded[(r.key, r.fingerprint)] for r in scan.rejected if (r.key, r.fingerprint) in recorded]
    new = [f for f in scan.files if f.key not in ingested and (f.key, f.fingerprint) not in recorded]
    return _Survey(
        new=new,
        already_ingested=sum(f.key in ingested for f in scan.files),
        rejected=sorted([*held_back, *seen, *unseen], key=lambda r: r.key),
        newly_rejected=unseen,
    )


def rejected_objects(lake: Lakehouse, dataset: str) -> dict[tuple[str, str], RejectedObject]:
    """Every rejection recorded for `dataset`, by (key, fingerprint)."""
    table = lake.rejected(dataset).read()
    if table is None:
        return {}
    return {
        (row["source_file"], row["fingerprint"]): RejectedObject(
            key=row["source_file"],
            reason=row["reason"],
            detail=row["detail"],
            fingerprint=row["fingerprint"],
            landing_date=row["landing_date"],
        )
        for row in table.to_pylist()
    }


def _record_rejections(
    lake: Lakehouse, dataset: str, rejected: Sequence[RejectedObject], now: dt.datetime, log: logging.Logger
) -> None:
    """Appends new rejections to `raw/<dataset>_rejected` and names each in a warning."""
    if not rejected:
        return
    for item in rejected:
        log.warning(f"raw/{dataset}: rejected landing object {item.describe()}; the other objects go on")
    table = pa.table(
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
    entry = rejected_entry(dataset, lake.settings.platform_principal)
    rows = RowsWrite(rows=table, spec=Append(), schema=REJECTED_SCHEMA, entry=entry)
    persist(lake, ("raw", f"{dataset}{REJECTED_SUFFIX}"), rows)


def stage_raw(
    lake: Lakehouse,
    contract: Contract,
    connection: duckdb.DuckDBPyConnection,
    *,
    landing_dates: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    log: logging.Logger | None = None,
) -> RawBatch | None:
    """Parses the landing files not yet in raw into a DuckDB table; None when nothing new is readable.

    Objects raw cannot take are recorded in `raw/<dataset>_rejected` and warned about on `log`
    (a Dagster step passes `context.log`), once per object and fingerprint.
    """
    log = log or _log
    raw = lake.raw(contract.name)
    last_seq = raw.transaction_version(raw_app_id(contract.name))
    survey = _survey(lake, contract, landing_dates, _ingested_keys(lake, contract, raw, last_seq))
    ingested_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not survey.new:
        _record_rejections(lake, contract.name, survey.newly_rejected, ingested_at, log)
        return None
    seq = last_seq + 1
    batch = RawBatch(
        contract=contract,
        seq=seq,
        batch_id=f"{contract.name}-{seq:06d}-{uuid.uuid4().hex[:8]}",
        ingested_at=ingested_at,
        files=[],
        table=f"raw_batch_{contract.name}_{uuid.uuid4().hex[:8]}",
        connection=connection,
        already_ingested=survey.already_ingested,
    )
    columns = ", ".join(f"{ident(f.name)} {duckdb_type(f.type)}" for f in raw_schema(contract))
    connection.execute(f"CREATE TABLE {ident(batch.table)} ({columns})")
    constants = {
        "_ingested_at": f"CAST({literal(ingested_at.isoformat())} AS TIMESTAMPTZ)",
        "_batch_id": literal(batch.batch_id),
        "_batch_seq": literal(seq),
    }
    inserter = ParsedInserter(connection, batch.table, contract, constants, chunk_rows=lake.settings.batch_rows)
    unreadable = _parse_objects(lake, contract, survey.new, inserter, batch)
    newly_rejected = [*survey.newly_rejected, *unreadable]
    _record_rejections(lake, contract.name, newly_rejected, ingested_at, log)
    batch.rejected = sorted([*survey.rejected, *unreadable], key=lambda r: r.key)
    batch.newly_rejected = len(newly_rejected)
    if not batch.files:
        batch.drop()
        return None
    return batch


def _parse_objects(
    lake: Lakehouse, contract: Contract, landed: list[LandingFile], inserter: ParsedInserter, batch: RawBatch
) -> list[RejectedObject]:
    """Parses `landed` into the batch's table (adding each object taken to `batch.files`); returns the
    objects that could not be read or decoded.

    Objects are read and split into lines on a helper thread while DuckDB parses the ones before
    (Arrow releases the GIL); at most PREFETCH_BYTES of landing data (and one object) wait, so memory
    stays bounded.
    """

    def prepare(landing: LandingFile) -> pa.Table:
        data = read_landing_file(lake.settings, contract, landing.key)
        return inserter.prepare(data, {"_source_file": landing.key, "_landing_date": landing.landing_date})

    reading: deque[tuple[LandingFile, Future[pa.Table]]] = deque()
    unreadable: list[RejectedObject] = []
    bytes_in_flight = 0

    def parse_oldest() -> None:
        nonlocal bytes_in_flight
        landing, future = reading.popleft()
        bytes_in_flight -= landing.size
        try:
            prepared = future.result()
        except UnreadableObject as exc:
            unreadable.append(_rejection(landing, exc.reason, exc.detail))
            return
        except (pa.ArrowException, ValueError, MemoryError) as exc:  # what Arrow or the parser could not take
            unreadable.append(_rejection(landing, "unreadable", f"{type(exc).__name__}: {exc}"))
            return
        batch.rows_by_file[landing.key] = inserter.add_prepared(prepared)
        batch.files.append(landing)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medallion-landing") as pool:
        for landing in landed:
            reading.append((landing, pool.submit(prepare, landing)))
            bytes_in_flight += landing.size
            while len(reading) > 1 and bytes_in_flight > PREFETCH_BYTES:
                parse_oldest()
        while reading:
            parse_oldest()
    inserter.flush()
    batch.max_chunk_rows = inserter.max_chunk_rows
    return unreadable


def _rejection(landing: LandingFile, reason: str, detail: str) -> RejectedObject:
    return RejectedObject(landing.key, reason, detail[:500], landing.fingerprint, landing.landing_date)


def raw_write(batch: RawBatch) -> TableWrite:
    """The staged batch as a raw append (one commit tagged with the batch's app transaction).

    The batch was parsed on the driver into the process's DuckDB, whatever the step's engine, so it
    is written from there by the embedded writer.
    """
    from medallion_platform.engine.embedded import EmbeddedEngine

    engine = EmbeddedEngine()
    contract = batch.contract
    return TableWrite(
        engine=engine,
        frame=engine.duckdb_frame(batch.connection, batch.table),
        spec=Append(
            partition_by=("_landing_date",),
            txns={raw_app_id(contract.name): batch.seq},
            metadata={"medallion.batch_id": batch.batch_id, "medallion.files": len(batch.files)},
        ),
        schema=raw_schema(contract),
    )


def commit_raw(lake: Lakehouse, batch: RawBatch) -> RawIngestResult:
    """Appends the staged batch to raw in one commit (streamed), then logs its files."""
    write = raw_write(batch)
    write.entry = source_entries(batch.contract, lake.settings.platform_principal)["raw"]
    persist(lake, ("raw", batch.contract.name), write)
    return log_batch(lake, batch, write.written())


def log_batch(lake: Lakehouse, batch: RawBatch, result: WriteResult) -> RawIngestResult:
    """Records the files a committed raw batch took in the ingest log, and what the batch held."""
    contract = batch.contract
    log = pa.table(
        {
            "source_file": [f.key for f in batch.files],
            "size": [f.size for f in batch.files],
            "rows": [batch.rows_by_file.get(f.key, 0) for f in batch.files],
            "landing_date": [f.landing_date for f in batch.files],
            "batch_seq": [batch.seq] * len(batch.files),
            "batch_id": [batch.batch_id] * len(batch.files),
            "ingested_at": [batch.ingested_at] * len(batch.files),
        },
        schema=LOG_SCHEMA,
    )
    _append_to_log(lake, contract.name, log)
    return RawIngestResult(
        dataset=contract.name,
        batch_seq=batch.seq,
        batch_id=batch.batch_id,
        files=[f.key for f in batch.files],
        rows=result.inserted,
        rows_by_file=dict(batch.rows_by_file),
        already_ingested=batch.already_ingested,
        rejected=batch.rejected,
        newly_rejected=batch.newly_rejected,
        version=result.version,
        landing_dates=sorted({f.landing_date for f in batch.files}),
        malformed=batch.malformed(),
        max_batch_rows=max(result.max_batch_rows, batch.max_chunk_rows),
    )


def _append_to_log(lake: Lakehouse, dataset: str, rows: pa.Table) -> None:
    """Appends to the ingest log `raw/_ingest_log/<dataset>`: internal bookkeeping, which the catalog does not list."""
    persist(
        lake, ("raw", f"_ingest_log/{dataset}"), RowsWrite(rows, Append(), LOG_SCHEMA), table=lake.ingest_log(dataset)
    )


def _scopes(landing_dates: Sequence[str] | None) -> list[str | None]:
    """The landing dates to list, or [None] for every date."""
    return list(landing_dates) if landing_dates else [None]


def _scan(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None) -> LandingScan:
    """Landed objects of the given landing dates (or all), and the entries raw cannot take."""
    scan = LandingScan()
    for date in _scopes(landing_dates):
        found = scan_landing(lake.settings, contract, date=date)
        scan.files += found.files
        scan.rejected += found.rejected
    return scan


def nothing_new(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None = None) -> RawIngestResult:
    """The result of a run that found nothing new to ingest: what is already in raw, and what is rejected."""
    raw = lake.raw(contract.name)
    last_seq = raw.transaction_version(raw_app_id(contract.name))
    survey = _survey(lake, contract, landing_dates, _ingested_keys(lake, contract, raw, last_seq))
    return RawIngestResult(
        dataset=contract.name,
        already_ingested=survey.already_ingested,
        rejected=survey.rejected,
        version=raw.version(),
    )


def ingest_raw(
    lake: Lakehouse,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> RawIngestResult:
    """Appends every landing file of `contract` (optionally of some landing dates) not yet in raw."""
    from medallion_platform.engine.embedded import shared_connection

    batch = stage_raw(lake, contract, shared_connection(), landing_dates=landing_dates, now=now)
    if batch is None:
        return nothing_new(lake, contract, landing_dates)
    try:
        return commit_raw(lake, batch)
    finally:
        batch.drop()
