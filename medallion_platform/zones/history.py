"""History (slowly changing dimension type 2): `trusted/<dataset>_history` for a contract with `history`.

One row per version of a key: the contract's typed columns, `valid_from`, `valid_to` (null while current),
`is_current` and `is_deleted`. A delete is a version of its own (`is_deleted` true; it is the key's current
row until the key comes back), as dbt snapshots' `hard_deletes: new_record` keep it, so a point-in-time
lookup says "deleted then" rather than finding nothing.

The history reads the raw batches it has not taken yet (app transaction `medallion/history/<dataset>` =
the last raw batch seq taken), validates them with the contract's rules (quarantined rows never reach
history), and MERGEs the versions it (re)computes on the key and `valid_from`:

- `built_from: changes`: every change is a version; the changes of the touched keys already in history are
  read back and the new ones slotted in by `sequence_by`, so `valid_to` and `is_current` are recomputed over
  the whole sequence. A late change repairs the versions around it; a re-delivered one changes nothing.
  Versions only ever gain rows, so a MERGE (update matched, insert the rest) is the whole write.
- `built_from: snapshots`: each delivered export (one landing object) is compared with the current
  versions: a new key (or a deleted one that is back) opens a version; a changed `track` column closes the
  current version and opens one; a current key missing from the export is closed and gets a deleted
  version from the export's landing date (unless `absent_keys: keep`: partial exports, where absence says
  nothing); a row older than the key's current version (by `valid_from`, as
  trusted's newest-wins MERGE sees it) changes nothing. An export is all-or-nothing per key: a key whose row was
  quarantined counts as present and unchanged (a bad row never deletes a customer). Exports are applied in
  (landing date, object) order; one landing older than the last applied is skipped. The same export
  delivered twice finds nothing changed.

Written against the PySpark DataFrame API; the parity suite runs it on embedded and Spark.
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import HISTORY_COLUMNS
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import HISTORY_SUFFIX, Lakehouse
from medallion_platform.lake.schema import history_schema
from medallion_platform.write.app_transactions import transaction_version
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Merge, TableWrite
from medallion_platform.write.table_state import cluster_of, has_table, table_at
from medallion_platform.zones.changes import is_delete
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.validation import LINEAGE, deduplicate, valid_rows, validate

__all__ = ["history_app_id", "history_keys", "history_versions", "plan_history", "refresh_history"]

VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED = HISTORY_COLUMNS


def history_app_id(dataset: str) -> str:
    """The app transaction of a history table: the last raw batch seq it took."""
    return f"medallion/history/{dataset}"


def _snapshot_app_id(dataset: str) -> str:
    """The app transaction of a snapshot history: the last landing date applied, as YYYYMMDD."""
    return f"medallion/history/{dataset}/snapshot"


def history_keys(contract: Contract) -> tuple[str, ...]:
    """What identifies a version: the key and `valid_from`, and for changes their sequence too."""
    sequence = tuple(contract.changes.sequence_by) if contract.changes else ()
    return (*contract.primary_key, VALID_FROM, *sequence)


def plan_history(lake: Lakehouse, engine: Engine, contract: Contract) -> TableWrite | None:
    """The history MERGE for the raw batches history has not taken yet; None when there are none
    (or the contract has no history). On a cluster every question and read goes to its Spark (raw by name,
    the app transactions from the table's ledger); elsewhere delta-rs reads the logs and raw's new files."""
    if contract.history is None:
        return None
    history, raw = lake.history(contract.name), lake.raw(contract.name)
    with history.opened(), raw.opened():
        app = history_app_id(contract.name)
        taken = _new_batches(engine, raw, transaction_version(engine, history, app))
        if taken is None:
            return None
        batch, last = taken
        validated = engine.persist(validate(engine, batch, contract))
        txns = {app: last}
        if contract.history.built_from == "changes":
            frame = history_versions(engine, contract, valid_rows(engine, validated, contract), history)
        else:
            applied = transaction_version(engine, history, _snapshot_app_id(contract.name))
            frame, newest = _from_snapshots(engine, contract, validated, history, applied)
            if newest > applied:
                txns[_snapshot_app_id(contract.name)] = newest
    return TableWrite(
        engine=engine,
        frame=frame,
        spec=Merge(keys=history_keys(contract), when_matched="update", txns=txns),
        schema=history_schema(contract),
    )


def _new_batches(engine: Engine, raw: DeltaTableIO, done: int) -> tuple[Frame, int] | None:
    """Raw's rows of the batches after `done` and the last one's seq; None when there are none. On a cluster
    raw is read by name and filtered by Spark; elsewhere delta-rs hands DuckDB only the files that can hold them."""
    if cluster_of(engine) is not None:
        if not has_table(engine, raw):
            return None
        F = engine.F
        rows = engine.persist(table_at(engine, raw, None).where(F.col("_batch_seq") > F.lit(done)))
        last = rows.agg(F.max("_batch_seq").alias("last")).collect()[0]["last"]
        return None if last is None else (rows, int(last))
    dataset = raw.duckdb_dataset(ds.field("_batch_seq") > done)
    if dataset is None:
        return None
    seqs = dataset.to_table(columns=["_batch_seq"]).column("_batch_seq")
    if len(seqs) == 0:
        return None
    return engine.dataframe(dataset, "raw_batch"), int(pc.max(seqs).as_py())


def refresh_history(lake: Lakehouse, engine: Engine, contract: Contract) -> WriteResult | None:
    """Plans and writes the history outside a Dagster run (the flow, the tests); None when nothing was new."""
    write = plan_history(lake, engine, contract)
    if write is None:
        return None
    write.entry = source_entries(contract, lake.settings.platform_principal)["history"]
    return persist(lake, ("trusted", f"{contract.name}{HISTORY_SUFFIX}"), write)


def _columns(contract: Contract) -> list[str]:
    return [*contract.column_names, *HISTORY_COLUMNS, *LINEAGE]


def _stored(engine: Engine, contract: Contract, history: DeltaTableIO) -> Frame | None:
    """The stored versions (by name on a cluster); None before the first write."""
    return engine.delta_frame(history).select(*_columns(contract)) if has_table(engine, history) else None


def history_versions(engine: Engine, contract: Contract, changes: Frame, history: DeltaTableIO | None) -> Frame:
    """Every version of the keys `changes` touch, from the stored versions and the new changes, one row per
    (key, sequence): the stored one if any, else the first delivered. `valid_to` is the next change's
    `valid_from`; the last change is current."""
    if contract.changes is None or contract.history is None:
        raise ValueError(f"{contract.name}: history from changes needs the contract's changes and history")
    F, Window = engine.F, engine.Window
    key, sequence = list(contract.primary_key), list(contract.changes.sequence_by)
    base = [*contract.column_names, *LINEAGE]
    events = changes.select(*base, F.lit(1).alias("__from"))
    stored = _stored(engine, contract, history) if history is not None else None
    if stored is not None:
        touched = changes.select(*key).distinct()
        events = (
            stored.join(touched, on=key, how="left_semi").select(*base, F.lit(0).alias("__from")).unionByName(events)
        )
    first = Window.partitionBy(*key, *sequence).orderBy(
        F.col("__from").asc(), F.col("_batch_seq").asc(), F.col("_source_file").asc(), F.col("_source_line").asc()
    )
    events = events.withColumn("__rank", F.row_number().over(first)).where(F.col("__rank") == F.lit(1))
    ordered = Window.partitionBy(*key).orderBy(*[F.col(c).asc() for c in sequence])
    starts = F.col(contract.history.valid_from)
    following = F.lead(starts).over(ordered)
    return events.select(
        *contract.column_names,
        starts.alias(VALID_FROM),
        following.alias(VALID_TO),
        following.isNull().alias(IS_CURRENT),
        is_delete(F, contract).alias(IS_DELETED),
        *LINEAGE,
    )


def _day_number(day: str) -> int:
    return int(day.replace("-", ""))


def _from_snapshots(
    engine: Engine, contract: Contract, validated: Frame, history: DeltaTableIO, applied: int
) -> tuple[Frame | None, int]:
    """The versions the exports in `validated` open and close, applied in order; (frame, newest landing
    date applied as YYYYMMDD)."""
    F = engine.F
    valid = valid_rows(engine, validated, contract)
    exports = engine.to_arrow(validated.select("_landing_date", "_source_file").distinct()).to_pylist()
    order = sorted((r["_landing_date"], r["_source_file"]) for r in exports)
    order = [(day, source) for day, source in order if _day_number(day) >= applied]
    stored = _stored(engine, contract, history)
    current = stored.where(F.col(IS_CURRENT)) if stored is not None else None
    written: list[Frame] = []
    for number, (day, source) in enumerate(order):
        of_export = (F.col("_landing_date") == F.lit(day)) & (F.col("_source_file") == F.lit(source))
        present = (
            validated.where(of_export)
            .select(*[F.col(f"__typed_{k}").alias(k) for k in contract.primary_key])
            .distinct()
        )
        export = deduplicate(engine, valid.where(of_export), contract)
        changed, current = snapshot_versions(engine, contract, export, present, current, dt.date.fromisoformat(day))
        written.append(changed.withColumn("__export", F.lit(number)))
        current = engine.checkpoint(current)
    newest = max([applied, *[_day_number(day) for day, _ in order]])
    if not written:
        return None, newest
    rows = written[0]
    for more in written[1:]:
        rows = rows.unionByName(more)
    last = engine.Window.partitionBy(*history_keys(contract)).orderBy(F.col("__export").desc())
    rows = rows.withColumn("__rank", F.row_number().over(last)).where(F.col("__rank") == F.lit(1))
    return rows.select(*_columns(contract)), newest


def snapshot_versions(
    engine: Engine, contract: Contract, export: Frame, present: Frame, current: Frame | None, day: dt.date
) -> tuple[Frame, Frame]:
    """One export (one row per key) against the current versions: (the versions it opens or closes, the
    current versions after it). `present` holds every key the export names, quarantined rows included."""
    if contract.history is None:
        raise ValueError(f"{contract.name}: no history")
    F = engine.F
    key = list(contract.primary_key)
    columns = _columns(contract)
    at_day = F.to_timestamp(F.lit(f"{day.isoformat()} 00:00:00"))
    opened_now = export.select(
        *contract.column_names,
        F.col(contract.history.valid_from).alias(VALID_FROM),
        F.lit(None).cast("timestamp").alias(VALID_TO),
        F.lit(True).alias(IS_CURRENT),
        F.lit(False).alias(IS_DELETED),
        *LINEAGE,
    )
    if current is None:
        return opened_now, opened_now
    track = contract.history.track or [
        c for c in contract.column_names if c not in key and c != contract.history.valid_from
    ]
    mine = current.select(*key, *[F.col(c).alias(f"__c_{c}") for c in columns if c not in key])
    joined = export.join(mine, on=key, how="left")
    start_column = contract.history.valid_from

    def stored_from() -> Any:  # a fresh expression per use: SQLFrame qualifies a column object where it is used
        return F.col(f"__c_{VALID_FROM}")

    differs = F.lit(False)
    for c in track:
        differs = differs | ~F.col(c).eqNullSafe(F.col(f"__c_{c}"))
    # a row older than the current version (a lagging replica's) changes nothing, as in trusted
    differs = differs & (F.col(start_column) >= stored_from())
    new_key = stored_from().isNull() | F.col(f"__c_{IS_DELETED}")
    starts = F.when(stored_from().isNull() | (F.col(start_column) > stored_from()), F.col(start_column))
    flagged = joined.select(
        "*", (new_key | differs).alias("__opens"), starts.otherwise(at_day).alias("__starts")
    ).where(F.col("__opens"))
    opened = flagged.select(
        *contract.column_names,
        F.col("__starts").alias(VALID_FROM),
        F.lit(None).cast("timestamp").alias(VALID_TO),
        F.lit(True).alias(IS_CURRENT),
        F.lit(False).alias(IS_DELETED),
        *LINEAGE,
    )
    closed = flagged.where(stored_from().isNotNull()).select(
        *key,
        *[F.col(f"__c_{c}").alias(c) for c in contract.column_names if c not in key],
        stored_from().alias(VALID_FROM),
        F.col("__starts").alias(VALID_TO),
        F.lit(False).alias(IS_CURRENT),
        F.col(f"__c_{IS_DELETED}").alias(IS_DELETED),
        *[F.col(f"__c_{c}").alias(c) for c in LINEAGE],
    )
    gone = current.where(~F.col(IS_DELETED)).join(present, on=key, how="left_anti")
    if contract.history.absent_keys == "keep":  # a partial export names only what changed: absence says nothing
        gone = gone.where(F.lit(False))
    gone_closed = gone.select(*_set(columns, {VALID_TO: at_day, IS_CURRENT: F.lit(False)}, F))
    tombstones = gone.select(
        *_set(columns, {VALID_FROM: at_day, VALID_TO: F.lit(None).cast("timestamp"), IS_DELETED: F.lit(True)}, F)
    )
    changed = _union(opened.select(*columns), closed.select(*columns), gone_closed, tombstones)
    touched = _union(opened.select(*key), gone.select(*key))
    after = _union(current.join(touched, on=key, how="left_anti").select(*columns), opened.select(*columns), tombstones)
    return changed, after


def _set(columns: Sequence[str], values: dict[str, Any], F: Any) -> list[Any]:
    return [values[c].alias(c) if c in values else F.col(c) for c in columns]


def _union(first: Frame, *more: Frame) -> Frame:
    for frame in more:
        first = first.unionByName(frame)
    return first
