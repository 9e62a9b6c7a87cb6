"""The maintenance job: compaction and vacuum of every catalogued table (`zones/maintenance.py`), nightly."""

import dagster as dg

from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.zones.maintenance import maintain_lakehouse

__all__ = ["maintenance_job", "maintenance_schedule"]


class MaintenanceConfig(dg.Config):
    retention_hours: int = 168
    """Versions younger than this stay readable (time travel, concurrent readers)."""


@dg.op(out={}, description="Compacts small files and vacuums unreferenced ones in every catalogued Delta table.")
def compact_and_vacuum(context: dg.OpExecutionContext, config: MaintenanceConfig, lakehouse: LakehouseResource):
    for done in maintain_lakehouse(lakehouse.lake(), lakehouse.catalog(), retention_hours=config.retention_hours):
        context.log.info(done.summary())
        yield dg.AssetObservation(
            asset_key=dg.AssetKey(done.key),
            metadata={
                "files_compacted": done.table.files_removed,
                "files_written": done.table.files_added,
                "files_vacuumed": done.table.vacuumed,
            },
        )


@dg.job(description="Nightly table maintenance: compaction, then vacuum.")
def maintenance_job():
    compact_and_vacuum()


maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_nightly", job=maintenance_job, cron_schedule="30 4 * * *", execution_timezone="UTC"
)
