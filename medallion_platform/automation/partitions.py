"""Daily partitions: landing date for raw/trusted order_events, event date for refined tables."""

import dagster as dg

__all__ = ["DAILY"]

# One definition for every date-partitioned asset. Landing dates (raw, trusted) and event dates
# (refined) share it; late events reach older refined dates through the late-event sensor.
DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
