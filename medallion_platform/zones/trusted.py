"""Trusted zone: raw batches cast, validated, deduplicated and written per the contract.

Every raw row ends in exactly one bucket, and the counts are reconciled for every run:
`raw rows = inserted + updated + duplicates + quarantined`, where duplicates are rows that
repeat a key inside the batch or bring nothing new for a key already in trusted.

Idempotency: trusted and its quarantine table each record the last raw batch they took as an
app transaction; a retried run reads only raw batches newer than that, and each table skips a
batch it already committed.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from medallion_platform.contracts import Contract
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.schema import conform, quarantine_schema, trusted_schema
from medallion_platform.settings import Settings
from medallion_platform.zones.raw import raw_table
from medallion_platform.zones.validation import deduplicate, quarantine_rows, valid_rows, validate

__all__ = ["PromoteResult", "promote", "quarantine_table", "trusted_app_id", "trusted_table"]


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
    return DeltaTableIO(settings.table_uri("trusted", dataset), storage_options=settings.storage_options)


def quarantine_table(settings: Settings, dataset: str) -> DeltaTableIO:
    return DeltaTableIO(
        settings.table_uri("trusted", f"{dataset}_quarantine"), storage_options=settings.storage_options
    )


def transform(engine: Any, raw_rows: pa.Table | ds.Dataset, contract: Contract) -> tuple[pa.Table, pa.Table, int]:
    """Runs the contract's rules on raw rows: (deduplicated valid rows, quarantined rows, valid count)."""
    validated = engine.persist(validate(engine, engine.dataframe(raw_rows, "raw_batch"), contract))
    quarantined = engine.to_arrow(quarantine_rows(engine, validated, contract))
    valid = valid_rows(engine, validated, contract)
    valid_count = valid.count()
    trusted = engine.to_arrow(deduplicate(engine, valid, contract))
    return (
        conform(trusted, trusted_schema(contract)),
        conform(quarantined, quarantine_schema(contract)),
        valid_count,
    )


def promote(settings: Settings, engine: Any, contract: Contract, *, landing_date: str | None = None) -> PromoteResult:
    """Promotes the raw batches (of one landing date, if given) that trusted has not taken yet."""
    app_id = trusted_app_id(contract.name, landing_date)
    trusted, quarantine = trusted_table(settings, contract.name), quarantine_table(settings, contract.name)
    done_trusted, done_quarantine = trusted.transaction_version(app_id), quarantine.transaction_version(app_id)
    start = min(done_trusted, done_quarantine)
    condition = ds.field("_batch_seq") > start
    if landing_date:
        condition = condition & (ds.field("_landing_date") == landing_date)
    dataset = raw_table(settings, contract.name).dataset()
    raw_rows = dataset.to_table(filter=condition) if dataset is not None else None
    if raw_rows is None or raw_rows.num_rows == 0:
        return PromoteResult(contract.name, 0, 0, 0, 0, 0, skipped=True)
    upto = pc.max(raw_rows.column("_batch_seq")).as_py()
    seqs = sorted(set(raw_rows.column("_batch_seq").to_pylist()))
    rows, bad, valid_count = transform(engine, raw_rows, contract)

    meta = {"medallion.raw_batches": ",".join(map(str, seqs))}
    q_result = quarantine.append(bad, app_id=app_id, version=upto, metadata=meta)
    t_result = _write(trusted, rows, contract, app_id=app_id, version=upto, metadata=meta)
    in_batch_dups = valid_count - rows.num_rows
    stale = rows.num_rows - t_result.inserted - t_result.updated if not t_result.skipped else 0
    by_rule = pc.value_counts(bad.column("_rule")).to_pylist() if bad.num_rows else []
    partition = contract.partition.column if contract.partition else None
    touched = sorted({str(d) for d in rows.column(partition).to_pylist() if d is not None}) if partition else []
    return PromoteResult(
        dataset=contract.name,
        raw_rows=raw_rows.num_rows,
        inserted=t_result.inserted,
        updated=t_result.updated,
        duplicates=in_batch_dups + stale,
        quarantined=bad.num_rows,
        batch_seqs=seqs,
        touched_partitions=touched,
        quarantine_by_rule={item["values"]: item["counts"] for item in by_rule},
        trusted_version=t_result.version,
        quarantine_version=q_result.version,
    )


def _write(table: DeltaTableIO, rows: pa.Table, contract: Contract, **commit: Any) -> WriteResult:
    write = contract.trusted_write
    partition = contract.partition.column if contract.partition else None
    if write.mode == "merge":
        return table.merge(
            rows,
            keys=contract.primary_key,
            partition_column=partition,
            when_matched=write.when_matched,
            newer_column=write.newer_column,
            **commit,
        )
    if write.mode == "partition_overwrite":
        values = set(rows.column(partition).to_pylist())
        return table.overwrite_partitions(rows, partition_column=partition, values=values, **commit)
    return table.append(rows, partition_by=[partition] if partition else None, **commit)
