"""Trusted zone: raw batches cast, validated, deduplicated and written per the contract.

Every raw row ends in exactly one bucket, and the counts are reconciled for every run:
`raw rows = inserted + updated + duplicates + quarantined`, where duplicates are rows that
repeat a key inside the batch or bring nothing new for a key already in trusted.

Idempotency: trusted and its quarantine table each record, per scope (a landing date, or the
whole dataset), the last raw batch they took as an app transaction; a retried run reads only
raw batches newer than that, and each table skips what it already committed. Quarantine
commits first, trusted second: a crash between them is repaired by the next run.

Rows stream: the batch is validated once into a DuckDB table (spilling past its memory limit),
and quarantine and trusted rows flow to delta-rs in bounded record batches.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult, sql_literal
from medallion_platform.lake.schema import conform, conform_stream, quarantine_schema, trusted_schema
from medallion_platform.settings import Settings
from medallion_platform.zones.raw import RawBatch, raw_table
from medallion_platform.zones.validation import deduplicate, partition_value, quarantine_rows, valid_rows, validate

__all__ = ["PromoteResult", "promote", "quarantine_table", "transform", "trusted_app_id", "trusted_table"]


@dataclass(frozen=True)
class PromoteResult:
    """Counts of one promotion run and the reconciliation between them."""

    dataset: str
    raw_rows: int
    inserted: int
    updated: int
    duplicates: int
    quarantined: int
    batch_seqs: list[int] = field(default_factory=list)
    touched_partitions: list[str] = field(default_factory=list)
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    trusted_version: int | None = None
    quarantine_version: int | None = None
    skipped: bool = False
    fused: bool = False
    """Built from the raw batch in hand rather than read back from raw."""
    max_batch_rows: int = 0

    @property
    def reconciled(self) -> bool:
        return self.raw_rows == self.inserted + self.updated + self.duplicates + self.quarantined

    def as_metadata(self) -> dict[str, Any]:
        out = asdict(self)
        out["reconciled"] = self.reconciled
        return out


def trusted_app_id(dataset: str, scope: str | None = None) -> str:
    return f"medallion/trusted/{dataset}" + (f"/{scope}" if scope else "")


def trusted_table(settings: Settings, dataset: str) -> DeltaTableIO:
    """Trusted tables keep a change data feed: refined tables read what changed, not everything."""
    return DeltaTableIO(
        settings.table_uri("trusted", dataset),
        storage_options=settings.storage_options,
        configuration={"delta.enableChangeDataFeed": "true"},
    )


def quarantine_table(settings: Settings, dataset: str) -> DeltaTableIO:
    return DeltaTableIO(
        settings.table_uri("trusted", f"{dataset}_quarantine"), storage_options=settings.storage_options
    )


def transform(engine: Any, raw_rows: Any, contract: Contract) -> tuple[pa.Table, pa.Table, int]:
    """The contract's rules on raw rows, materialized: (deduplicated valid rows, quarantined rows, valid count).

    The same steps `promote` streams; used where whole tables are wanted (engine parity tests).
    """
    validated = engine.persist(validate(engine, engine.dataframe(raw_rows, "raw_batch"), contract))
    quarantined = engine.to_arrow(quarantine_rows(engine, validated, contract))
    valid = valid_rows(engine, validated, contract)
    valid_count = engine.count(valid)
    trusted = engine.to_arrow(deduplicate(engine, valid, contract))
    return conform(trusted, trusted_schema(contract)), conform(quarantined, quarantine_schema(contract)), valid_count


def _scope_filter(scope: str | None, after: int) -> ds.Expression:
    condition = ds.field("_batch_seq") > after
    if scope is not None:
        condition = condition & (ds.field("_landing_date") == pa.scalar(scope, pa.string_view()))
    return condition


def promote(
    settings: Settings,
    engine: Any,
    contract: Contract,
    *,
    landing_date: str | None = None,
    landing_dates: Sequence[str] | None = None,
    batch: RawBatch | None = None,
) -> PromoteResult:
    """Promotes the raw batches (of some landing dates, if given) that trusted has not taken yet.

    With `batch` (a raw batch just committed, still staged in DuckDB) and nothing older pending,
    trusted is built from the batch in hand instead of reading raw back.
    """
    scopes: list[str | None] = list(landing_dates or ([landing_date] if landing_date else [])) or [None]
    trusted, quarantine = trusted_table(settings, contract.name), quarantine_table(settings, contract.name)
    app = {s: trusted_app_id(contract.name, s) for s in scopes}
    done_t = {s: trusted.transaction_version(app[s]) for s in scopes}
    done_q = {s: quarantine.transaction_version(app[s]) for s in scopes}
    start = {s: min(done_t[s], done_q[s]) for s in scopes}

    raw = raw_table(settings, contract.name)
    fused = batch is not None and all(_nothing_pending(raw, s, start[s], batch.seq) for s in scopes)
    if batch is not None and fused:
        source = _batch_frame(engine, batch, settings)
        raw_rows = batch.rows  # counted by the parser, independently of what follows
    else:
        condition = None
        for s in scopes:
            part = _scope_filter(s, start[s])
            condition = part if condition is None else condition | part
        dataset = raw.duckdb_dataset(condition)
        if dataset is None:
            return PromoteResult(contract.name, 0, 0, 0, 0, 0, skipped=True)
        raw_rows = dataset.count_rows()
        source = engine.dataframe(dataset, "raw_batch")
    if raw_rows == 0:
        return PromoteResult(contract.name, 0, 0, 0, 0, 0, skipped=True)

    F = engine.F
    validated = engine.persist(validate(engine, source, contract))
    # One pass over the validated rows counts everything the run needs: rows per batch, valid rows,
    # quarantined rows per rule, and the partitions valid rows touch.
    tally = engine.to_arrow(
        validated.groupBy(
            "_landing_date",
            "_batch_seq",
            "_rule",
            F.when(F.col("_rule").isNull(), partition_value(F, contract)).alias("__partition"),
        ).agg(F.count(F.lit(1)).alias("n"))
    ).to_pylist()
    batches = {(t["_landing_date"], t["_batch_seq"]) for t in tally}
    valid_count = sum(int(t["n"]) for t in tally if t["_rule"] is None)
    seqs = sorted({seq for _, seq in batches})
    upto: dict[str | None, int] = {}
    for s in scopes:
        mine = [seq for day, seq in batches if s is None or day == s]
        if mine:
            upto[s] = max(mine)
    by_rule: dict[str, int] = {}
    for t in tally:
        if t["_rule"] is not None:
            by_rule[t["_rule"]] = by_rule.get(t["_rule"], 0) + int(t["n"])
    touched: list[str] = []
    if contract.partition is not None:
        touched = sorted({str(t["__partition"]) for t in tally if t["_rule"] is None and t["__partition"] is not None})

    # Quarantine first (append; only the scopes it has not committed).
    bad = quarantine_rows(engine, validated, contract)
    q_todo = [s for s in upto if done_q[s] < upto[s]]
    q_result = WriteResult(version=quarantine.version(), skipped=True)
    quarantined = sum(by_rule.values())
    if q_todo:
        if len(q_todo) < len(upto):
            bad = bad.where(F.col("_landing_date").isin(*q_todo))
        q_result = _append(
            engine,
            quarantine,
            bad,
            quarantine_schema(contract),
            settings,
            partition_by=None,
            txns={app[s]: upto[s] for s in q_todo},
            metadata={"medallion.raw_batches": ",".join(map(str, seqs))},
        )
        if len(q_todo) == len(upto):
            quarantined = q_result.source_rows  # what was written, not what was planned

    valid = valid_rows(engine, validated, contract)
    rows = deduplicate(engine, valid, contract, expected_rows=valid_count)
    t_todo = [s for s in upto if done_t[s] < upto[s]]
    t_result = WriteResult(version=trusted.version(), skipped=True)
    if t_todo:
        t_result = _write(engine, trusted, rows, contract, touched, settings, txns={app[s]: upto[s] for s in t_todo})
    return PromoteResult(
        dataset=contract.name,
        raw_rows=raw_rows,
        inserted=t_result.inserted,
        updated=t_result.updated,
        # in-batch repeats of a key, plus rows that brought nothing new for a key already in trusted
        duplicates=valid_count - t_result.inserted - t_result.updated,
        quarantined=quarantined,
        batch_seqs=seqs,
        touched_partitions=touched,
        quarantine_by_rule=dict(sorted(by_rule.items())),
        trusted_version=t_result.version,
        quarantine_version=q_result.version,
        fused=fused,
        max_batch_rows=max(q_result.max_batch_rows, t_result.max_batch_rows),
    )


def _nothing_pending(raw: DeltaTableIO, scope: str | None, after: int, batch_seq: int) -> bool:
    """True when raw holds no batch for `scope` between what trusted took and `batch_seq`."""
    dataset = raw.dataset()
    if dataset is None:
        return True
    condition = (ds.field("_batch_seq") > after) & (ds.field("_batch_seq") < batch_seq)
    if scope is not None:
        condition = condition & (ds.field("_landing_date") == scope)
    return dataset.count_rows(filter=condition) == 0


def _batch_frame(engine: Any, batch: RawBatch, settings: Settings) -> Any:
    if getattr(engine, "connection", None) is batch.connection:
        return engine.table(batch.table)  # same DuckDB: no copy at all
    return engine.dataframe(batch.reader(settings.batch_rows).read_all(), "raw_batch")


def _duckdb(engine: Any) -> Any:
    """The engine's DuckDB connection when it is the embedded engine (rows can stay in DuckDB)."""
    return getattr(engine, "connection", None)


def _append(
    engine: Any,
    table: DeltaTableIO,
    df: Any,
    schema: pa.Schema,
    settings: Settings,
    *,
    partition_by: list[str] | None,
    txns: dict[str, int],
    metadata: dict | None = None,
) -> WriteResult:
    con = _duckdb(engine)
    if con is not None:
        return table.append_query(
            con,
            engine.sql(df),
            schema=schema,
            partition_by=partition_by,
            txns=txns,
            metadata=metadata,
            batch_rows=settings.write_batch_rows,
        )
    reader = conform_stream(engine.to_reader(df, settings.write_batch_rows), schema)
    return table.append(reader, partition_by=partition_by, txns=txns, metadata=metadata)


def _write(
    engine: Any,
    table: DeltaTableIO,
    rows: Any,
    contract: Contract,
    touched: list[str],
    settings: Settings,
    *,
    txns: dict[str, int],
) -> WriteResult:
    """Writes deduplicated rows per the contract's mode, in one commit."""
    import datetime as dt

    write = contract.trusted_write
    schema = trusted_schema(contract)
    partition = contract.partition.column if contract.partition else None
    partition_by = [partition] if partition else None
    values = [dt.date.fromisoformat(v) for v in touched]
    con = _duckdb(engine)
    if write.mode == "append" or (write.mode == "merge" and not table.exists()):
        return _append(engine, table, rows, schema, settings, partition_by=partition_by, txns=txns)
    if write.mode == "merge" and write.when_matched == "ignore" and con is not None:
        existing = table.local_files(partition, values)
        if existing is not None:
            # Insert-only MERGE as an anti-join on the keys present in the touched partitions.
            if existing:
                keys = ", ".join(f'"{k}"' for k in contract.primary_key)
                files = "[" + ", ".join(sql_literal(f) for f in existing) + "]"
                known = f"SELECT {keys} FROM read_parquet({files})"
                new = f"SELECT s.* FROM ({engine.sql(rows)}) s ANTI JOIN ({known}) k USING ({keys})"
            else:
                new = engine.sql(rows)
            return table.append_query(
                con, new, schema=schema, partition_by=partition_by, txns=txns, batch_rows=settings.write_batch_rows
            )
    stream = conform_stream(engine.to_reader(rows, settings.write_batch_rows), schema)
    if write.mode == "merge":
        return table.merge(
            stream,
            keys=contract.primary_key,
            partition_column=partition,
            partition_values=values,
            when_matched=write.when_matched,
            newer_column=write.newer_column,
            txns=txns,
        )
    if partition is None:
        raise ValueError(f"{contract.name}: partition_overwrite needs a partition (the contract model enforces it)")
    return table.overwrite_partitions(stream, partition_column=partition, values=values, txns=txns)
