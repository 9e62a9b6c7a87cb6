"""Late events: after trusted/order_events lands, rebuild exactly the refined dates it touched."""

import dagster as dg

from medallion_platform.zones.refined import REFINED_TABLES

__all__ = ["late_event_sensor", "refined_dates_job"]

_TRUSTED_EVENTS = dg.AssetKey(["trusted", "order_events"])
_DATED_REFINED = [dg.AssetKey(["refined", t.name]) for t in REFINED_TABLES if t.partitioned]


refined_dates_job = dg.define_asset_job(
    "refined_touched_dates_job", selection=dg.AssetSelection.assets(*_DATED_REFINED)
)


@dg.asset_sensor(
    asset_key=_TRUSTED_EVENTS,
    name="refined_touched_dates",
    job=refined_dates_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def late_event_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Requests one run per event date touched by the newest trusted/order_events materialization."""
    materialization = asset_event.asset_materialization
    touched = materialization.metadata.get("touched_partitions") if materialization else None
    dates = [d for d in str(touched.value if touched else "").split(",") if d]
    for date in dates:
        yield dg.RunRequest(run_key=f"{asset_event.storage_id}:{date}", partition_key=date)
    if not dates:
        yield dg.SkipReason("the materialization touched no event dates")
