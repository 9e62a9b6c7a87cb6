"""The `databricks` engine: the SparkSession the Databricks runtime gives the driver.

Used when a step runs on a cluster (the Databricks step launcher sets `MEDALLION_ENGINE=databricks`
there). It is the Spark engine over the cluster's active session instead of a local one: a classic session
on a dedicated cluster, a Spark Connect session on standard access mode or serverless. Delta tables are
read and written natively by their three-level name (`write/writers.py::SparkNativeDeltaWriter`).

The stand-in's cluster runs the same code on Sail (a Spark Connect server with native Delta, over the
stand-in's Unity Catalog). Where Sail's Delta diverges from Delta on Databricks, the divergence is named
once, in `DIVERGENCES`, and the code asks `engine.diverges(...)` instead of guessing.
"""

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.engine.base import ArrowData, Frame
from medallion_platform.engine.spark import SparkEngine

if TYPE_CHECKING:
    from medallion_platform.lake.delta_reads import Changes, DataFile

__all__ = ["DIVERGENCES", "DatabricksEngine", "Divergence", "RefusedWriteOption", "refuse_dangerous_options"]

Divergence = Literal[
    "app_transactions",
    "dml_metrics",
    "history",
    "maintenance_sql",
    "replace_where_check",
    "change_data_feed",
    "create_by_name",
    "partition_order",
    "local_relations",
    "result_batches",
]

DIVERGENCES: dict[Divergence, tuple[str, str, str]] = {
    # name: (Delta on Databricks, Sail 0.7.2, what the platform does; where its behaviour is tested)
    "app_transactions": (
        "txnAppId/txnVersion skip a write already committed",
        "ignored silently: a retried batch is written twice",
        "never used on a cluster (nor on Databricks: Spark cannot read them back): writes are idempotent on their"
        " own (MERGE on keys, REPLACE WHERE, insert-only MERGE on the record's lineage) and a table's app"
        " transactions are rows of its ledger `<zone>/_transactions/<table>` written by Spark right after"
        " (`write/app_transactions.py`); raw's are its own `_batch_seq` and the ingest log; tests: retry tests",
    ),
    "dml_metrics": (
        "MERGE returns num_affected/updated/deleted/inserted_rows",
        "MERGE returns one `count` column",
        "inserted/updated counted from the source against the target before the MERGE",
    ),
    "history": (
        "DESCRIBE HISTORY",
        "parse error",
        "never used: write figures come from the write itself",
    ),
    "maintenance_sql": (
        "OPTIMIZE / VACUUM",
        "parse error",
        "maintenance does not run on the cluster: on Unity Catalog `UnityCatalog.maintain` sends OPTIMIZE and"
        " VACUUM … RETAIN n HOURS to the SQL warehouse (the stand-in's warehouse runs them; tests:"
        " test_native_writer, test_warehouse_maintenance)",
    ),
    "replace_where_check": (
        "INSERT … REPLACE WHERE refuses rows outside the predicate (DELTA_REPLACE_WHERE_MISMATCH)",
        "accepted: the predicate's rows are deleted and the stray rows added",
        "the writer checks the source against the predicate first, on every engine",
    ),
    "change_data_feed": (
        "delta.enableChangeDataFeed; readChangeFeed",
        "cannot write a CDF table; readChangeFeed ignored silently",
        "no table enables it; changes come from the Delta log (`changes_since`); readChangeFeed refused",
    ),
    "partition_order": (
        "a new partitioned table keeps the frame's column order",
        "partition columns moved last",
        "the empty table is created first by Spark SQL (`CREATE TABLE … LOCATION`, columns in the contract's order)"
        " as a scratch table of the session's own catalog, dropped at once; Sail appends to it by path",
    ),
    "local_relations": (
        "createDataFrame over 64 MiB is cached as an artifact (serverless caps local relations)",
        "no artifacts: a plan over 128 MiB fails (gRPC)",
        "`DatabricksEngine.dataframe` sends larger Arrow data in checkpointed parts on any Spark Connect session",
    ),
    "result_batches": (
        "a collected result arrives in Arrow batches of at most spark.connect.grpc.arrow.maxBatchSize (4 MiB)",
        "a batch may be larger (the trusted transform's at 3 M events): over 128 MiB the client fails"
        " (RESOURCE_EXHAUSTED)",
        "no cluster step collects a table (each writes by name); the benchmark's like-for-like phase, which"
        " collects trusted to compare engines, lets its client take messages up to 2 GiB",
    ),
    "create_by_name": (
        "CREATE TABLE / saveAsTable by name",
        "needs Unity Catalog's POST tables / staging-tables, which the stand-in does not serve",
        "a table's first write goes by path, then `persist()` registers it (CREATE TABLE … LOCATION on the"
        " warehouse); every later read and write is by name",
    ),
}

_LOG_ACTIONS = (
    "add STRUCT<path: STRING, partitionValues: MAP<STRING, STRING>, stats: STRING>, "
    "remove STRUCT<path: STRING, partitionValues: MAP<STRING, STRING>>, commitInfo STRUCT<userMetadata: STRING>"
)
"""The parts of a Delta commit's actions the platform reads (the protocol's names)."""


def _data_file(path: str, row: Any) -> "DataFile":
    from medallion_platform.lake.delta_reads import DataFile

    fields = row.asDict()
    values = dict(fields["partition"] or {})
    return DataFile(path=path, partition=tuple(sorted(values.items())), rows=int(fields.get("rows") or 0))


LOCAL_RELATION_BYTES = 64 * 2**20
"""Spark Connect sends a DataFrame made from local rows inside its plan, and gRPC caps a message at 128 MiB
(Databricks caches larger ones as artifacts; Sail has no artifacts): larger Arrow data goes in parts."""

_COMMIT = r"/([0-9]{20})\.json$"
"""A Delta log's commit file; its version is the first group."""

_SAIL_VERSION = re.compile(r"0\.\d+\.\d+")  # `SELECT version()` on Sail is its release; on Spark, "4.x.y <hash>"


class RefusedWriteOption(ValueError):
    """A write option that changes data silently on some engine the platform runs on."""


_DANGEROUS = {
    "txnappid": "app transactions are recorded by the writer (`write/app_transactions.py`), not by a Spark option",
    "txnversion": "app transactions are recorded by the writer (`write/app_transactions.py`), not by a Spark option",
    "partitionoverwritemode": "dynamic partition overwrite replaces the whole table on Sail: use REPLACE WHERE",
    "spark.sql.sources.partitionoverwritemode": "dynamic partition overwrite replaces the whole table on Sail",
    "readchangefeed": "the change data feed is ignored silently on Sail: use `DeltaTableIO.changes_since`",
}


def refuse_dangerous_options(options: dict[str, str], *, honours_app_transactions: bool = False) -> None:
    """Raises `RefusedWriteOption` for an option an engine the platform runs on ignores or misreads silently:
    `txnAppId`/`txnVersion` (unless the engine honours them), dynamic partition overwrite, `readChangeFeed`."""
    for key in options:
        reason = _DANGEROUS.get(key.lower())
        if reason is None or (honours_app_transactions and key.lower() in ("txnappid", "txnversion")):
            continue
        if key.lower().endswith("partitionoverwritemode") and str(options[key]).lower() != "dynamic":
            continue
        raise RefusedWriteOption(f"write option {key}={options[key]!r} refused: {reason}")


class DatabricksEngine(SparkEngine):
    """The PySpark API on the cluster's own session."""

    name = "databricks"

    def __init__(self, spark: Any | None = None):
        super().__init__(spark)
        self._sail: bool | None = None

    def _default_session(self) -> Any:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        # The runtime configures the session; on a driver it already exists, and getOrCreate returns it.
        return active if active is not None else SparkSession.builder.getOrCreate()

    def has_delta(self) -> bool:
        """A Databricks runtime (dedicated), or a Spark Connect session (standard access mode, serverless, the
        stand-in's Sail cluster): each has Delta."""
        return super().has_delta() or type(self.spark).__module__.startswith("pyspark.sql.connect")

    def dataframe(self, data: ArrowData, name: str = "input") -> Frame:
        """As on Spark; on Spark Connect, Arrow data over `LOCAL_RELATION_BYTES` is sent in parts, each
        checkpointed on the server, and the parts unioned (the plan then carries none of the rows)."""
        if not type(self.spark).__module__.startswith("pyspark.sql.connect"):
            return super().dataframe(data, name)
        if isinstance(data, ds.Dataset):
            data = data.to_table()
        elif isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        if data.nbytes <= LOCAL_RELATION_BYTES:
            return super().dataframe(data, name)
        rows = max(1, data.num_rows * LOCAL_RELATION_BYTES // data.nbytes)
        parts = [
            super(DatabricksEngine, self).dataframe(data.slice(start, rows), name).localCheckpoint()
            for start in range(0, data.num_rows, rows)
        ]
        return functools.reduce(lambda a, b: a.unionAll(b), parts)

    @contextmanager
    def sql_over(self, views: Mapping[str, Frame]) -> Iterator[Callable[[str], object]]:
        """Within the block, a function running a Spark SQL query whose ` FROM <alias>` names one of `views`
        (alias -> frame, each a temporary view under a unique name, dropped after the block); it returns the
        query's first value (0 when no row comes back)."""
        names = {alias: self.unique_name(f"medallion_{alias}") for alias in views}
        for alias, frame in views.items():
            frame.createOrReplaceTempView(names[alias])

        def scalar(sql: str) -> object:
            for alias, name in names.items():
                sql = sql.replace(f" FROM {alias}", f" FROM {name}")
            rows = self.spark.sql(sql).collect()
            value = rows[0][0] if rows else 0
            return int(value) if isinstance(value, int) else value

        try:
            yield scalar
        finally:
            for name in names.values():
                self.spark.catalog.dropTempView(name)

    def has_delta_table(self, uri: str) -> bool:
        """Whether `uri` holds a Delta table, asked of Spark (a listing of its `_delta_log`, nothing read): the
        cluster's storage access, not the driver's."""
        return self.delta_log_version(uri) is not None

    def delta_log_version(self, uri: str) -> int | None:
        """The latest version of the Delta table at `uri` (None: no table), from the names of its log's commit
        files as Spark lists them. Sail has no `DESCRIBE HISTORY` (DIVERGENCES `history`); the version a write
        reports is the table's right after it, as with delta-rs."""
        try:
            found = self._commit_files(uri).agg(self.F.max(self.F.regexp_extract("path", _COMMIT, 1)).alias("v"))
            version = found.collect()[0]["v"]  # the newest commit, found by Spark: no listing comes to the driver
        except Exception:
            return None
        return None if version in (None, "") else int(version)

    def _commit_files(self, uri: str) -> Frame:
        """The commit files (`<20 digits>.json`) of the Delta log at `uri`, as Spark lists them (nothing read)."""
        listed = self.spark.read.format("binaryFile").load(f"{uri.rstrip('/')}/_delta_log").select("path")
        return listed.where(self.F.col("path").rlike(_COMMIT))

    def _commit_versions(self, uri: str) -> dict[int, str]:
        """The commit files of the Delta log at `uri` (version -> path) as Spark lists them; empty: no table."""
        try:
            rows = self._commit_files(uri).collect()
        except Exception:
            return {}
        # each commit by the table's own location (Sail lists local paths without their scheme and root)
        versions = (int(str(r["path"]).rsplit("/", 1)[-1][:20]) for r in rows)
        return {v: f"{uri.rstrip('/')}/_delta_log/{v:020d}.json" for v in versions}

    def delta_log_changes(self, uri: str, since: int, upto: int | None = None) -> "Changes | None":
        """The data files the Delta table at `uri` gained and lost after version `since`, up to `upto` (the
        latest if None), from the add and remove actions of the commits in between, read by Spark (the
        commits are the log's own record; checkpoints only summarize them). None when the table is missing
        or one of those commits is gone (log retention): the caller treats everything as changed."""
        from medallion_platform.lake.delta_reads import Changes

        commits = self._commit_versions(uri)
        if not commits or since < 0:
            return None
        current = max(commits) if upto is None else upto
        if since >= current:
            return Changes(since, current, (), ())
        wanted = range(since + 1, current + 1)
        if any(v not in commits for v in wanted):
            return None
        F = self.F
        actions = self._log_actions([commits[v] for v in wanted])
        added = actions.where(F.col("add").isNotNull()).select(
            F.col("add.path").alias("path"),
            F.col("add.partitionValues").alias("partition"),
            F.get_json_object(F.col("add.stats"), "$.numRecords").cast("bigint").alias("rows"),
        )
        removed = actions.where(F.col("remove").isNotNull()).select(
            F.col("remove.path").alias("path"), F.col("remove.partitionValues").alias("partition")
        )
        adds = {str(r["path"]): r for r in added.collect()}
        removes = {str(r["path"]): r for r in removed.collect()}
        return Changes(
            since=since,
            version=current,
            added=tuple(_data_file(p, r) for p, r in adds.items() if p not in removes),
            removed=tuple(_data_file(p, r) for p, r in removes.items() if p not in adds),
        )

    def _log_actions(self, paths: list[str]) -> Frame:
        """The actions of the log's commit files `paths`, one row each, with the commit's `version`: read as
        files (`binaryFile`; Sail has no `input_file_name()`) and each line parsed with the protocol's names."""
        F = self.F
        lines = (
            self.spark.read.format("binaryFile")
            .load(paths)
            .select(
                F.regexp_extract("path", _COMMIT, 1).cast("bigint").alias("version"),
                F.explode(F.split(F.col("content").cast("string"), "\n")).alias("line"),
            )
        )
        parsed = lines.where(F.length("line") > 0).select("version", F.from_json("line", _LOG_ACTIONS).alias("a"))
        return parsed.select("version", "a.*")

    def delta_log_metadata(self, uri: str, key: str) -> str | None:
        """The value of `key` in the newest commit's `userMetadata` (a JSON object, as the platform's Spark
        writes record it) that holds it, read by Spark from the log's commits, newest first."""
        commits = self._commit_versions(uri)
        newest = sorted(commits, reverse=True)
        F = self.F
        start = 0
        for size in (10, 200, len(newest)):
            chunk = newest[start : start + size]
            if not chunk:
                return None
            noted = self._log_actions([commits[v] for v in chunk]).where(F.col("commitInfo.userMetadata").isNotNull())
            found = sorted(
                (
                    (int(r["version"]), str(r["m"]))
                    for r in noted.select("version", F.col("commitInfo.userMetadata").alias("m")).collect()
                ),
                reverse=True,
            )
            for _, note in found:
                try:
                    value = json.loads(note).get(key)
                except (ValueError, AttributeError):  # someone else's metadata, not a JSON object
                    continue
                if value is not None:
                    return str(value)
            start += size
        return None

    def diverges(self, divergence: Divergence) -> bool:
        """Whether this session's Delta has `divergence` (see `DIVERGENCES`): only on Sail."""
        if self._sail is None:
            version = str(self.spark.sql("SELECT version() AS v").collect()[0]["v"])
            self._sail = bool(_SAIL_VERSION.fullmatch(version.strip()))
        return self._sail
