"""Raw on a Spark cluster (the `databricks` engine): every byte through Spark, every table by name.

The source step's raw half, as it runs on a Databricks cluster (and on the stand-in's Sail cluster):
- the landing prefix is listed by Spark (`binaryFile` paths, sizes and modification times; no content
  read), so storage access is the cluster's, never a driver-side file system's;
- raw's ledger is read by Spark: the ingest log (by path: internal, not catalogued), the rejections and raw
  itself by three-level name. The last batch is raw's own `max(_batch_seq)`, not a Delta app transaction
  (Sail ignores `txnAppId`; see `engine/databricks.py` DIVERGENCES): raw's append is an insert-only MERGE on
  the record's lineage (`_source_file`, `_source_line`), idempotent on its own, and the ingest log says which
  objects raw took, exactly once. A run that died between raw's MERGE and the log's append leaves raw rows
  the log does not name: the next survey rebuilds their log rows from raw (by Spark);
- the new objects are parsed on the executors (`zones/raw_spark_parse.py`) into a lazy DataFrame, the
  batch (`SparkRawBatch`), which the native writer appends by name; trusted reads it back from raw by name.

Nothing here imports DuckDB, delta-rs, a pyarrow file system or boto3, and the cluster path uses none of them
on table or landing data (`medallion_tests/databricks/test_cluster_source_step.py` checks both).
"""

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_platform.contracts import Contract
from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.ingestion.landing import REJECTION_REASONS, LandingScan, landing_date
from medallion_platform.ingestion.landing_objects import LandingFile, RejectedObject
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.raw_ledger import LOG_SCHEMA, Survey, rejections_by_key
from medallion_platform.zones.raw_spark_parse import landing_uri, parse_landing

if TYPE_CHECKING:
    from medallion_platform.lake.delta_io import DeltaTableIO

__all__ = ["SparkRawBatch", "cluster_survey", "ledger_frame", "stage_on_cluster"]


@dataclass
class SparkRawBatch:
    """New landing objects parsed on the cluster: the raw rows as a lazy Spark DataFrame (`frame`), and the
    figures the parse gathered on the driver (one row per object, no data rows)."""

    contract: Contract
    seq: int
    batch_id: str
    ingested_at: dt.datetime
    files: list[LandingFile]
    frame: DataFrame
    rows_by_file: dict[str, int] = field(default_factory=dict)
    malformed_rows: int = 0
    already_ingested: int = 0
    rejected: list[RejectedObject] = field(default_factory=list)
    newly_rejected: int = 0
    max_chunk_rows: int = 0
    """Rows parsed at once on the driver: none (the executors parse)."""

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())

    def malformed(self) -> int:
        """Rows of the batch that could not be parsed (kept in raw with `_parse_error`)."""
        return self.malformed_rows

    def drop(self) -> None:
        """Nothing held on the driver: the frame is a plan over the landing objects."""


def stage_on_cluster(
    engine: DatabricksEngine,
    lake: Lakehouse,
    contract: Contract,
    new: list[LandingFile],
    *,
    seq: int,
    ingested_at: dt.datetime,
) -> tuple[SparkRawBatch | None, list[RejectedObject]]:
    """Parses `new` on the cluster as raw batch `seq`: (the batch, or None when no object could be read;
    the objects that could not be read or decoded)."""
    batch_id = f"{contract.name}-{seq:06d}-{uuid.uuid4().hex[:8]}"
    parse = parse_landing(
        engine.spark,
        contract,
        new,
        root=lake.settings.landing_root,
        batch_id=batch_id,
        seq=seq,
        ingested_at=ingested_at,
    )
    summary = parse.summary()
    if not summary.files:
        return None, summary.rejected
    batch = SparkRawBatch(
        contract=contract,
        seq=seq,
        batch_id=batch_id,
        ingested_at=ingested_at,
        files=summary.files,
        frame=parse.raw(),
        rows_by_file=summary.rows_by_file,
        malformed_rows=summary.malformed,
    )
    return batch, summary.rejected


def ledger_frame(engine: DatabricksEngine, table: "DeltaTableIO") -> DataFrame | None:
    """A ledger table read by Spark: by its three-level name once the catalog lists it, else by path (the
    ingest log is not catalogued); None when there is no such table yet."""
    spark = engine.spark
    if table.name is not None and spark.catalog.tableExists(table.name):
        return spark.table(table.name)
    if not engine.has_delta_table(table.uri):
        return None
    return spark.read.format("delta").load(table.uri)


def cluster_survey(
    engine: DatabricksEngine, lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None
) -> Survey:
    """`raw_ledger.survey_landing` on the cluster: the landing prefix listed by Spark, raw's ledger read by
    Spark; repairs the ingest log first if a run died between raw's MERGE and its log append."""
    scan = _spark_scan(engine, lake, contract, landing_dates)
    sizes = {f.key: f.size for f in scan.files}
    raw = ledger_frame(engine, lake.raw(contract.name))
    raw_seq = -1
    if raw is not None:
        found = raw.agg(F.max("_batch_seq").alias("seq")).collect()[0]["seq"]
        raw_seq = -1 if found is None else int(found)
    log = ledger_frame(engine, lake.ingest_log(contract.name))
    logged: dict[str, int] = {}
    if log is not None:
        logged = {row["source_file"]: int(row["batch_seq"]) for row in log.select("source_file", "batch_seq").collect()}
    logged_max = max(logged.values(), default=-1)
    ingested = set(logged)
    if raw is not None and raw_seq > logged_max:
        ingested |= _repair_log(engine, lake, contract, raw, logged_max, sizes)
    recorded = _rejected_objects(engine, lake, contract.name)
    held_back = [recorded[(f.key, f.fingerprint)] for f in scan.files if (f.key, f.fingerprint) in recorded]
    unseen = [r for r in scan.rejected if (r.key, r.fingerprint) not in recorded]
    seen = [recorded[(r.key, r.fingerprint)] for r in scan.rejected if (r.key, r.fingerprint) in recorded]
    return Survey(
        last_seq=max(raw_seq, logged_max),
        raw_version=None,  # Sail has no DESCRIBE HISTORY; the IO manager records the version as it stands
        new=[f for f in scan.files if f.key not in ingested and (f.key, f.fingerprint) not in recorded],
        already_ingested=sum(f.key in ingested for f in scan.files),
        rejected=sorted([*held_back, *seen, *unseen], key=lambda r: r.key),
        newly_rejected=unseen,
    )


def _repair_log(
    engine: DatabricksEngine,
    lake: Lakehouse,
    contract: Contract,
    raw: DataFrame,
    logged_max: int,
    sizes: dict[str, int],
) -> set[str]:
    """Appends the ingest-log rows of raw batches the log lost (one row per object, gathered by Spark);
    returns their keys."""
    from medallion_platform.zones.raw_ledger import ingest_log_append

    grouped = (
        raw.where(F.col("_batch_seq") > logged_max)
        .groupBy("_source_file", "_batch_seq", "_batch_id", "_landing_date")
        .agg(F.max("_ingested_at").alias("ingested_at"), F.count("*").alias("rows"))
        .collect()
    )
    if not grouped:
        return set()
    rows = pa.table(
        {
            "source_file": [r["_source_file"] for r in grouped],
            "size": [sizes.get(r["_source_file"]) for r in grouped],
            "rows": [int(r["rows"]) for r in grouped],
            "landing_date": [r["_landing_date"] for r in grouped],
            "batch_seq": [int(r["_batch_seq"]) for r in grouped],
            "batch_id": [r["_batch_id"] for r in grouped],
            "ingested_at": [_utc(r["ingested_at"]) for r in grouped],
        },
        schema=LOG_SCHEMA,
    )
    ingest_log_append(lake, contract.name, rows, engine=engine).apply()
    return {r["_source_file"] for r in grouped}


def _utc(value: Any) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # the session's time zone is UTC


def _rejected_objects(engine: DatabricksEngine, lake: Lakehouse, dataset: str) -> dict[tuple[str, str], RejectedObject]:
    """Every rejection recorded for `dataset`, by (key, fingerprint), read by Spark."""
    frame = ledger_frame(engine, lake.rejected(dataset))
    if frame is None:
        return {}
    columns = ("source_file", "reason", "detail", "fingerprint", "landing_date")
    return rejections_by_key(row.asDict() for row in frame.select(*columns).collect())


def _spark_scan(
    engine: DatabricksEngine, lake: Lakehouse, contract: Contract, landing_dates: Sequence[str] | None
) -> LandingScan:
    """The landing objects of the given landing dates (or all), listed by Spark: paths, sizes and modification
    times (`binaryFile` without its content column). Spark leaves out names starting with `.` or `_`, as
    `scan_landing` does; it lists files only, so folders and dangling links in odd places are not seen (the
    driver-side listing rejects them), and an object outside the dated layout is rejected as there."""
    root = lake.settings.landing_root
    prefix = contract.source.landing_prefix.rstrip("/")
    scopes = [f"{prefix}/{d.replace('-', '/')}" for d in landing_dates] if landing_dates else [prefix]
    base = landing_uri(root, "")
    scan = LandingScan()
    spark = engine.spark
    for scope in scopes:
        uri = landing_uri(root, scope)
        if not _exists(engine, uri):
            continue
        listed = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(uri)
            .select("path", "length", "modificationTime")
        )
        for row in listed.collect():
            key = _key(row["path"], base)
            inside = key[len(prefix) :].strip("/")
            if any(part.startswith((".", "_")) for part in inside.split("/")):
                continue
            modified = _utc(row["modificationTime"])
            mtime_ns = 0 if modified is None else int(modified.timestamp() * 1_000_000) * 1000
            fingerprint = f"{int(row['length'] or 0)}@{mtime_ns}"
            day = landing_date(key)
            if day is not None:
                scan.files.append(LandingFile(key, int(row["length"] or 0), day, fingerprint))
            else:
                reason = "outside_layout"
                scan.rejected.append(RejectedObject(key, reason, REJECTION_REASONS[reason], fingerprint, day))
    scan.files.sort(key=lambda f: f.key)
    scan.rejected.sort(key=lambda r: r.key)
    return scan


def _exists(engine: DatabricksEngine, uri: str) -> bool:
    try:
        engine.spark.read.format("binaryFile").load(uri).select("path").schema  # noqa: B018  (analysis checks the path)
        return True
    except Exception:
        return False


def _key(path: str, base: str) -> str:
    """The landing key of a path Spark listed, relative to `base`. Engines spell the same object differently
    (`file:/…`, `file:///…`, Sail's `tmp/…` without scheme or leading slash; `s3://bucket/…`): both sides are
    compared without their scheme and leading slashes."""
    root = _bare(base).rstrip("/") + "/"
    for candidate in (path, unquote(path)):
        bare = _bare(candidate)
        if bare.startswith(root):
            return bare[len(root) :]
    raise ValueError(f"Spark listed {path}, which is not under the landing root {base}")


def _bare(uri: str) -> str:
    return re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:", "", uri).lstrip("/")
