"""The one home of every name derived from a contract or a refined table: asset keys, whether a
source is partitioned, and the trusted metadata that tells refined which event dates changed.

Asset keys are `[zone, name]`; a source's step materializes its raw table, its trusted table and
its quarantine together.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.lake.lakehouse import HISTORY_SUFFIX, QUARANTINE_SUFFIX

__all__ = [
    "TOUCHED_DATES",
    "history_key",
    "is_partitioned",
    "quarantine_key",
    "raw_key",
    "refined_key",
    "source_keys",
    "touched_dates",
    "touched_dates_metadata",
    "trusted_key",
]

TOUCHED_DATES = "touched_partitions"
"""Trusted output metadata: the event dates (refined partitions) a write inserted or changed, as JSON."""


def raw_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", dataset])


def trusted_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["trusted", dataset])


def quarantine_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["trusted", f"{dataset}{QUARANTINE_SUFFIX}"])


def history_key(dataset: str) -> dg.AssetKey:
    """`trusted/<dataset>_history`: a contract's history (its `history`)."""
    return dg.AssetKey(["trusted", f"{dataset}{HISTORY_SUFFIX}"])


def refined_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["refined", name])


def source_keys(dataset: str) -> list[dg.AssetKey]:
    """raw/<dataset>, trusted/<dataset> and trusted/<dataset>_quarantine: the step that takes a landed object."""
    return [raw_key(dataset), trusted_key(dataset), quarantine_key(dataset)]


def is_partitioned(contract: Contract) -> bool:
    """Stream sources land continuously and are partitioned by landing date; batch sources are whole snapshots."""
    return contract.source.kind == "stream"


def touched_dates_metadata(dates: Iterable[str]) -> dg.JsonMetadataValue:
    """The `touched_partitions` value a trusted write records (sorted ISO dates)."""
    return dg.JsonMetadataValue(sorted(set(dates)))


def touched_dates(metadata: Mapping[str, Any]) -> list[str]:
    """The event dates a trusted materialization recorded (the JSON list; older runs wrote a comma-joined text)."""
    value = metadata.get(TOUCHED_DATES)
    if value is None:
        return []
    raw = value.value if hasattr(value, "value") else value
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = raw.split(",")
    return [str(d) for d in raw if d]
