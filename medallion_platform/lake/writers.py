"""The Delta writers behind one interface, one per kind of engine session.

- `DuckDBStreamedWriter` (embedded): DuckDB streams Arrow batches into the bounded Parquet writer
  (`lake/files.py`) and one delta-rs commit; an insert-only MERGE on a local lake is an anti-join in
  DuckDB plus an append.
- `ArrowDeltaRsWriter` (local Spark, the stand-in cluster: Spark without Delta jars): Spark → Arrow →
  delta-rs, the same commits as above.
- `SparkNativeDeltaWriter` (a real Databricks cluster, chosen when the session has Delta):
  `format("delta")`, `replaceWhere` and `MERGE INTO`. It cannot run here (no Delta jars on this
  machine); it is exercised only by the opt-in `databricks_live` tests against a real workspace.

Every writer makes one commit per write and skips a write whose app transactions are all committed.
"""

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import pyarrow as pa

from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.schema import conform, conform_stream
from medallion_platform.lake.sql import idents, literal, spark_ident
from medallion_platform.lake.writes import Append, Merge, Overwrite, OverwritePartitions, TableWrite

if TYPE_CHECKING:
    from medallion_platform.engine.base import Engine
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.engine.spark import SparkEngine

__all__ = ["ArrowDeltaRsWriter", "DeltaWriter", "DuckDBStreamedWriter", "SparkNativeDeltaWriter", "write_table"]


class DeltaWriter(ABC):
    """Persists a `TableWrite` into a Delta table in one commit."""

    @abstractmethod
    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        """Writes `write.frame` per `write.spec`, streaming in record batches of at most `batch_rows`."""


def write_table(table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
    """Persists `write` with its engine's writer and records the result on it (what the IO manager calls).

    The table's log is opened once for the whole write (`DeltaTableIO.opened`)."""
    with table.opened():
        if write.frame is None:
            result = WriteResult(version=table.version(), skipped=True)
        else:
            result = write.engine.writer().write(table, write, batch_rows=batch_rows)
    write.result = result
    return result


class ArrowDeltaRsWriter(DeltaWriter):
    """The engine's rows as an Arrow stream into delta-rs (works for any engine)."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    def _stream(self, write: TableWrite, batch_rows: int) -> pa.RecordBatchReader:
        return conform_stream(self.engine.to_reader(write.frame, batch_rows), write.schema)

    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        spec = write.spec
        txns, metadata = dict(spec.txns), dict(spec.metadata) or None
        if isinstance(spec, Append):
            return table.append(
                self._stream(write, batch_rows),
                partition_by=list(spec.partition_by) or None,
                txns=txns,
                metadata=metadata,
            )
        if isinstance(spec, Merge):
            return table.merge(
                self._stream(write, batch_rows),
                keys=spec.keys,
                partition_column=spec.partition_column,
                partition_values=list(spec.partition_values),
                when_matched=spec.when_matched,
                newer_column=spec.newer_column,
                txns=txns,
                metadata=metadata,
            )
        if isinstance(spec, OverwritePartitions):
            # refined tables are small aggregates: held whole, so rows outside `values` are refused
            return table.overwrite_partitions(
                conform(self.engine.to_arrow(write.frame), write.schema),
                partition_column=spec.partition_column,
                values=spec.values,
                txns=txns,
                metadata=metadata,
            )
        rows = conform(self.engine.to_arrow(write.frame), write.schema)
        return table.overwrite(rows, txns=txns, metadata=metadata)


class DuckDBStreamedWriter(ArrowDeltaRsWriter):
    """Embedded frames: DuckDB's own Arrow stream, and the insert-only MERGE as an anti-join on local lakes."""

    engine: "EmbeddedEngine"

    def __init__(self, engine: "EmbeddedEngine"):
        super().__init__(engine)

    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        spec = write.spec
        query = self.engine.sql_text(write.frame)
        if isinstance(spec, Merge) and not table.exists():  # nothing to match: the first MERGE is an append
            spec = Append(
                partition_by=(spec.partition_column,) if spec.partition_column else (),
                txns=spec.txns,
                metadata=spec.metadata,
            )
        if isinstance(spec, Merge) and spec.when_matched == "ignore":
            existing = table.local_files(spec.partition_column, spec.partition_values)
            if existing is not None:
                # Insert-only MERGE as an anti-join on the keys present in the touched partitions.
                if existing:
                    keys = idents(spec.keys)
                    files = "[" + ", ".join(literal(f) for f in existing) + "]"
                    known = f"SELECT {keys} FROM read_parquet({files})"
                    query = f"SELECT s.* FROM ({query}) s ANTI JOIN ({known}) k USING ({keys})"
                partition_by = (spec.partition_column,) if spec.partition_column else ()
                spec = Append(partition_by=partition_by, txns=spec.txns, metadata=spec.metadata)
        if isinstance(spec, Append):
            return table.append_query(
                self.engine.connection,
                query,
                schema=write.schema,
                partition_by=list(spec.partition_by) or None,
                txns=dict(spec.txns),
                metadata=dict(spec.metadata) or None,
                batch_rows=batch_rows,
            )
        return super().write(table, write, batch_rows=batch_rows)


class SparkNativeDeltaWriter(DeltaWriter):
    """Spark's own Delta writer, on a session that has Delta (a Databricks cluster).

    Idempotency: the write is skipped when every app transaction is committed (read with delta-rs);
    Spark records one app transaction per write (`txnAppId`/`txnVersion`), so a write carrying
    several goes through delta-rs instead, which records them all in the same commit.
    """

    def __init__(self, engine: "SparkEngine"):
        self.engine = engine

    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        spec = write.spec
        if len(spec.txns) > 1:
            return ArrowDeltaRsWriter(self.engine).write(table, write, batch_rows=batch_rows)
        if table.committed_before(dict(spec.txns)):
            return WriteResult(version=table.version(), skipped=True)
        spark = self.engine.spark
        if write.frame is None:
            return WriteResult(version=table.version(), skipped=True)
        df = write.frame.select(*write.schema.names)
        txn = next(iter(spec.txns.items()), None)
        options = {"userMetadata": json.dumps({k: str(v) for k, v in spec.metadata.items()})}
        if txn is not None:
            options |= {"txnAppId": txn[0], "txnVersion": str(txn[1])}
        if isinstance(spec, Merge) and table.exists():
            return self._merge(table, df, spec, txn)
        writer = df.write.format("delta").options(**options)
        if isinstance(spec, Append | Merge):
            partition_by = spec.partition_by if isinstance(spec, Append) else (spec.partition_column,)
            writer.mode("append").partitionBy(*[p for p in partition_by if p]).save(table.uri)
        elif isinstance(spec, OverwritePartitions):
            predicate = f"{spark_ident(spec.partition_column)} IN ({', '.join(literal(v) for v in spec.values)})"
            writer = writer.mode("overwrite").partitionBy(spec.partition_column)
            writer.option("replaceWhere", predicate).save(table.uri)
        elif isinstance(spec, Overwrite):
            writer.mode("overwrite").option("overwriteSchema", "true").save(table.uri)
        metrics = _last_metrics(spark, table.uri)
        inserted = int(metrics.get("numOutputRows", 0))
        return WriteResult(version=table.version(), inserted=inserted, metrics=metrics, source_rows=inserted)

    def _merge(self, table: DeltaTableIO, df: object, spec: Merge, txn: tuple[str, int] | None) -> WriteResult:
        spark = self.engine.spark
        view = self.engine.unique_name("merge_source")
        df.createOrReplaceTempView(view)  # type: ignore[attr-defined]  # a pyspark DataFrame
        on = " AND ".join(f"t.{spark_ident(k)} = s.{spark_ident(k)}" for k in spec.keys)
        if spec.partition_column and spec.partition_values:
            values = ", ".join(literal(v) for v in spec.partition_values)
            on += f" AND t.{spark_ident(spec.partition_column)} IN ({values})"
        matched = ""
        if spec.when_matched == "update":
            matched = "WHEN MATCHED THEN UPDATE SET *"
        elif spec.when_matched == "update_if_newer":
            newer = spark_ident(spec.newer_column or "")
            matched = f"WHEN MATCHED AND s.{newer} > t.{newer} THEN UPDATE SET *"
        if txn is not None:
            spark.conf.set("spark.databricks.delta.write.txnAppId", txn[0])
            spark.conf.set("spark.databricks.delta.write.txnVersion", str(txn[1]))
        try:
            target = f"delta.{spark_ident(table.uri)}"
            spark.sql(f"MERGE INTO {target} t USING {view} s ON {on} {matched} WHEN NOT MATCHED THEN INSERT *")
        finally:
            if txn is not None:
                spark.conf.unset("spark.databricks.delta.write.txnAppId")
                spark.conf.unset("spark.databricks.delta.write.txnVersion")
        metrics = _last_metrics(spark, table.uri)
        return WriteResult(
            version=table.version(),
            inserted=int(metrics.get("numTargetRowsInserted", 0)),
            updated=int(metrics.get("numTargetRowsUpdated", 0)),
            metrics=metrics,
            source_rows=int(metrics.get("numSourceRows", 0)),
        )


def _last_metrics(spark: object, uri: str) -> dict[str, str]:
    rows = spark.sql(f"DESCRIBE HISTORY delta.{spark_ident(uri)} LIMIT 1").collect()  # type: ignore[attr-defined]
    return dict(rows[0]["operationMetrics"] or {}) if rows else {}
