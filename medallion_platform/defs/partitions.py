"""Daily partitions: landing date for raw/trusted stream sources, event date for dated refined tables.

One definition serves every date-partitioned asset (the partitioned assets of one Dagster job must
share it). It starts at the earliest `partition.start` of the stream contracts
(`contracts/order_events.yaml`: 2026-11-01, the first day `medallion generate` / `medallion demo` write),
or at `DEFAULT_START` when no contract names one, and ends tomorrow (`end_offset=1`: today's landing
folder is a partition while it fills). A date outside it is never turned into a partition key: see
`partition_dates`.

Refined date D depends on trusted landing dates D .. D+`LATE_DAYS` (`EVENT_DATE_MAPPING`): an event lands
on or after the day it happened, almost always within three days. Events later than that still reach D
through the late-event sensor; the mapping is what the UI and the backfill daemon reason with.
"""

import datetime as dt
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

from medallion_platform.contracts import Contract, load_contracts

__all__ = [
    "DAILY",
    "DEFAULT_START",
    "EVENT_DATE_MAPPING",
    "LATE_DAYS",
    "PartitionDates",
    "daily_partitions",
    "partition_dates",
    "partitions_start",
]

DEFAULT_START = dt.date(2026, 11, 1)
"""First partition when no stream contract sets `partition.start` (the sample data's first day)."""

LATE_DAYS = 3
"""How many days after its event date an event is expected to land (the sample data's latest arrival)."""


def partitions_start(contracts: Iterable[Contract]) -> dt.date:
    """The earliest `partition.start` among stream contracts, else `DEFAULT_START`."""
    starts = [
        c.partition.start
        for c in contracts
        if c.source.kind == "stream" and c.partition is not None and c.partition.start is not None
    ]
    return min(starts, default=DEFAULT_START)


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    """Daily partitions from `start` to tomorrow (today's partition exists while it fills)."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


DAILY = daily_partitions(partitions_start(load_contracts().values()))

with warnings.catch_warnings():  # Dagster 1.13 marks the parameter beta and warns at every definitions load
    warnings.filterwarnings(
        "ignore", message=r"Parameter `allow_nonexistent_upstream_partitions`", category=dg.BetaWarning
    )
    EVENT_DATE_MAPPING = dg.TimeWindowPartitionMapping(
        start_offset=0, end_offset=LATE_DAYS, allow_nonexistent_upstream_partitions=True
    )
"""Refined event date D <- trusted landing dates D .. D+LATE_DAYS (those past tomorrow do not exist yet)."""


@dataclass(frozen=True)
class PartitionDates:
    """Dates split into partition keys and dates the partitions cannot hold (before the start, after tomorrow)."""

    keys: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


def partition_dates(dates: Iterable[str], partitions: dg.DailyPartitionsDefinition = DAILY) -> PartitionDates:
    """Sorts ISO dates into partition keys and the rest, without time-window arithmetic on them
    (`time_window_for_partition_key("9999-12-31")` raises OverflowError)."""
    keys: list[str] = []
    outside: list[str] = []
    for date in sorted(set(dates)):
        try:
            held = partitions.has_partition_key(date)
        except (OverflowError, ValueError):  # not a date Dagster can place at all
            held = False
        (keys if held else outside).append(date)
    return PartitionDates(keys, outside)
