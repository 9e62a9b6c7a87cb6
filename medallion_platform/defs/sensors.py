"""Refined dates behind their inputs: one run per set of date-partitioned refined tables with pending dates.

The dates come from the lake, not from materialization events (`zones/refined/coverage.py`): what each
table's fact input (`RefinedTable.fact`) holds that the table was not built from, every date for a
missing table. So late events rebuild only their dates, and dates whose run died or failed are asked
for again. A table whose trusted inputs do not exist yet is not asked for; the run key carries the
versions of its inputs, so a run that failed is requested again once an input changes (arrives).
"""

import dagster as dg

from medallion_platform.defs.keys import refined_key
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.refined import REFINED_TABLES, RefinedTable
from medallion_platform.zones.refined.coverage import inputs_missing, pending_dates

__all__ = ["late_event_sensor", "pending_run_requests", "refined_dates_job"]

_DATED = [t for t in REFINED_TABLES if t.partitioned]

refined_dates_job = dg.define_asset_job(
    "refined_touched_dates_job", selection=dg.AssetSelection.assets(*(refined_key(t.name) for t in _DATED))
)


def _versions(lake: Lakehouse, table: RefinedTable) -> str:
    return ",".join(f"{name}:{lake.trusted(name).version()}" for name in table.inputs)


def pending_run_requests(lake: Lakehouse, partitions: dg.PartitionsDefinition) -> list[dg.RunRequest]:
    """One range run per group of tables pending for the same dates (dates outside `partitions` left out)."""
    groups: dict[tuple[str, ...], list[RefinedTable]] = {}
    for table in _DATED:
        if inputs_missing(lake, table):
            continue
        dates = tuple(d for d in pending_dates(lake, table) if partitions.has_partition_key(d))
        if dates:
            groups.setdefault(dates, []).append(table)
    requests = []
    for dates, tables in groups.items():
        start, end = dates[0], dates[-1]
        inputs = ";".join(f"{t.name}={_versions(lake, t)}" for t in tables)
        requests.append(
            dg.RunRequest(
                run_key=f"refined {start}..{end} ({len(dates)} dates) from {inputs}",
                asset_selection=[refined_key(t.name) for t in tables],
                tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
            )
        )
    return requests


@dg.sensor(
    name="refined_touched_dates",
    job=refined_dates_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def late_event_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource) -> dg.SensorResult:
    """Requests a rebuild of the refined dates that are behind what trusted holds (see the module)."""
    from medallion_platform.defs.partitions import DAILY

    requests = pending_run_requests(lakehouse.lake(), DAILY)
    if not requests:
        return dg.SensorResult(skip_reason="every dated refined table is up to date with trusted")
    return dg.SensorResult(run_requests=requests)
