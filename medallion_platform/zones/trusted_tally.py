"""What one promotion counts, apart from the dedup and the write, so the reconciliation can catch either
(`zones/trusted.py`): rows per raw batch, valid rows, quarantined rows per rule, the partitions valid
rows touch, the valid rows' distinct keys and how many of them the target already holds."""

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.engine.plans import Template
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.write.table_state import has_table
from medallion_platform.zones.validation import partition_value

__all__ = ["Tally", "count_promotion"]


@dataclass(frozen=True)
class Tally:
    """What one pass over the validated rows counts, and the keys counted independently of the dedup."""

    raw_rows: int
    valid_rows: int
    batches: set[tuple[str, int]]
    """(landing date, batch seq) of every row."""
    by_rule: dict[str, int]
    touched: list[str]
    distinct_keys: int
    matched_keys: int
    """Distinct keys of the batch that the target's touched partitions already hold (before the write)."""
    late: int = 0
    """Valid rows whose partition (event date) is before their landing date: they arrived a day or more late."""

    @property
    def seqs(self) -> list[int]:
        return sorted({seq for _, seq in self.batches})

    def last_batch(self, scopes: Sequence[str | None]) -> dict[str | None, int]:
        """Per scope (a landing date, or None for all), the newest raw batch among the rows."""
        newest: dict[str | None, int] = {}
        for scope in scopes:
            of_scope = [seq for day, seq in self.batches if scope is None or day == scope]
            if of_scope:
                newest[scope] = max(of_scope)
        return newest


def count_promotion(
    engine: Engine, contract: Contract, validated: Frame, valid: Frame, raw_rows: int, target: DeltaTableIO
) -> Tally:
    """One pass over the validated rows counts rows per batch, valid rows, quarantined rows per rule and
    the partitions valid rows touch; the valid rows' distinct keys and those the target holds are counted
    apart from the dedup and the write, so the reconciliation can catch either."""
    grouping = Template(
        "trusted/batch_counts", functools.partial(_batch_counts, contract), parameters=contract.model_dump_json()
    )
    groups = engine.to_arrow(engine.planned(grouping, validated=validated)).to_pylist()
    by_rule: dict[str, int] = {}
    for g in groups:
        if g["_rule"] is not None:
            by_rule[g["_rule"]] = by_rule.get(g["_rule"], 0) + int(g["n"])
    touched: list[str] = []
    if contract.partition is not None:
        touched = sorted({str(g["__partition"]) for g in groups if g["_rule"] is None and g["__partition"] is not None})
    valid_count = sum(int(g["n"]) for g in groups if g["_rule"] is None)
    late = sum(
        int(g["n"])
        for g in groups
        if g["_rule"] is None and g["__partition"] is not None and str(g["__partition"]) < str(g["_landing_date"])
    )
    distinct, matched = _key_counts(engine, contract, valid, touched, target) if valid_count else (0, 0)
    return Tally(
        raw_rows=raw_rows,
        valid_rows=valid_count,
        batches={(g["_landing_date"], g["_batch_seq"]) for g in groups},
        by_rule=by_rule,
        touched=touched,
        distinct_keys=distinct,
        matched_keys=matched,
        late=late,
    )


def _batch_counts(contract: Contract, engine: Engine, validated: Frame) -> Frame:
    """Validated rows counted per landing date, batch, failed rule and (valid rows) partition."""
    F = engine.F
    return validated.groupBy(
        "_landing_date",
        "_batch_seq",
        "_rule",
        F.when(F.col("_rule").isNull(), partition_value(F, contract)).alias("__partition"),
    ).agg(F.count(F.lit(1)).alias("n"))


def _key_counts(
    engine: Engine, contract: Contract, valid: Frame, touched: list[str], target: DeltaTableIO
) -> tuple[int, int]:
    """(distinct keys of the valid rows, how many of them the target's touched partitions hold), in one
    query. Only a MERGE matches keys; an append or a partition overwrite writes every deduplicated row.
    (A key trusted holds twice, a `key_unique` breach, counts twice and breaks the reconciliation too.)
    """
    key = list(contract.primary_key)
    if contract.trusted_write.mode != "merge" or not has_table(engine, target):
        return engine.count(valid.select(*key).distinct()), 0
    partition = contract.partition.column if contract.partition else None
    values = [dt.date.fromisoformat(v) for v in touched] if partition else None
    counting = Template("trusted/key_counts", functools.partial(_held_keys, key), parameters=json.dumps(key))
    counts = engine.planned(counting, valid=valid, target=engine.delta_frame(target, partition, values))
    row = engine.to_arrow(counts).to_pylist()[0]
    return int(row["keys"]), int(row["held"] or 0)


def _held_keys(key: list[str], engine: Engine, valid: Frame, target: Frame) -> Frame:
    """One row: the distinct `key` values of `valid` (`keys`) and how many of them `target` holds (`held`)."""
    F = engine.F
    held = target.select(*key).withColumn("__held", F.lit(1))
    return (
        valid.select(*key)
        .distinct()
        .join(held, on=key, how="left")
        .agg(F.count(F.lit(1)).alias("keys"), F.count(F.col("__held")).alias("held"))
    )
