"""Raw staging on a Spark cluster: the new landing objects read and parsed on the executors, with the
embedded parser's semantics (`zones/raw_stage.py`), into a DataFrame of raw rows.

The construction, chosen to run alike on Databricks, on Sail (the stand-in's Spark Connect cluster)
and on classic local PySpark:
- `spark.read.format("binaryFile")` of exactly the objects the ingest ledger chose (their URIs, not a
  folder: the ledger decides what is new, exactly once). It is a plain file source on every engine,
  so storage access is the cluster's (Unity Catalog's on Databricks), never the driver's. Auto Loader
  would keep its own record of what it took beside the ledger; `_metadata.file_path` and
  `input_file_name()` do not exist on Sail, and `read.text` refuses a folder of mixed gzip and plain
  objects there, so the bytes are read whole and the object's path comes with them. Sail 0.7.2's
  binaryFile returns an object larger than its split size once per split (whole each time): the rows
  are made distinct by path, at the cost of one shuffle of the landing bytes on every engine.
- `mapInArrow` turns each object into raw rows on the executors with the embedded parser's own code
  for bytes (`ingestion/landing_text.py`: gunzip, byte order marks, UTF-8 checks, lines, CSV) and a
  plain-Python reader of DuckDB's JSON semantics (`ingestion/json_records.py`): Spark's JSON functions
  differ from DuckDB and between engines on hostile lines.
- An object that cannot be read or decoded becomes one marker row with the rejection's reason and
  detail instead of rows; `LandingParse.summary()` gathers one row per object to the driver (figures
  and rejections, no data rows) and `LandingParse.raw()` is the raw batch for the writer.

Nothing here imports DuckDB, a pyarrow file system, delta-rs or boto3 (a test checks it). An object is
read whole by one task, as the embedded parser reads it (binaryFile's limit: 2 GiB per object).
"""

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.json_records import parse_json_lines
from medallion_platform.ingestion.landing_objects import LandingFile, RejectedObject
from medallion_platform.ingestion.landing_text import UnreadableObject, lines, parse_csv, unpack
from medallion_platform.lake.schema import raw_schema

__all__ = ["LandingParse", "ParseSummary", "landing_uri", "parse_landing"]

_REASON, _DETAIL = "_reject_reason", "_reject_detail"
_NOT_FOUND = "Spark found no such object (deleted or moved after the landing survey)"
_ROWS_PER_BATCH = 65_536
"""Rows per Arrow batch handed back to Spark from one object."""


def landing_uri(root: str, key: str) -> str:
    """The URI Spark reads landing object `key` under landing root `root` (a local folder or a URI)."""
    if "://" not in root:
        root = "file://" + os.path.abspath(root)
    return f"{root.rstrip('/')}/{key}"


def _parsed_schema(contract: Contract) -> pa.Schema:
    fields = [pa.field(n, pa.string()) for n in contract.column_names]
    fields += [
        pa.field("_raw_record", pa.string()),
        pa.field("_parse_error", pa.string()),
        pa.field("_extra_fields", pa.string()),
        pa.field("_source_line", pa.int64()),
        pa.field("_source_file", pa.string()),
        pa.field("_landing_date", pa.string()),
        pa.field(_REASON, pa.string()),
        pa.field(_DETAIL, pa.string()),
    ]
    return pa.schema(fields)


def _spark_ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}` {'bigint' if f.type == pa.int64() else 'string'}" for f in schema)


def _object_parser(
    contract: Contract, objects: Sequence[LandingFile]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function `mapInArrow` runs on the executors: (path, content) batches → parsed rows."""
    schema = _parsed_schema(contract)
    names = list(contract.column_names)
    jsonl = contract.source.format == "jsonl"
    compression = contract.source.compression
    by_key = {f.key: f.landing_date for f in objects}
    depths = sorted({f.key.count("/") + 1 for f in objects}, reverse=True)

    def find(path: str) -> str:
        for candidate in (path, unquote(path)):
            parts = candidate.split("/")
            for depth in depths:
                key = "/".join(parts[-depth:])
                if key in by_key:
                    return key
        raise KeyError(f"Spark read {path}, which is not one of the landing objects asked for")

    def rows(key: str, content: bytes) -> pa.Table:
        try:
            data = unpack(content, compression)
            parsed = parse_json_lines(lines(data), names) if jsonl else parse_csv(data, contract)
        except UnreadableObject as exc:
            return _marker(schema, key, by_key[key], exc.reason, exc.detail)
        except (pa.ArrowException, ValueError, MemoryError) as exc:  # what Arrow or the parser could not take
            return _marker(schema, key, by_key[key], "unreadable", f"{type(exc).__name__}: {exc}")
        size = parsed.num_rows
        parsed = parsed.append_column("_source_file", pa.repeat(pa.scalar(key), size))
        parsed = parsed.append_column("_landing_date", pa.repeat(pa.scalar(by_key[key]), size))
        for name in (_REASON, _DETAIL):
            parsed = parsed.append_column(name, pa.nulls(size, pa.string()))
        read = _marker(schema, key, by_key[key], None, None)  # the object was read: its row without a line
        return pa.concat_tables([parsed.select(schema.names).cast(schema), read])

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            paths, contents = batch.column("path"), batch.column("content")
            for i in range(batch.num_rows):
                key = find(paths[i].as_py())
                yield from rows(key, contents[i].as_py()).to_batches(max_chunksize=_ROWS_PER_BATCH)

    return parse


def _read_objects(spark: SparkSession, uris: list[str]) -> DataFrame:
    """binaryFile of `uris`. Classic Spark and Databricks refuse the whole load when one path is gone
    (Sail skips it): then the objects still there are read, and the summary rejects the others."""
    from pyspark.errors import AnalysisException

    def load(paths: list[str]) -> DataFrame:
        frame = spark.read.format("binaryFile").load(paths).select("path", "content")
        frame.schema  # noqa: B018  (analysis: Spark Connect checks the paths only when asked for the schema)
        return frame

    try:
        return load(uris)
    except AnalysisException:
        there = []
        for uri in uris:
            try:
                load([uri])
            except AnalysisException:
                continue
            there.append(uri)
        if not there:
            return spark.createDataFrame([], "path string, content binary")
        return load(there)


def _marker(schema: pa.Schema, key: str, day: str, reason: str | None, detail: str | None) -> pa.Table:
    """The row saying an object was read (no line): with why it was rejected, if it was."""
    values: dict[str, list] = {n: [None] for n in schema.names}
    values |= {"_source_file": [key], "_landing_date": [day], _REASON: [reason], _DETAIL: [detail and detail[:500]]}
    return pa.table(values, schema=schema)


@dataclass(frozen=True)
class ParseSummary:
    """What the parse found per object, gathered on the driver (one row per object, no data rows)."""

    files: list[LandingFile]
    """The objects taken (read and decoded), in the order given."""
    rows_by_file: dict[str, int]
    malformed: int
    rejected: list[RejectedObject] = field(default_factory=list)
    """The objects that could not be read or decoded, with the embedded parser's reasons."""

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())


@dataclass(frozen=True)
class LandingParse:
    """The new landing objects parsed on the cluster: a lazy DataFrame, evaluated by `summary()` and by
    the writer of `raw()` (each reads the objects once)."""

    contract: Contract
    objects: list[LandingFile]
    parsed: DataFrame
    constants: dict[str, Column]

    def raw(self) -> DataFrame:
        """The raw rows in the raw schema (`raw_schema`), the batch's columns set."""
        rows = self.parsed.where(F.col("_source_line").isNotNull())
        columns = [self.constants.get(name, F.col(name)).alias(name) for name in raw_schema(self.contract).names]
        return rows.select(*columns)

    def summary(self) -> ParseSummary:
        """Rows and malformed records per object, and the objects that could not be read or decoded."""
        found: dict[str, dict[str, Any]] = {
            row["_source_file"]: row.asDict()
            for row in self.parsed.groupBy("_source_file")
            .agg(
                F.count("_source_line").alias("rows"),
                F.count("_parse_error").alias("malformed"),
                F.max(_REASON).alias("reason"),
                F.max(_DETAIL).alias("detail"),
            )
            .collect()
        }
        for f in self.objects:
            if f.key not in found and f.size == 0:  # Sail's binaryFile leaves empty objects out: no records
                found[f.key] = {"rows": 0, "malformed": 0, "reason": None, "detail": None}
        taken = [f for f in self.objects if f.key in found and found[f.key]["reason"] is None]
        rejected = [
            RejectedObject(f.key, found[f.key]["reason"], found[f.key]["detail"], f.fingerprint, f.landing_date)
            if f.key in found
            else RejectedObject(f.key, "unreadable", _NOT_FOUND, f.fingerprint, f.landing_date)
            for f in self.objects
            if f.key not in found or found[f.key]["reason"] is not None
        ]
        return ParseSummary(
            files=taken,
            rows_by_file={f.key: int(found[f.key]["rows"]) for f in taken},
            malformed=sum(int(row["malformed"]) for row in found.values()),
            rejected=rejected,
        )


def parse_landing(
    spark: SparkSession,
    contract: Contract,
    objects: Sequence[LandingFile],
    *,
    root: str,
    batch_id: str,
    seq: int,
    ingested_at: dt.datetime,
) -> LandingParse:
    """Parses landing objects `objects` (keys under landing root `root`) on the cluster as raw batch `seq`.

    Lazy: nothing is read until `summary()` or a write of `raw()` runs.
    """
    objects = list(objects)
    if not objects:
        raise ValueError(f"raw/{contract.name}: no landing objects to parse")
    content = _read_objects(spark, [landing_uri(root, f.key) for f in objects])
    content = content.dropDuplicates(["path"])  # Sail 0.7.2 returns an object once per split past ~2 MiB
    schema = _parsed_schema(contract)
    parsed = content.mapInArrow(_object_parser(contract, objects), _spark_ddl(schema))
    constants = {
        "_ingested_at": F.lit(ingested_at.astimezone(dt.UTC)).cast("timestamp"),
        "_batch_id": F.lit(batch_id),
        "_batch_seq": F.lit(seq).cast("bigint"),
    }
    return LandingParse(contract=contract, objects=objects, parsed=parsed, constants=constants)
