"""What a Delta table holds and its log says, asked of whoever may read it there.

On a cluster (the `databricks` engine) the driver holds no storage access: Unity Catalog gives it to Spark.
There every question goes to the cluster's Spark: a table's existence, version and changes from its log's
commit files as Spark lists and reads them (`DatabricksEngine.delta_log_*`), its rows by its three-level
name (at a version with Delta's `versionAsOf`). Elsewhere delta-rs answers from the log (`DeltaTableIO`).
The refined zone's planning and checks ask here, so the same code runs on both.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.delta_reads import Changes

if TYPE_CHECKING:
    from medallion_platform.engine.databricks import DatabricksEngine

__all__ = [
    "cluster_of",
    "current_version",
    "has_table",
    "log_changes",
    "partition_rows",
    "table_at",
]


def cluster_of(engine: Engine | None) -> "DatabricksEngine | None":
    """The cluster engine, where the driver reads nothing itself; None elsewhere (pyspark imported only there)."""
    if engine is None or engine.name != "databricks":
        return None
    from medallion_platform.engine.databricks import DatabricksEngine

    return engine if isinstance(engine, DatabricksEngine) else None


def has_table(engine: Engine | None, table: DeltaTableIO) -> bool:
    """Whether `table` has a Delta log: asked of the cluster's Spark on a cluster, of delta-rs elsewhere."""
    cluster = cluster_of(engine)
    return table.exists() if cluster is None else cluster.has_delta_table(table.uri)


def current_version(engine: Engine | None, table: DeltaTableIO) -> int | None:
    """`table`'s current Delta version, None while it is missing (asked as `has_table` asks)."""
    cluster = cluster_of(engine)
    return table.version() if cluster is None else cluster.delta_log_version(table.uri)


def log_changes(engine: Engine | None, table: DeltaTableIO, since: int, upto: int | None = None) -> Changes | None:
    """The data files `table` gained and lost after version `since` up to `upto` (None: missing table or log)."""
    cluster = cluster_of(engine)
    if cluster is None:
        return table.changes_since(since, upto)
    return cluster.delta_log_changes(table.uri, since, upto)


def table_at(
    engine: Engine,
    table: DeltaTableIO,
    version: int | None,
    partition_column: str | None = None,
    values: Sequence[object] | None = None,
) -> Frame:
    """`table` at `version` (the current one if None), only `values` of `partition_column` if given: on a
    cluster by its name (by path before its registration) with Delta's `versionAsOf`, pruned by Spark."""
    cluster = cluster_of(engine)
    if cluster is None:
        raise TypeError(f"table_at reads through the cluster's Spark; {engine.name} reads with delta_frame")
    df = cluster.delta_table(table, version)
    if partition_column is not None and values is not None:
        df = df.where(cluster.F.col(partition_column).isin(*values))
    return df


def partition_rows(engine: Engine | None, table: DeltaTableIO, column: str) -> dict[str, int] | None:
    """Rows of `table` per value of its partition `column` (None: no table): from the log's file statistics
    off a cluster (no data file read), counted by Spark on a cluster (Delta answers from its statistics)."""
    cluster = cluster_of(engine)
    if cluster is None:
        files = table.files()
        if files is None:
            return None
        counts: dict[str, int] = {}
        for file in files:
            value = file.value(column)
            if value is not None:
                counts[value] = counts.get(value, 0) + file.rows
        return counts
    if not has_table(cluster, table):
        return None
    F = cluster.F
    grouped = table_at(cluster, table, None).groupBy(F.col(column).cast("string").alias("v")).count()
    return {str(r["v"]): int(r["count"]) for r in grouped.collect() if r["v"] is not None}
