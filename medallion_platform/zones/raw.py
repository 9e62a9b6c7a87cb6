"""Raw zone: new landing files appended to `raw/<dataset>`, source-faithful, exactly once per file.

Each run is one batch: the files not yet ingested are parsed and streamed into one Delta commit
tagged with the app transaction `(medallion/raw/<dataset>, batch_seq)`. The ingest log
(`raw/_ingest_log/<dataset>`) records which files each batch took; if a run dies between the
raw commit and the log write, the next run rebuilds the missing log rows from raw itself.
"""

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.landing import LandingFile, list_landing_files, read_landing_file
from medallion_platform.ingestion.parsers import parse_landing_file
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.schema import raw_schema
from medallion_platform.settings import Settings

__all__ = ["RawIngestResult", "ingest_raw", "raw_app_id", "raw_table"]

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


def raw_app_id(dataset: str) -> str:
    return f"medallion/raw/{dataset}"


def raw_table(settings: Settings, dataset: str) -> DeltaTableIO:
    return DeltaTableIO(settings.table_uri("raw", dataset), storage_options=settings.storage_options)


def _log_table(settings: Settings, dataset: str) -> DeltaTableIO:
    return DeltaTableIO(settings.table_uri("raw", f"_ingest_log/{dataset}"), storage_options=settings.storage_options)


def _ingested_keys(settings: Settings, contract: Contract, raw: DeltaTableIO, last_seq: int) -> set[str]:
    """Files already in raw; repairs the log if a run died after its raw commit."""
    log = _log_table(settings, contract.name)
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


def _batches(
    settings: Settings,
    contract: Contract,
    files: list[LandingFile],
    meta: dict,
    counts: dict[str, int],
    malformed: list[int],
) -> Iterator[pa.RecordBatch]:
    schema = raw_schema(contract)
    for landing in files:
        parsed = parse_landing_file(read_landing_file(settings, contract, landing.key), contract)
        n = parsed.num_rows
        counts[landing.key] = n
        malformed[0] += n - parsed.column("_parse_error").null_count
        extra = {
            "_source_file": pa.array([landing.key] * n, pa.string()),
            "_ingested_at": pa.array([meta["ingested_at"]] * n, pa.timestamp("us", tz="UTC")),
            "_batch_id": pa.array([meta["batch_id"]] * n, pa.string()),
            "_batch_seq": pa.array([meta["batch_seq"]] * n, pa.int64()),
            "_landing_date": pa.array([landing.landing_date] * n, pa.string()),
        }
        table = pa.table({**{name: parsed.column(name) for name in parsed.column_names}, **extra})
        yield from table.select(schema.names).cast(schema).to_batches(max_chunksize=settings.batch_rows)


def ingest_raw(
    settings: Settings,
    contract: Contract,
    *,
    landing_date: str | None = None,
    now: dt.datetime | None = None,
) -> RawIngestResult:
    """Appends every landing file of `contract` (optionally of one landing date) not yet in raw."""
    raw = raw_table(settings, contract.name)
    app_id = raw_app_id(contract.name)
    last_seq = raw.transaction_version(app_id)
    done = _ingested_keys(settings, contract, raw, last_seq)
    files, unrecognised = list_landing_files(settings, contract, date=landing_date)
    new = [f for f in files if f.key not in done]
    if not new:
        return RawIngestResult(
            contract.name, None, None, [], 0, {}, len(files), unrecognised, raw.version(), malformed=0
        )
    seq = last_seq + 1
    ingested_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    meta = {
        "batch_seq": seq,
        "batch_id": f"{contract.name}-{seq:06d}-{uuid.uuid4().hex[:8]}",
        "ingested_at": ingested_at,
    }
    counts: dict[str, int] = {}
    malformed = [0]
    reader = pa.RecordBatchReader.from_batches(
        raw_schema(contract), _batches(settings, contract, new, meta, counts, malformed)
    )
    result = raw.append(
        reader,
        partition_by=["_landing_date"],
        app_id=app_id,
        version=seq,
        metadata={"medallion.batch_id": meta["batch_id"], "medallion.files": len(new)},
    )
    log = pa.table(
        {
            "source_file": [f.key for f in new],
            "size": [f.size for f in new],
            "rows": [counts.get(f.key, 0) for f in new],
            "landing_date": [f.landing_date for f in new],
            "batch_seq": [seq] * len(new),
            "batch_id": [meta["batch_id"]] * len(new),
            "ingested_at": [ingested_at] * len(new),
        },
        schema=LOG_SCHEMA,
    )
    _log_table(settings, contract.name).append(log)
    return RawIngestResult(
        dataset=contract.name,
        batch_seq=seq,
        batch_id=meta["batch_id"],
        files=[f.key for f in new],
        rows=result.inserted,
        rows_by_file=counts,
        already_ingested=len(files) - len(new),
        unrecognised=unrecognised,
        version=result.version,
        landing_dates=sorted({f.landing_date for f in new}),
        malformed=malformed[0],
    )
