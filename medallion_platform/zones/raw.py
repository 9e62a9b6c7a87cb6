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

On a cluster (the `databricks` engine, `zones/raw_cluster.py`) the batch is parsed by Spark and appended by
name as an insert-only MERGE on the record's lineage, without an app transaction: raw's own `_batch_seq` and
the ingest log are its ledger there.

This module holds raw's writes, as planned by `zones/source_step.py`: the batch's append, the ingest
log's rows and the rejections.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from medallion_platform.ingestion.landing import RejectedObject
from medallion_platform.lake.delta_io import WriteResult
from medallion_platform.lake.lakehouse import REJECTED_SUFFIX, Lakehouse
from medallion_platform.lake.schema import raw_schema
from medallion_platform.write.spec import Append, RowsWrite, TableWrite
from medallion_platform.zones.entries import rejected_entry
from medallion_platform.zones.raw_ledger import (
    LOG_SCHEMA,
    REJECTED_SCHEMA,
    LedgerAppend,
    ingest_log_append,
    raw_app_id,
    rejection_rows,
)
from medallion_platform.zones.raw_stage import RawBatch

if TYPE_CHECKING:  # pyspark, imported where a step runs on a cluster
    from medallion_platform.engine.databricks import DatabricksEngine
    from medallion_platform.zones.raw_cluster import SparkRawBatch


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


def raw_write(batch: "RawBatch | SparkRawBatch", cluster: "DatabricksEngine | None" = None) -> TableWrite:
    """The staged batch as a raw append (one commit tagged with the batch's app transaction).

    A batch parsed on the driver into the process's DuckDB is written from there by the embedded writer. A
    batch parsed on a cluster (`cluster`) is appended by Spark, by name: an insert-only MERGE on the record's
    lineage, without an app transaction (the ingest log and raw's `_batch_seq` are raw's ledger there).
    """
    contract = batch.contract
    metadata = {"medallion.batch_id": batch.batch_id, "medallion.files": len(batch.files)}
    if not isinstance(batch, RawBatch):
        if cluster is None:
            raise ValueError(f"raw/{contract.name}: a batch parsed on a cluster is written by that cluster's engine")
        spec = Append(partition_by=("_landing_date",), metadata=metadata)
        return TableWrite(engine=cluster, frame=batch.frame, spec=spec, schema=raw_schema(contract))
    from medallion_platform.engine.embedded import EmbeddedEngine

    engine = EmbeddedEngine()
    return TableWrite(
        engine=engine,
        frame=engine.duckdb_frame(batch.connection, batch.table),
        spec=Append(
            partition_by=("_landing_date",),
            txns={raw_app_id(contract.name): batch.seq},
            metadata=metadata,
        ),
        schema=raw_schema(contract),
    )


def log_write(
    lake: Lakehouse, batch: "RawBatch | SparkRawBatch", cluster: "DatabricksEngine | None" = None
) -> LedgerAppend:
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
    return ingest_log_append(lake, batch.contract.name, rows, engine=cluster)


def rejections_write(
    lake: Lakehouse,
    dataset: str,
    rejected: Sequence[RejectedObject],
    now: dt.datetime,
    cluster: "DatabricksEngine | None" = None,
) -> LedgerAppend | None:
    """The rows recording objects rejected for the first time in `raw/<dataset>_rejected` (None: none)."""
    if not rejected:
        return None
    write = RowsWrite(
        rows=rejection_rows(rejected, now),
        spec=Append(),
        schema=REJECTED_SCHEMA,
        entry=rejected_entry(dataset, lake.settings.platform_principal),
    )
    return LedgerAppend(lake, ("raw", f"{dataset}{REJECTED_SUFFIX}"), lake.rejected(dataset), write, cluster)


def batch_result(batch: "RawBatch | SparkRawBatch", written: WriteResult) -> RawIngestResult:
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
