"""Late events: after trusted/order_events lands, rebuild exactly the refined dates it touched."""

import dagster as dg

from medallion_platform.automation.partitions import partition_dates
from medallion_platform.zones.keys import refined_key, touched_dates
from medallion_platform.zones.refined import REFINED_TABLES

__all__ = ["late_event_sensor", "refined_dates_job"]

_TRUSTED_EVENTS = dg.AssetKey(["trusted", "order_events"])
_DATED_REFINED = [refined_key(t.name) for t in REFINED_TABLES if t.partitioned]

refined_dates_job = dg.define_asset_job(
    "refined_touched_dates_job", selection=dg.AssetSelection.assets(*_DATED_REFINED)
)


@dg.sensor(
    name="refined_touched_dates",
    job=refined_dates_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def late_event_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One run per event date touched by trusted/order_events materializations since the cursor.

    A run over a range of landing dates records one materialization per landing date with the
    same run id; each run's touched dates are requested once (run key: run id + date).
    """
    records = context.instance.fetch_materializations(
        _TRUSTED_EVENTS, limit=1000, cursor=context.cursor, ascending=True
    )
    requests: dict[str, dg.RunRequest] = {}
    for record in records.records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        dates = partition_dates(touched_dates(metadata))
        if dates.outside:  # no partition can hold them; the refined assets report their rows
            context.log.warning(f"event dates outside the daily partitions, not requested: {', '.join(dates.outside)}")
        for date in dates.keys:
            run_key = f"{record.run_id}:{date}"
            requests.setdefault(run_key, dg.RunRequest(run_key=run_key, partition_key=date))
    return dg.SensorResult(run_requests=list(requests.values()), cursor=records.cursor or context.cursor)
