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

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import ArrowData, Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform, quarantine_schema, trusted_schema
from medallion_platform.lake.writers import write_table
from medallion_platform.lake.writes import Append, Merge, OverwritePartitions, TableWrite, WriteSpec
from medallion_platform.zones.raw import RawBatch
from medallion_platform.zones.validation import deduplicate, partition_value, quarantine_rows, valid_rows, validate

__all__ = [
    "PromoteResult",
    "Promotion",
    "plan_promotion",
    "promote",
    "transform",
    "trusted_app_id",
    "trusted_spec",
]


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


def transform(engine: Engine, raw_rows: ArrowData, contract: Contract) -> tuple[pa.Table, pa.Table, int]:
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


@dataclass
class Promotion:
    """A planned promotion: the validated batch, what each table still needs, and the two writes.

    Quarantine is written first, trusted second (a crash between them is repaired by the next run);
    `result()` reads what both writes did.
    """

    contract: Contract
    raw_rows: int
    valid_count: int
    seqs: list[int]
    touched: list[str]
    by_rule: dict[str, int]
    fused: bool
    quarantine: TableWrite
    trusted: TableWrite
    all_quarantine_scopes: bool
    """Quarantine writes every scope of the run (so its written rows are the run's quarantined rows)."""

    @property
    def planned_quarantined(self) -> int:
        return sum(self.by_rule.values())

    def result(self) -> PromoteResult:
        q_result, t_result = self.quarantine.written(), self.trusted.written()
        quarantined = self.planned_quarantined
        if not q_result.skipped and self.all_quarantine_scopes:
            quarantined = q_result.source_rows  # what was written, not what was planned
        return PromoteResult(
            dataset=self.contract.name,
            raw_rows=self.raw_rows,
            inserted=t_result.inserted,
            updated=t_result.updated,
            # in-batch repeats of a key, plus rows that brought nothing new for a key already in trusted
            duplicates=self.valid_count - t_result.inserted - t_result.updated,
            quarantined=quarantined,
            batch_seqs=self.seqs,
            touched_partitions=self.touched,
            quarantine_by_rule=dict(sorted(self.by_rule.items())),
            trusted_version=t_result.version,
            quarantine_version=q_result.version,
            fused=self.fused,
            max_batch_rows=max(q_result.max_batch_rows, t_result.max_batch_rows),
        )


def plan_promotion(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    batch: RawBatch | None = None,
) -> Promotion | None:
    """Validates the raw batches (of some landing dates, if given) that trusted has not taken yet and
    plans the quarantine and trusted writes; None when there is nothing to promote.

    With `batch` (a raw batch just committed, still staged in DuckDB) and nothing older pending,
    trusted is built from the batch in hand instead of reading raw back.
    """
    scopes: list[str | None] = list(landing_dates or []) or [None]
    trusted, quarantine = lake.trusted(contract.name), lake.quarantine(contract.name)
    app = {s: trusted_app_id(contract.name, s) for s in scopes}
    done_t = {s: trusted.transaction_version(app[s]) for s in scopes}
    done_q = {s: quarantine.transaction_version(app[s]) for s in scopes}
    start = {s: min(done_t[s], done_q[s]) for s in scopes}

    raw = lake.raw(contract.name)
    fused = batch is not None and all(_nothing_pending(raw, s, start[s], batch.seq) for s in scopes)
    if batch is not None and fused:
        source = engine.duckdb_frame(batch.connection, batch.table)
        raw_rows = batch.rows  # counted by the parser, independently of what follows
    else:
        condition = None
        for s in scopes:
            part = _scope_filter(s, start[s])
            condition = part if condition is None else condition | part
        dataset = raw.duckdb_dataset(condition)
        if dataset is None:
            return None
        raw_rows = dataset.count_rows()
        source = engine.dataframe(dataset, "raw_batch")
    if raw_rows == 0:
        return None

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

    # Quarantine: an append of only the scopes it has not committed.
    bad = quarantine_rows(engine, validated, contract)
    q_todo = [s for s in upto if done_q[s] < upto[s]]
    if q_todo and len(q_todo) < len(upto):
        bad = bad.where(F.col("_landing_date").isin(*q_todo))
    quarantine_write = TableWrite(
        engine=engine,
        frame=bad if q_todo else None,
        spec=Append(
            txns={app[s]: upto[s] for s in q_todo}, metadata={"medallion.raw_batches": ",".join(map(str, seqs))}
        ),
        schema=quarantine_schema(contract),
    )
    valid = valid_rows(engine, validated, contract)
    rows = deduplicate(engine, valid, contract, expected_rows=valid_count)
    t_todo = [s for s in upto if done_t[s] < upto[s]]
    trusted_write = TableWrite(
        engine=engine,
        frame=rows if t_todo else None,
        spec=trusted_spec(contract, touched, {app[s]: upto[s] for s in t_todo}),
        schema=trusted_schema(contract),
    )
    return Promotion(
        contract=contract,
        raw_rows=raw_rows,
        valid_count=valid_count,
        seqs=seqs,
        touched=touched,
        by_rule=by_rule,
        fused=fused,
        quarantine=quarantine_write,
        trusted=trusted_write,
        all_quarantine_scopes=len(q_todo) == len(upto),
    )


def trusted_spec(contract: Contract, touched: Sequence[str], txns: dict[str, int]) -> WriteSpec:
    """How deduplicated rows are written per the contract's mode (partition-pruned to `touched`)."""
    write = contract.trusted_write
    partition = contract.partition.column if contract.partition else None
    values = tuple(dt.date.fromisoformat(v) for v in touched)
    if write.mode == "append":
        return Append(partition_by=(partition,) if partition else (), txns=txns)
    if write.mode == "merge":
        return Merge(
            keys=tuple(contract.primary_key),
            when_matched=write.when_matched,
            newer_column=write.newer_column,
            partition_column=partition,
            partition_values=values,
            txns=txns,
        )
    if partition is None:
        raise ValueError(f"{contract.name}: partition_overwrite needs a partition (the contract model enforces it)")
    return OverwritePartitions(partition_column=partition, values=values, txns=txns)


def promote(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    landing_date: str | None = None,
    landing_dates: Sequence[str] | None = None,
    batch: RawBatch | None = None,
) -> PromoteResult:
    """Promotes the raw batches (of some landing dates, if given) that trusted has not taken yet,
    writing quarantine then trusted with the engine's writer (what the IO manager does in a run)."""
    dates = list(landing_dates or ([landing_date] if landing_date else []))
    plan = plan_promotion(lake, engine, contract, landing_dates=dates, batch=batch)
    if plan is None:
        return PromoteResult(contract.name, 0, 0, 0, 0, 0, skipped=True)
    write_table(lake.quarantine(contract.name), plan.quarantine, batch_rows=lake.settings.write_batch_rows)
    write_table(lake.trusted(contract.name), plan.trusted, batch_rows=lake.settings.write_batch_rows)
    return plan.result()


def _nothing_pending(raw: DeltaTableIO, scope: str | None, after: int, batch_seq: int) -> bool:
    """True when raw holds no batch for `scope` between what trusted took and `batch_seq`."""
    dataset = raw.dataset()
    if dataset is None:
        return True
    condition = (ds.field("_batch_seq") > after) & (ds.field("_batch_seq") < batch_seq)
    if scope is not None:
        condition = condition & (ds.field("_landing_date") == scope)
    return dataset.count_rows(filter=condition) == 0
