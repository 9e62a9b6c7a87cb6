"""App transactions (`(app id, version)`: the last batch a table took from an input) wherever the table is written.

Off a cluster they are Delta's own `txn` actions, committed with the data by delta-rs and read back from the
log (`DeltaTableIO.transaction_version`). On a cluster (the `databricks` engine) nothing reads or writes the
Delta log but Spark, and Spark has no API for a table's `txn` actions (Sail ignores `txnAppId` altogether, see
`engine/databricks.py` DIVERGENCES): there a table's app transactions are rows of a ledger table beside it,
`<zone>/_transactions/<table>` (uncatalogued, like the ingest log), appended by Spark right after the data
commit and read by Spark. The data write is idempotent on its own (an insert-only or keyed MERGE, `REPLACE
WHERE`, a full overwrite), so a run that dies between the two repeats the write harmlessly and then records it.
"""

import datetime as dt
import json

from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.write.table_state import cluster_of

__all__ = ["WRITTEN", "committed_before", "ledger_notes", "ledger_uri", "record_transactions", "transaction_version"]

LEDGER_DDL = "app_id string, version bigint, committed_at timestamp, metadata string"

WRITTEN = "medallion.written"
"""A ledger row's metadata key holding what the write it records did (JSON `{"inserted": n, "updated": n}`):
the counts the write returned, kept with the commit they belong to."""


def ledger_uri(table: DeltaTableIO) -> str:
    """`<zone root>/_transactions/<table>`: where a cluster records `table`'s app transactions."""
    head, leaf = table.uri.rstrip("/").rsplit("/", 1)
    return f"{head}/_transactions/{leaf}"


def transaction_version(engine: Engine | None, table: DeltaTableIO, app_id: str) -> int:
    """The last version `app_id` committed to `table`, or -1."""
    cluster = cluster_of(engine)
    if cluster is None:
        return table.transaction_version(app_id)
    uri = ledger_uri(table)
    if not cluster.has_delta_table(uri):
        return -1
    F = cluster.F
    rows = cluster.spark.read.format("delta").load(uri).where(F.col("app_id") == app_id)
    found = rows.agg(F.max("version").alias("v")).collect()[0]["v"]
    return -1 if found is None else int(found)


def committed_before(engine: Engine, table: DeltaTableIO, txns: dict[str, int]) -> bool:
    """True when every app transaction in `txns` is already committed at that version or later."""
    if cluster_of(engine) is None:
        return table.committed_before(txns)
    return bool(txns) and all(transaction_version(engine, table, a) >= v for a, v in txns.items())


def record_transactions(
    engine: Engine, table: DeltaTableIO, txns: dict[str, int], metadata: dict | None = None
) -> None:
    """Records `txns` after a write that did not commit them with its data: a data-less Delta commit off a
    cluster (`DeltaTableIO.record_transactions`), rows of the table's ledger on a cluster."""
    cluster = cluster_of(engine)
    if cluster is None:
        table.record_transactions(txns, metadata)
        return
    if not txns:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # the session's time zone is UTC
    note = json.dumps({k: str(v) for k, v in (metadata or {}).items()})
    rows = [(app, int(version), now, note) for app, version in txns.items()]
    frame = cluster.spark.createDataFrame(rows, LEDGER_DDL)
    frame.write.format("delta").mode("append").save(ledger_uri(table))


def ledger_notes(
    engine: Engine | None, table: DeltaTableIO, key: str, after: int = -1
) -> list[tuple[dt.datetime, dict[str, str]]]:
    """On a cluster, the metadata of `table`'s ledger rows that hold `key` and record a version after `after`,
    one per write, oldest first, each with when it was recorded: what the writes noted beside their commits
    (not every engine records a SQL MERGE's `userMetadata`: Sail does not). Off a cluster the notes are in the
    Delta log's commits: empty."""
    cluster = cluster_of(engine)
    if cluster is None:
        return []
    uri = ledger_uri(table)
    if not cluster.has_delta_table(uri):
        return []
    F = cluster.F
    ledger = cluster.spark.read.format("delta").load(uri)
    rows = ledger.where((F.col("version") > F.lit(after)) & F.col("metadata").contains(json.dumps(key)))
    notes: dict[str, tuple[dt.datetime, dict[str, str]]] = {}
    for row in rows.select("committed_at", "metadata").collect():  # the few rows of recent writes
        noted = json.loads(row["metadata"])
        if key in noted:  # one write recording several app transactions notes the same metadata on each
            notes.setdefault(row["metadata"], (row["committed_at"], noted))
    return sorted(notes.values(), key=lambda note: note[0])
