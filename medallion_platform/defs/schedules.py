"""Schedules: nightly pickup of on-premises batch exports."""

import dagster as dg

from medallion_platform.contracts import Contract

__all__ = ["batch_sources_schedule"]


def batch_sources_schedule(contracts: dict[str, Contract]) -> dg.ScheduleDefinition:
    """Raw and trusted of every batch source, nightly at 03:00 UTC (after the CRM/ERP exports)."""
    batch = [c.name for c in contracts.values() if c.source.kind == "batch"]
    selection = dg.AssetSelection.assets(*[["raw", n] for n in batch]).downstream(depth=1)
    job = dg.define_asset_job("batch_sources_nightly", selection=selection - dg.AssetSelection.groups("refined"))
    return dg.ScheduleDefinition(
        name="batch_sources_nightly", job=job, cron_schedule="0 3 * * *", execution_timezone="UTC"
    )
