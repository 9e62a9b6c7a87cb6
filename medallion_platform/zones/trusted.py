"""Trusted zone: raw batches cast, validated, deduplicated and written per the contract.

Every raw row ends in exactly one bucket, and the counts are reconciled for every run:

    raw rows = inserted + updated + in-batch duplicates + re-deliveries + quarantined

Each term is counted on its own: raw rows by the parser (or the raw scan), quarantined rows by the
quarantine write, inserted and updated rows by the trusted write itself, in-batch duplicates as the
valid rows minus the distinct keys among them (rows the dedup must drop), and re-deliveries as the
batch's keys already in the target's touched partitions (counted before the write) minus the rows the
write updated (rows MERGE matched and left alone). A dedup that keeps two rows of a key, a MERGE that
inserts a key it should have matched, a quarantine that loses a row: each breaks the equation, and the
blocking `reconciliation` check fails.

Idempotency: trusted and its quarantine table each record, per scope (a landing date, or the
whole dataset), the last raw batch they took as an app transaction; a retried run reads only
raw batches newer than that, and each table skips what it already committed. Quarantine
commits first, trusted second: a crash between them is repaired by the next run.

Rows stream: the batch is validated once into a DuckDB table (spilling past its memory limit),
and quarantine and trusted rows flow to delta-rs in bounded record batches.
"""

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import ArrowData, Engine, Frame
from medallion_platform.engine.plans import Template
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import QUARANTINE_SUFFIX, Lakehouse
from medallion_platform.lake.schema import conform, quarantine_schema, trusted_schema
from medallion_platform.write.app_transactions import transaction_version
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, Merge, OverwritePartitions, TableWrite, WriteSpec
from medallion_platform.zones.changes import with_tombstones
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.evolution import contract_metadata, gate
from medallion_platform.zones.pii import PiiHasher, pii_hasher
from medallion_platform.zones.quality import FIGURES_KEY, BatchFigures, record_quality, recover_quality
from medallion_platform.zones.raw_stage import RawBatch
from medallion_platform.zones.trusted_tally import Tally, count_promotion
from medallion_platform.zones.validation import SMALL_BATCH_ROWS, deduplicate, quarantine_rows, valid_rows, validate

if TYPE_CHECKING:  # pyspark, imported where a step runs on a cluster
    from medallion_platform.zones.raw_cluster import SparkRawBatch

__all__ = [
    "PromoteResult",
    "Promotion",
    "batch_figures",
    "plan_promotion",
    "promote",
    "transform",
    "trusted_app_id",
    "trusted_spec",
    "write_promotion",
]

EQUATION = "raw_rows = inserted + updated + in_batch_duplicates + redeliveries + quarantined"


@dataclass(frozen=True, kw_only=True)
class PromoteResult:
    """Counts of one promotion run and the reconciliation between them (`EQUATION`)."""

    dataset: str
    raw_rows: int = 0
    inserted: int = 0
    updated: int = 0
    in_batch_duplicates: int = 0
    """Valid rows repeating a key inside the run's batches: valid rows minus their distinct keys."""
    redeliveries: int = 0
    """Rows whose key trusted already held and that the write left alone: matched keys minus updated rows."""
    quarantined: int = 0
    late: int = 0
    """Valid rows whose event date is before their landing date (not part of the reconciliation)."""
    batch_seqs: list[int] = field(default_factory=list)
    touched_partitions: list[str] = field(default_factory=list)
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    trusted_version: int | None = None
    quarantine_version: int | None = None
    skipped: bool = False
    built_from_batch: bool = False
    """Built from the raw batch in hand rather than read back from raw."""
    max_batch_rows: int = 0

    @property
    def duplicates(self) -> int:
        """Rows that brought nothing new: in-batch duplicates plus re-deliveries."""
        return self.in_batch_duplicates + self.redeliveries

    @property
    def reconciled(self) -> bool:
        accounted = self.inserted + self.updated + self.in_batch_duplicates + self.redeliveries + self.quarantined
        return self.raw_rows == accounted and min(self.in_batch_duplicates, self.redeliveries) >= 0

    def as_metadata(self) -> dict[str, Any]:
        out = asdict(self)
        out["duplicates"] = self.duplicates
        out["reconciled"] = self.reconciled
        out["equation"] = EQUATION
        return out


def trusted_app_id(dataset: str, scope: str | None = None) -> str:
    return f"medallion/trusted/{dataset}" + (f"/{scope}" if scope else "")


def transform(
    engine: Engine, raw_rows: ArrowData, contract: Contract, pii: PiiHasher
) -> tuple[pa.Table, pa.Table, int]:
    """The contract's rules on raw rows, materialized: (deduplicated valid rows, quarantined rows, valid count).

    The same steps `promote` streams; used where whole tables are wanted (engine parity tests).
    """
    validated = engine.persist(validate(engine, engine.dataframe(raw_rows, "raw_batch"), contract))
    quarantined = engine.to_arrow(quarantine_rows(engine, validated, contract, pii))
    valid = valid_rows(engine, validated, contract)
    valid_count = engine.count(valid)
    trusted = engine.to_arrow(with_tombstones(engine, deduplicate(engine, valid, contract), contract))
    return conform(trusted, trusted_schema(contract)), conform(quarantined, quarantine_schema(contract)), valid_count


def _scope_filter(scope: str | None, after: int) -> ds.Expression:
    condition = ds.field("_batch_seq") > after
    if scope is not None:
        condition = condition & (ds.field("_landing_date") == pa.scalar(scope, pa.string_view()))
    return condition


@dataclass
class Promotion:
    """A planned promotion: the counts, what each table still needs, and the two writes.

    Quarantine is written first, trusted second (a crash between them is repaired by the next run);
    `result()` reads what both writes did.
    """

    contract: Contract
    tally: Tally
    built_from_batch: bool
    quarantine: TableWrite
    trusted: TableWrite
    all_quarantine_scopes: bool
    """Quarantine writes every scope of the run (so its written rows are the run's quarantined rows)."""

    @property
    def touched(self) -> list[str]:
        return self.tally.touched

    @property
    def planned_quarantined(self) -> int:
        return sum(self.tally.by_rule.values())

    def quarantined(self, written: WriteResult | None) -> int:
        """The run's quarantined rows: what quarantine's write wrote when it wrote every scope of the run (not what
        was planned), else the planned count."""
        if written is not None and not written.skipped and self.all_quarantine_scopes:
            return written.source_rows
        return self.planned_quarantined

    def result(self) -> PromoteResult:
        """The run's counts, each from where it was counted, reconciled."""
        quarantine_result, trusted_result = self.quarantine.written(), self.trusted.written()
        tally = self.tally
        quarantined = self.quarantined(quarantine_result)
        return PromoteResult(
            dataset=self.contract.name,
            raw_rows=tally.raw_rows,
            inserted=trusted_result.inserted,
            updated=trusted_result.updated,
            in_batch_duplicates=tally.valid_rows - tally.distinct_keys,
            redeliveries=tally.matched_keys - trusted_result.updated,
            quarantined=quarantined,
            late=tally.late,
            batch_seqs=tally.seqs,
            touched_partitions=tally.touched,
            quarantine_by_rule=dict(sorted(tally.by_rule.items())),
            trusted_version=trusted_result.version,
            quarantine_version=quarantine_result.version,
            built_from_batch=self.built_from_batch,
            max_batch_rows=max(quarantine_result.max_batch_rows, trusted_result.max_batch_rows),
        )


def plan_promotion(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    batch: "RawBatch | SparkRawBatch | None" = None,
    trusted: DeltaTableIO | None = None,
) -> Promotion | None:
    """Validates the raw batches (of some landing dates, if given) that trusted has not taken yet and
    plans the quarantine and trusted writes; None when there is nothing to promote.

    With `batch` (a raw batch just committed, still staged in DuckDB) and nothing older pending,
    trusted is built from the batch in hand instead of reading raw back.
    """
    trusted = trusted or lake.trusted(contract.name)  # `trusted`: the table, if the caller has its log open
    quarantine, raw = lake.quarantine(contract.name), lake.raw(contract.name)
    with trusted.opened(), quarantine.opened(), raw.opened():  # each log read once for the plan
        if engine.name != "databricks":  # the gate reads trusted's log with delta-rs, which a cluster does not use
            gate(lake, contract, trusted=trusted)  # refuses a breaking change to what trusted holds
        scopes: list[str | None] = [*landing_dates] if landing_dates else [None]
        return _plan(engine, contract, scopes, trusted, quarantine, raw, batch, pii_hasher(lake.settings))


def _plan(
    engine: Engine,
    contract: Contract,
    scopes: list[str | None],
    trusted: DeltaTableIO,
    quarantine: DeltaTableIO,
    raw: DeltaTableIO,
    batch: "RawBatch | SparkRawBatch | None",
    pii: PiiHasher,
) -> Promotion | None:
    app = {s: trusted_app_id(contract.name, s) for s in scopes}
    trusted_done = {s: transaction_version(engine, trusted, app[s]) for s in scopes}
    quarantine_done = {s: transaction_version(engine, quarantine, app[s]) for s in scopes}
    taken = {s: min(trusted_done[s], quarantine_done[s]) for s in scopes}
    source = _raw_source(raw, engine, scopes, taken, batch)
    if source is None:
        return None
    rows, raw_rows, built_from_batch = source
    described = contract.model_dump_json()
    validation = Template("trusted/validate", functools.partial(validate, contract=contract), parameters=described)
    validated = engine.persist(engine.planned(validation, raw=rows))
    typed = Template("trusted/valid_rows", functools.partial(valid_rows, contract=contract), parameters=described)
    valid = engine.planned(typed, validated=validated)
    tally = count_promotion(engine, contract, validated, valid, raw_rows, trusted)
    last_batch = tally.last_batch(scopes)
    quarantine_scopes = [s for s in last_batch if quarantine_done[s] < last_batch[s]]
    trusted_scopes = [s for s in last_batch if trusted_done[s] < last_batch[s]]
    small = tally.valid_rows <= SMALL_BATCH_ROWS
    dedup = Template(
        f"trusted/deduplicate/{'small' if small else 'large'}",
        functools.partial(_deduplicated, contract, small),
        (deduplicate, with_tombstones),
        described,
    )
    deduplicated = engine.planned(dedup, rows=valid)
    return Promotion(
        contract=contract,
        tally=tally,
        built_from_batch=built_from_batch,
        quarantine=_quarantine_write(
            engine,
            contract,
            validated,
            {app[s]: last_batch[s] for s in quarantine_scopes},
            tally.seqs,
            pii,
            partial=(quarantine_scopes if len(quarantine_scopes) < len(last_batch) else None),
            described=described,
        ),
        trusted=TableWrite(
            engine=engine,
            frame=deduplicated if trusted_scopes else None,
            spec=trusted_spec(contract, tally.touched, {app[s]: last_batch[s] for s in trusted_scopes}),
            schema=trusted_schema(contract),
        ),
        all_quarantine_scopes=len(quarantine_scopes) == len(last_batch),
    )


def _deduplicated(contract: Contract, small: bool, engine: Engine, rows: Frame) -> Frame:
    """One row per key (`deduplicate`, its plan for a batch of up to SMALL_BATCH_ROWS rows if `small`),
    deletes marked (`with_tombstones`)."""
    expected = SMALL_BATCH_ROWS if small else None
    return with_tombstones(engine, deduplicate(engine, rows, contract, expected_rows=expected), contract)


def _raw_source(
    raw: DeltaTableIO,
    engine: Engine,
    scopes: list[str | None],
    taken: dict[str | None, int],
    batch: "RawBatch | SparkRawBatch | None",
) -> tuple[Frame, int, bool] | None:
    """(raw rows to promote, their count, built from the batch in hand); None when raw has none."""
    if engine.name == "databricks":  # on a cluster: raw read back by name, by Spark (`_cluster_raw_source`)
        return _cluster_raw_source(raw, engine, scopes, taken)
    if isinstance(batch, RawBatch) and all(_nothing_pending(raw, s, taken[s], batch.seq) for s in scopes):
        # counted by the parser, independently of what follows
        return engine.duckdb_frame(batch.connection, batch.table), batch.rows, True
    condition = None
    for s in scopes:
        part = _scope_filter(s, taken[s])
        condition = part if condition is None else condition | part
    dataset = raw.duckdb_dataset(condition)
    if dataset is None:
        return None
    raw_rows = dataset.count_rows()
    return (engine.dataframe(dataset, "raw_batch"), raw_rows, False) if raw_rows else None


def _cluster_raw_source(
    raw: DeltaTableIO, engine: Engine, scopes: list[str | None], taken: dict[str | None, int]
) -> tuple[Frame, int, bool] | None:
    """Raw's rows newer than what trusted took, read by Spark by name (the batch just appended included)."""
    from medallion_platform.write.table_state import has_table

    if not has_table(engine, raw):
        return None
    F = engine.F
    condition = None
    for s in scopes:
        part = F.col("_batch_seq") > taken[s]
        if s is not None:
            part = part & (F.col("_landing_date") == s)
        condition = part if condition is None else condition | part
    rows = engine.delta_frame(raw).where(condition)
    raw_rows = engine.count(rows)
    return (rows, raw_rows, False) if raw_rows else None


def _quarantine_write(
    engine: Engine,
    contract: Contract,
    validated: Frame,
    txns: dict[str, int],
    seqs: list[int],
    pii: PiiHasher,
    *,
    partial: list[str | None] | None,
    described: str,
) -> TableWrite:
    """Quarantine: an append of only the scopes it has not committed (`partial`, when not all). Its
    projection is a plan kept in the plan cache unless the contract names personal data: that plan holds
    the hashing key, which no file may (`engine/plans.py`). `described`: the contract's JSON."""
    if contract.pii:
        bad = quarantine_rows(engine, validated, contract, pii)
    else:
        projection = functools.partial(quarantine_rows, contract=contract, pii=None)
        bad = engine.planned(Template("trusted/quarantine_rows", projection, parameters=described), validated=validated)
    if partial:
        bad = bad.where(engine.F.col("_landing_date").isin(*partial))
    return TableWrite(
        engine=engine,
        frame=bad if txns else None,
        spec=Append(txns=txns, metadata={"medallion.raw_batches": ",".join(map(str, seqs))}),
        schema=quarantine_schema(contract),
    )


def trusted_spec(contract: Contract, touched: Sequence[str], txns: dict[str, int]) -> WriteSpec:
    """How deduplicated rows are written per the contract's mode (partition-pruned to `touched`)."""
    write = contract.trusted_write
    partition = contract.partition.column if contract.partition else None
    values = tuple(dt.date.fromisoformat(v) for v in touched)
    recorded = contract_metadata(contract)  # what is deployed, for the next contract change's gate
    if write.mode == "append":
        return Append(partition_by=(partition,) if partition else (), txns=txns, metadata=recorded)
    if write.mode == "merge":
        return Merge(
            keys=tuple(contract.primary_key),
            when_matched=write.when_matched,
            newer_column=write.newer_column,
            newer_columns=tuple(contract.changes.sequence_by) if contract.changes else (),
            partition_column=partition,
            partition_values=values,
            txns=txns,
            metadata=recorded,
        )
    if partition is None:
        raise ValueError(f"{contract.name}: partition_overwrite needs a partition (the contract model enforces it)")
    return OverwritePartitions(partition_column=partition, values=values, txns=txns, metadata=recorded)


def promote(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    batch: "RawBatch | SparkRawBatch | None" = None,
) -> PromoteResult:
    """Promotes the raw batches (of some landing dates, if given) that trusted has not taken yet,
    writing quarantine then trusted with the engine's writer (what the IO manager does in a run)."""
    recover_quality(lake, contract, engine=engine)  # a killed run's quality append first
    plan = plan_promotion(lake, engine, contract, landing_dates=landing_dates, batch=batch)
    return write_promotion(lake, contract, plan)


def write_promotion(
    lake: Lakehouse,
    contract: Contract,
    plan: Promotion | None,
    *,
    rejected_objects: int = 0,
    landing_dates: Sequence[str] | None = None,
) -> PromoteResult:
    """Writes a planned promotion, quarantine first, then trusted, then the batch's quality figures
    (outside a Dagster run); its result. `rejected_objects`: landing objects newly rejected in the same step."""
    if plan is None:
        return PromoteResult(dataset=contract.name, skipped=True)
    entries = source_entries(contract, lake.settings.platform_principal)
    plan.quarantine.entry, plan.trusted.entry = entries["quarantine"], entries["trusted"]
    persist(lake, ("trusted", f"{contract.name}{QUARANTINE_SUFFIX}"), plan.quarantine)
    stamp_figures(plan, rejected_objects=rejected_objects, landing_dates=landing_dates)
    persist(lake, ("trusted", contract.name), plan.trusted)
    result = plan.result()
    figures = batch_figures(result, rejected_objects=rejected_objects, landing_dates=landing_dates)
    record_quality(lake, contract, figures, engine=plan.trusted.engine)
    return result


def stamp_figures(plan: Promotion, *, rejected_objects: int = 0, landing_dates: Sequence[str] | None = None) -> None:
    """Puts the batch's figures known before trusted's commit (quarantine is written by then) into that
    commit's metadata (`FIGURES_KEY`): if the run dies between trusted's commit and the quality append, the
    next run appends them from there (`recover_quality`), so the quality record loses no batch."""
    tally = plan.tally
    known = {
        "batch": ",".join(map(str, tally.seqs)),
        "landing_dates": ",".join(landing_dates or ()),
        "landed": tally.raw_rows,
        "in_batch_duplicates": tally.valid_rows - tally.distinct_keys,
        "late": tally.late,
        "quarantined": plan.quarantined(plan.quarantine.result),
        "rejected_objects": rejected_objects,
        "quarantine_by_rule": dict(sorted(tally.by_rule.items())),
        "last_seq": max(tally.seqs, default=0),
        "matched_keys": tally.matched_keys,
    }
    spec = plan.trusted.spec
    plan.trusted.spec = replace(spec, metadata={**spec.metadata, FIGURES_KEY: json.dumps(known)})


def batch_figures(
    result: PromoteResult, *, rejected_objects: int = 0, landing_dates: Sequence[str] | None = None
) -> BatchFigures:
    """A promotion's figures as the quality table records them (`zones/quality.py`)."""
    return BatchFigures(
        batch=",".join(map(str, result.batch_seqs)),
        landing_dates=",".join(landing_dates or ()),
        landed=result.raw_rows,
        inserted=result.inserted,
        updated=result.updated,
        in_batch_duplicates=result.in_batch_duplicates,
        redeliveries=result.redeliveries,
        late=result.late,
        quarantined=result.quarantined,
        rejected_objects=rejected_objects,
        quarantine_by_rule=dict(result.quarantine_by_rule),
        last_seq=max(result.batch_seqs, default=0),
    )


def _nothing_pending(raw: DeltaTableIO, scope: str | None, after: int, batch_seq: int) -> bool:
    """True when raw holds no batch for `scope` between what trusted took and `batch_seq`: told by the
    log's `_batch_seq` statistics when every file's range is outside that gap (no data file read), else
    by counting the rows in it."""
    files = raw.files("_landing_date", [scope]) if scope is not None else raw.files()
    if files is None:
        return True
    if all(_outside(f.range("_batch_seq"), after, batch_seq) for f in files):
        return True
    dataset = raw.dataset()
    if dataset is None:
        return True
    condition = (ds.field("_batch_seq") > after) & (ds.field("_batch_seq") < batch_seq)
    if scope is not None:
        condition = condition & (ds.field("_landing_date") == scope)
    return dataset.count_rows(filter=condition) == 0


def _outside(bounds: tuple[object, object] | None, after: int, before: int) -> bool:
    """A file's (min, max) holds no value strictly between `after` and `before` (unknown bounds: it may)."""
    if bounds is None or not all(isinstance(b, int) for b in bounds):
        return False
    low, high = bounds
    return high <= after or low >= before  # type: ignore[operator]
