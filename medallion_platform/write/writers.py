"""The Delta writers behind one interface, one per kind of engine session, chosen by `writer_for(engine)`.

- `DuckDBStreamedWriter` (embedded): DuckDB streams Arrow batches into the bounded Parquet writer
  (`lake/files.py`) and one delta-rs commit; an insert-only MERGE on a local lake is an anti-join in
  DuckDB plus an append.
- `ArrowDeltaRsWriter` (local Spark, the stand-in cluster: Spark without Delta jars): Spark → Arrow →
  delta-rs, the same commits as above.
- `SparkNativeDeltaWriter` (a Databricks cluster, chosen when the session has Delta; here the stand-in's
  Sail cluster): by three-level name, `writeTo(...)`, `REPLACE WHERE` and `MERGE INTO`.

Every writer makes one commit per write and skips a write whose app transactions are all committed.
"""

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.engine.databricks import Divergence, refuse_dangerous_options
from medallion_platform.engine.spark import SparkEngine
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult, withheld_statistics
from medallion_platform.lake.schema import conform, conform_stream
from medallion_platform.lake.sql import idents, literal, newer_than, spark_ident, spark_literal
from medallion_platform.write.app_transactions import WRITTEN, committed_before, record_transactions
from medallion_platform.write.spec import Append, Merge, Overwrite, OverwritePartitions, RowsWrite, TableWrite
from medallion_platform.write.table_state import cluster_of, current_version, has_table

if TYPE_CHECKING:  # imported on first use: SQLFrame costs a second to import
    from medallion_platform.engine.embedded import EmbeddedEngine

__all__ = [
    "ArrowDeltaRsWriter",
    "DeltaWriter",
    "DuckDBStreamedWriter",
    "SparkNativeDeltaWriter",
    "table_columns",
    "write_rows",
    "write_table",
    "writer_for",
]


class DeltaWriter(ABC):
    """Persists a `TableWrite` into a Delta table in one commit."""

    @abstractmethod
    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        """Writes `write.frame` per `write.spec`, streaming in record batches of at most `batch_rows`."""


def writer_for(engine: Engine, *, register: Callable[[], object] | None = None) -> DeltaWriter:
    """The Delta writer for `engine`'s frames: DuckDB's stream on `embedded`; on Spark, Spark's own Delta
    writer when the session has Delta (a Databricks runtime), else Arrow into delta-rs. `register` registers
    the table in its catalog (the native writer needs it listed to write by name)."""
    if isinstance(engine, SparkEngine):  # `databricks` included
        return SparkNativeDeltaWriter(engine, register=register) if engine.has_delta() else ArrowDeltaRsWriter(engine)
    if engine.name == "embedded":
        from medallion_platform.engine.embedded import EmbeddedEngine

        if isinstance(engine, EmbeddedEngine):
            return DuckDBStreamedWriter(engine)
    return ArrowDeltaRsWriter(engine)


def table_columns(engine: Engine, table: DeltaTableIO) -> list[str] | None:
    """The table's columns as the cluster's Spark reads them from its Delta log, for the catalog's registration
    (None off a cluster: the catalog reads them itself)."""
    cluster = cluster_of(engine)
    if cluster is None:
        return None
    return list(cluster.spark.read.format("delta").load(table.uri).columns)


def write_table(
    table: DeltaTableIO, write: TableWrite, *, batch_rows: int, register: Callable[[], object] | None = None
) -> WriteResult:
    """Writes `write` with the writer for its engine and records the result on it (`persist()` calls this,
    then registers the table, with `register`). The table's log is opened once for the whole write
    (`DeltaTableIO.opened`)."""
    with table.opened():
        if write.frame is None:
            result = WriteResult(version=current_version(write.engine, table), skipped=True)
        else:
            result = writer_for(write.engine, register=register).write(table, write, batch_rows=batch_rows)
    write.result = result
    return result


def write_rows(table: DeltaTableIO, write: RowsWrite) -> WriteResult:
    """Appends `write.rows` in one commit and records the result on it."""
    spec = write.spec
    write.result = table.append(
        write.rows,
        partition_by=list(spec.partition_by) or None,
        txns=dict(spec.txns),
        metadata=dict(spec.metadata) or None,
    )
    return write.result


class ArrowDeltaRsWriter(DeltaWriter):
    """The engine's rows as an Arrow stream into delta-rs (works for any engine)."""

    def __init__(self, engine: Engine):
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
                newer_columns=spec.newer_columns,
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


RECORD_KEYS = ("_source_file", "_source_line")
"""What identifies a landing record in every table that keeps its lineage (raw, quarantine, append-mode trusted):
an append of such rows can be an insert-only MERGE on them, idempotent without app transactions."""


class SparkNativeDeltaWriter(DeltaWriter):
    """Spark's own Delta writer, by the table's three-level name, on a session that has Delta (a Databricks
    cluster; the stand-in's Sail cluster).

    - Append: `writeTo(name).append()`; where the engine does not record app transactions (Sail, see
      `engine/databricks.py` DIVERGENCES), an insert-only `MERGE` on the record's lineage (`RECORD_KEYS`).
    - Merge: `MERGE WITH SCHEMA EVOLUTION INTO name`, scoped to the partitions it touches.
    - OverwritePartitions: the source checked against its predicate (Sail skips DELTA_REPLACE_WHERE_MISMATCH),
      then `writeTo(name).overwrite(predicate)` (`INSERT INTO … REPLACE WHERE`).
    - Overwrite: `writeTo(name).overwrite(true)`.
    A new nullable column is added on every kind (`mergeSchema`). A table's first write, before the catalog
    lists it, goes by path (`persist()` registers it right after). Idempotency: the write is skipped when every
    app transaction is committed; a Databricks session records them with the write (`txnAppId`), one per
    write; elsewhere the write is idempotent on its own and the app transactions follow in a commit of their
    own. Figures come from the write itself (the MERGE's result) or from the source, never from the history.
    """

    def __init__(self, engine: SparkEngine, *, register: Callable[[], object] | None = None):
        self.engine = engine
        self._register = register

    def _diverges(self, divergence: "Divergence") -> bool:
        cluster = cluster_of(self.engine)
        return cluster is not None and cluster.diverges(divergence)

    def _honours_app_transactions(self) -> bool:
        """Whether the write records its app transaction itself (`txnAppId`). Never on a cluster: Spark cannot
        read them back there, so a cluster keeps them in a ledger (`write/app_transactions.py`)."""
        return cluster_of(self.engine) is None

    def _exists(self, table: DeltaTableIO) -> bool:
        return has_table(self.engine, table)

    def _version(self, table: DeltaTableIO) -> int | None:
        if cluster_of(self.engine) is None:
            table.refresh()  # after Spark's commit, the opened log (delta-rs) reads the new versions
        return current_version(self.engine, table)

    def write(self, table: DeltaTableIO, write: TableWrite, *, batch_rows: int) -> WriteResult:
        spec = write.spec
        txns = dict(spec.txns)
        native_txns = self._honours_app_transactions()
        if native_txns and len(txns) > 1:  # Spark records one app transaction per write
            return ArrowDeltaRsWriter(self.engine).write(table, write, batch_rows=batch_rows)
        if write.frame is None or (txns and committed_before(self.engine, table, txns)):
            return WriteResult(version=self._version(table), skipped=True)
        if isinstance(spec, OverwritePartitions) and not spec.values:  # no partition to replace: as delta-rs
            return WriteResult(version=self._version(table))
        spark = self.engine.spark
        df = write.frame.select(*write.schema.names)
        options = {"userMetadata": json.dumps({k: str(v) for k, v in spec.metadata.items()})}
        if native_txns and txns:
            (app, version), *_ = txns.items()
            options |= {"txnAppId": app, "txnVersion": str(version)}
        refuse_dangerous_options(options, honours_app_transactions=native_txns)
        registered = table.name is not None and bool(spark.catalog.tableExists(table.name))
        if not registered and table.name is not None and self._exists(table):
            # written before, not registered: a retry after a crash in between
            if self._register is None:
                return ArrowDeltaRsWriter(self.engine).write(table, write, batch_rows=batch_rows)
            self._register()  # then written by name like any other write: the retry stays idempotent
            registered = True
        df = self.engine.persist(df)  # computed once: checked, counted and written
        if isinstance(spec, OverwritePartitions):
            predicate = _partition_predicate(spec.partition_column, spec.values)
            _check_replace_where(df, predicate, table)
        source_rows = int(df.count())
        inserted, updated = source_rows, 0
        # records with lineage appended where app transactions cannot skip a retry: an insert-only MERGE on them
        lineage = isinstance(spec, Append) and set(RECORD_KEYS) <= set(df.columns)
        keyed_append = lineage and ((txns and not native_txns) or (not txns and cluster_of(self.engine) is not None))
        if not registered:  # a first write, or an uncatalogued table (the ingest log): by path
            # Delta keeps `delta.`-prefixed options of a table's first write as its properties (Sail too)
            unindexed = write.entry.unindexed if write.entry is not None else ()
            self._first_write(table, df, spec, options | withheld_statistics(df.columns, unindexed))
        elif isinstance(spec, Merge) or (isinstance(spec, Append) and keyed_append):
            inserted, updated = self._merge(table, df, spec, options)
        else:
            writer = df.writeTo(table.name).options(**options).option("mergeSchema", "true")
            if isinstance(spec, Append):
                writer.append()
            elif isinstance(spec, OverwritePartitions):
                writer.overwrite(self.engine.F.expr(predicate))
            else:
                writer.overwrite(self.engine.F.lit(True))
        committed = self._version(table)  # the data's commit (the app transactions' own commit, if any, follows it)
        if txns and not native_txns:
            written = json.dumps({"inserted": inserted, "updated": updated})
            record_transactions(self.engine, table, txns, {**spec.metadata, WRITTEN: written})
        return WriteResult(version=committed, inserted=inserted, updated=updated, source_rows=source_rows)

    def _first_write(self, table: DeltaTableIO, df: Frame, spec: Any, options: dict[str, str]) -> None:
        """The table's first write, by path: the catalog cannot list a table that has no Delta log yet."""
        partition_by: tuple[str | None, ...] = ()
        if isinstance(spec, Append):
            partition_by = spec.partition_by
        elif isinstance(spec, Merge | OverwritePartitions):
            partition_by = (spec.partition_column,)
        columns = [p for p in partition_by if p]
        if columns and list(df.columns[-len(columns) :]) != columns and self._diverges("partition_order"):
            self._create_in_order(table, df, columns, {k: v for k, v in options.items() if k.startswith("delta.")})
        mode = "overwrite" if isinstance(spec, Overwrite) else "append"
        df.write.format("delta").options(**options).mode(mode).partitionBy(*columns).save(table.uri)

    def _create_in_order(
        self, table: DeltaTableIO, df: Frame, partitions: list[str], properties: dict[str, str]
    ) -> None:
        """Creates the empty partitioned table at `table.uri` with `df`'s column order (DIVERGENCES
        `partition_order`: Sail's DataFrame writer would move the partition columns last, its `CREATE TABLE`
        keeps them), by Spark SQL on the cluster, as an external table of the session's own catalog that is
        dropped right after (the Delta log stays at the location); the appends that follow go by path."""
        spark = self.engine.spark
        columns = ", ".join(f"{spark_ident(f.name)} {f.dataType.simpleString()}" for f in df.schema.fields)
        listed = ", ".join(f"{spark_literal(k)} = {spark_literal(v)}" for k, v in properties.items())
        scratch = spark_ident(f"medallion_create_{uuid.uuid4().hex}")
        spark.sql(
            f"CREATE TABLE {scratch} ({columns}) USING DELTA PARTITIONED BY ({', '.join(map(spark_ident, partitions))})"
            f" LOCATION {spark_literal(table.uri)}" + (f" TBLPROPERTIES ({listed})" if listed else "")
        ).collect()
        spark.sql(f"DROP TABLE {scratch}").collect()  # an external table: dropping it leaves the Delta log

    def _merge(self, table: DeltaTableIO, df: Frame, spec: Merge | Append, options: dict[str, str]) -> tuple[int, int]:
        """MERGE by name; an Append becomes an insert-only MERGE on `RECORD_KEYS`. Returns (inserted, updated)."""
        spark = self.engine.spark
        if isinstance(spec, Append):
            missing = [k for k in RECORD_KEYS if k not in df.columns]
            if missing:
                raise RuntimeError(
                    f"{table.name}: cannot append idempotently on an engine without app transactions: no {missing}"
                )
            spec = Merge(keys=RECORD_KEYS, partition_column=None)
        view = self.engine.unique_name("merge_source")
        df.createOrReplaceTempView(view)
        on = " AND ".join(f"t.{spark_ident(k)} <=> s.{spark_ident(k)}" for k in spec.keys)
        if spec.partition_column and spec.partition_values:
            on += f" AND t.{_partition_predicate(spec.partition_column, spec.partition_values)}"
        condition = ""
        if spec.when_matched == "update_if_newer":
            condition = newer_than(spec.newer or ("",), quote=spark_ident)
        matched = ""
        if spec.when_matched != "ignore":
            matched = f"WHEN MATCHED {'AND ' + condition if condition else ''} THEN UPDATE SET *"
        target = spark_ident(*str(table.name).split("."))
        counted = None
        if self._diverges("dml_metrics"):
            counted = _merge_counts(spark, target, view, on, spec.when_matched, condition)
        txn = (options.get("txnAppId"), options.get("txnVersion"))
        if txn[0] is not None:
            spark.conf.set("spark.databricks.delta.write.txnAppId", txn[0])
            spark.conf.set("spark.databricks.delta.write.txnVersion", txn[1])
        try:
            result = spark.sql(
                f"MERGE WITH SCHEMA EVOLUTION INTO {target} t USING {view} s ON {on} {matched} "
                "WHEN NOT MATCHED THEN INSERT *"
            )
            returned = result.collect()
        finally:
            if txn[0] is not None:
                spark.conf.unset("spark.databricks.delta.write.txnAppId")
                spark.conf.unset("spark.databricks.delta.write.txnVersion")
        if returned and "num_inserted_rows" in result.columns:  # Databricks: the MERGE says what it did
            return int(returned[0]["num_inserted_rows"]), int(returned[0]["num_updated_rows"])
        return counted or (0, 0)


def _partition_predicate(column: str, values: Sequence[object]) -> str:
    """`<column> IN (<values>)` in Spark SQL."""
    return f"{spark_ident(column)} IN ({', '.join(spark_literal(v) for v in values)})"


def _check_replace_where(df: Frame, predicate: str, table: DeltaTableIO) -> None:
    """Refuses rows outside a replaceWhere predicate, as Delta on Databricks does (Sail does not check)."""
    if df.where(f"NOT ({predicate}) OR ({predicate}) IS NULL").limit(1).count():
        raise ValueError(
            f"{table.name or table.uri}: rows outside {predicate} in a partition overwrite"
            " (DELTA_REPLACE_WHERE_MISMATCH)"
        )


def _merge_counts(spark: Any, target: str, view: str, on: str, when_matched: str, condition: str) -> tuple[int, int]:
    """(rows the MERGE will insert, rows it will update), counted before it runs: for an engine whose MERGE
    does not return them (DIVERGENCES `dml_metrics`)."""

    def count(query: str) -> int:
        return int(spark.sql(query).collect()[0][0])

    inserted = count(f"SELECT count(*) FROM {view} s LEFT ANTI JOIN {target} t ON {on}")
    if when_matched == "ignore":
        return inserted, 0
    where = f" WHERE {condition}" if condition else ""
    return inserted, count(f"SELECT count(*) FROM {view} s JOIN {target} t ON {on}{where}")
