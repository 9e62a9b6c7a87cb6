"""Raw zone: new landing files appended to `raw/<dataset>`, source-faithful, exactly once per file.

Each run is one batch: the files not yet ingested are parsed and streamed into one Delta commit
tagged with the app transaction `(medallion/raw/<dataset>, batch_seq)`. The ingest log
(`raw/_ingest_log/<dataset>`) records which files each batch took; if a run dies between the
raw commit and the log write, the next run rebuilds the missing log rows from raw itself.
"""

import datetime as dt
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
from medallion_platform.ingestion.landing import LandingFile, list_landing_files, read_landing_file
from medallion_platform.ingestion.parsers import ParsedInserter
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import raw_schema
from medallion_platform.lake.writers import write_table
from medallion_platform.lake.writes import Append, TableWrite

__all__ = [
    "RawBatch",
    "RawIngestResult",
    "commit_raw",
    "ingest_raw",
    "log_batch",
    "nothing_new",
    "raw_app_id",
    "raw_write",
    "stage_raw",
]

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


@dataclass(frozen=True)
class RawIngestResult:
    """What one raw ingestion did."""

    dataset: str
    batch_seq: int | None
    batch_id: str | None
    files: list[str]
    rows: int
    rows_by_file: dict[str, int]
    already_ingested: int
    unrecognised: list[str]
    version: int | None
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
        repaired = _summarise(lost)
        if repaired.num_rows:
            log.append(repaired)
        keys |= set(repaired.column("source_file").to_pylist())
    return keys


def _summarise(rows: pa.Table) -> pa.Table:
    grouped = rows.group_by(["_source_file", "_batch_seq", "_batch_id", "_landing_date"]).aggregate(
        [("_ingested_at", "max"), ("_source_file", "count")]
    )
    return pa.table(
        {
            "source_file": grouped["_source_file"],
            "size": pa.nulls(grouped.num_rows, pa.int64()),
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
    unrecognised: list[str] = field(default_factory=list)
    max_chunk_rows: int = 0
    """Largest chunk of lines parsed at once (bounded by the configured batch size)."""

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())

    def reader(self, batch_rows: int) -> pa.RecordBatchReader:
        """The batch's rows in the raw schema, streamed in record batches of at most `batch_rows`."""
        schema = raw_schema(self.contract)
        columns = ", ".join(f'"{name}"' for name in schema.names)
        source = self.connection.sql(f'SELECT {columns} FROM "{self.table}"').to_arrow_reader(batch_rows)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in source))

    def malformed(self) -> int:
        """Rows of the batch that could not be parsed (kept in raw with `_parse_error`)."""
        found = self.connection.execute(f'SELECT count(*) FROM "{self.table}" WHERE _parse_error IS NOT NULL')
        return int(found.fetchall()[0][0])

    def drop(self) -> None:
        self.connection.execute(f'DROP TABLE IF EXISTS "{self.table}"')


def _duckdb_type(kind: pa.DataType) -> str:
    if pa.types.is_int64(kind):
        return "BIGINT"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    return "VARCHAR"


def stage_raw(
    lake: Lakehouse,
    contract: Contract,
    connection: duckdb.DuckDBPyConnection,
    *,
    landing_dates: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> RawBatch | None:
    """Parses the landing files not yet in raw into a DuckDB table; None when nothing is new."""
    raw = lake.raw(contract.name)
    last_seq = raw.transaction_version(raw_app_id(contract.name))
    done = _ingested_keys(lake, contract, raw, last_seq)
    files, unrecognised = _landed(lake, contract, landing_dates)
    new = [f for f in files if f.key not in done]
    if not new:
        return None
    seq = last_seq + 1
    ingested_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    batch = RawBatch(
        contract=contract,
        seq=seq,
        batch_id=f"{contract.name}-{seq:06d}-{uuid.uuid4().hex[:8]}",
        ingested_at=ingested_at,
        files=new,
        table=f"raw_batch_{contract.name}_{uuid.uuid4().hex[:8]}",
        connection=connection,
        already_ingested=len(files) - len(new),
        unrecognised=sorted(unrecognised),
    )
    columns = ", ".join(f'"{f.name}" {_duckdb_type(f.type)}' for f in raw_schema(contract))
    connection.execute(f'CREATE TABLE "{batch.table}" ({columns})')
    constants = {
        "_ingested_at": f"TIMESTAMPTZ '{ingested_at.isoformat()}'",
        "_batch_id": f"'{batch.batch_id}'",
        "_batch_seq": str(seq),
    }
    inserter = ParsedInserter(connection, batch.table, contract, constants, chunk_rows=lake.settings.batch_rows)

    def prepare(landing: LandingFile) -> pa.Table:
        data = read_landing_file(lake.settings, contract, landing.key)
        return inserter.prepare(data, {"_source_file": landing.key, "_landing_date": landing.landing_date})

    # Objects are read and split into lines on a helper thread while DuckDB parses the ones before
    # (Arrow releases the GIL); at most PREFETCH_BYTES of landing data (and one object) wait, so memory
    # stays bounded.
    waiting: deque[tuple[LandingFile, Future[pa.Table]]] = deque()
    ahead = 0

    def take() -> None:
        nonlocal ahead
        taken, future = waiting.popleft()
        ahead -= taken.size
        batch.rows_by_file[taken.key] = inserter.add_prepared(future.result())

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medallion-landing") as pool:
        for landing in new:
            waiting.append((landing, pool.submit(prepare, landing)))
            ahead += landing.size
            while len(waiting) > 1 and ahead > PREFETCH_BYTES:
                take()
        while waiting:
            take()
    inserter.flush()
    batch.max_chunk_rows = inserter.max_chunk_rows
    return batch


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
    write_table(lake.raw(batch.contract.name), write, batch_rows=lake.settings.write_batch_rows)
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
    lake.ingest_log(contract.name).append(log)
    return RawIngestResult(
        dataset=contract.name,
        batch_seq=batch.seq,
        batch_id=batch.batch_id,
        files=[f.key for f in batch.files],
        rows=result.inserted,
        rows_by_file=dict(batch.rows_by_file),
        already_ingested=batch.already_ingested,
        unrecognised=batch.unrecognised,
        version=result.version,
        landing_dates=sorted({f.landing_date for f in batch.files}),
        malformed=batch.malformed(),
        max_batch_rows=max(result.max_batch_rows, batch.max_chunk_rows),
    )


def _scopes(landing_dates: Sequence[str] | None) -> list[str | None]:
    """The landing dates to list, or [None] for every date."""
    return list(landing_dates) if landing_dates else [None]


def _landed(
    lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None
) -> tuple[list[LandingFile], list[str]]:
    """Landed objects of the given landing dates (or all), and keys outside the landing layout."""
    files: list[LandingFile] = []
    unrecognised: list[str] = []
    for date in _scopes(landing_dates):
        found, odd = list_landing_files(lake.settings, contract, date=date)
        files += found
        unrecognised += odd
    return files, unrecognised


def nothing_new(lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None = None) -> RawIngestResult:
    files, unrecognised = _landed(lake, contract, landing_dates)
    return RawIngestResult(
        contract.name,
        None,
        None,
        [],
        0,
        {},
        len(files),
        sorted(unrecognised),
        lake.raw(contract.name).version(),
    )


def ingest_raw(
    lake: Lakehouse,
    contract: Contract,
    *,
    landing_date: str | None = None,
    landing_dates: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> RawIngestResult:
    """Appends every landing file of `contract` (optionally of some landing dates) not yet in raw."""
    from medallion_platform.engine.embedded import shared_connection

    dates = list(landing_dates or ([landing_date] if landing_date else [])) or None
    batch = stage_raw(lake, contract, shared_connection(), landing_dates=dates, now=now)
    if batch is None:
        return nothing_new(lake, contract, dates)
    try:
        return commit_raw(lake, batch)
    finally:
        batch.drop()
