"""Raw zone: new landing files appended to `raw/<dataset>`, source-faithful, exactly once per file.

Each run is one batch: the files not yet ingested are parsed (`zones/raw_stage.py`) and streamed
into one Delta commit tagged with the app transaction `(medallion/raw/<dataset>, batch_seq)`. The
ingest log (`raw/_ingest_log/<dataset>`, `zones/raw_ledger.py`) records which files each batch took;
if a run dies between the raw commit and the log write, the next run rebuilds the missing log rows
from raw itself.

Poison input never blocks a batch: a landing object raw cannot take (outside the layout, a directory,
a dangling link, not a file, a gzip that does not decompress, bytes that are not text) is recorded once,
with its key, fingerprint (size and modification time) and reason, in `raw/<dataset>_rejected`, named
in a warning, and left out; the other objects go through. A rejected object is skipped while its
fingerprint stays the same; re-landed with new content under the same key, it is tried again.

This module holds raw's writes, as planned by `zones/source_step.py`: the batch's append, the ingest
log's rows and the rejections.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from medallion_platform.ingestion.landing import RejectedObject
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import raw_schema
from medallion_platform.lake.writes import Append, TableWrite
from medallion_platform.zones.raw_ledger import LOG_SCHEMA, REJECTED_SCHEMA, raw_app_id, rejection_rows
from medallion_platform.zones.raw_stage import RawBatch

__all__ = [
    "REJECTED_SCHEMA",
    "LedgerAppend",
    "RawBatch",
    "RawIngestResult",
    "batch_result",
    "log_write",
    "raw_app_id",
    "raw_write",
    "rejections_write",
]


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


@dataclass(frozen=True)
class LedgerAppend:
    """Rows appended in one commit to one of raw's bookkeeping tables (the ingest log, the rejections):
    small Arrow tables, written as they are."""

    table: DeltaTableIO
    rows: pa.Table
    spec: Append = field(default_factory=Append)

    def apply(self) -> WriteResult:
        """Appends the rows (one commit)."""
        return self.table.append(
            self.rows,
            partition_by=list(self.spec.partition_by) or None,
            txns=dict(self.spec.txns),
            metadata=dict(self.spec.metadata) or None,
        )


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


def log_write(lake: Lakehouse, batch: RawBatch) -> LedgerAppend:
    """The ingest-log rows of a committed raw batch: the files it took."""
    files = batch.files
    rows = pa.table(
        {
            "source_file": [f.key for f in files],
            "size": [f.size for f in files],
            "rows": [batch.rows_by_file.get(f.key, 0) for f in files],
            "landing_date": [f.landing_date for f in files],
            "batch_seq": [batch.seq] * len(files),
            "batch_id": [batch.batch_id] * len(files),
            "ingested_at": [batch.ingested_at] * len(files),
        },
        schema=LOG_SCHEMA,
    )
    return LedgerAppend(lake.ingest_log(batch.contract.name), rows)


def rejections_write(
    lake: Lakehouse, dataset: str, rejected: Sequence[RejectedObject], now: dt.datetime
) -> LedgerAppend | None:
    """The rows recording objects rejected for the first time in `raw/<dataset>_rejected` (None: none)."""
    if not rejected:
        return None
    return LedgerAppend(lake.rejected(dataset), rejection_rows(rejected, now))


def batch_result(batch: RawBatch, written: WriteResult) -> RawIngestResult:
    """What a committed raw batch held."""
    return RawIngestResult(
        dataset=batch.contract.name,
        batch_seq=batch.seq,
        batch_id=batch.batch_id,
        files=[f.key for f in batch.files],
        rows=written.inserted,
        rows_by_file=dict(batch.rows_by_file),
        already_ingested=batch.already_ingested,
        rejected=batch.rejected,
        newly_rejected=batch.newly_rejected,
        version=written.version,
        landing_dates=sorted({f.landing_date for f in batch.files}),
        malformed=batch.malformed(),
        max_batch_rows=max(written.max_batch_rows, batch.max_chunk_rows),
    )
