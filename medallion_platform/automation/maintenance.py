"""The maintenance job: compaction and vacuum of every catalogued table, nightly.

A day of Firehose objects becomes hundreds of small raw files; compaction rewrites them into
large ones (one commit per table, data unchanged) and vacuum removes files no version needs any
longer, so reads stay fast and storage stays bounded.
"""

import dagster as dg

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.maintenance import maintain_table
from medallion_platform.resources import LakehouseResource

__all__ = ["maintenance_job", "maintenance_schedule"]


class MaintenanceConfig(dg.Config):
    retention_hours: int = 168
    """Versions younger than this stay readable (time travel, concurrent readers)."""


@dg.op(out={}, description="Compacts small files and vacuums unreferenced ones in every catalogued Delta table.")
def compact_and_vacuum(context: dg.OpExecutionContext, config: MaintenanceConfig, lakehouse: LakehouseResource):
    from medallion_platform.zones.raw import ingest_log_table

    settings = lakehouse.settings()
    for name, entry in lakehouse.catalog().entries().items():
        result = maintain_table(
            DeltaTableIO(entry.location, storage_options=settings.storage_options),
            retention_hours=config.retention_hours,
        )
        context.log.info(
            f"{name}: {result.files_removed} files compacted into {result.files_added}, {result.vacuumed} vacuumed"
        )
        if entry.zone == "raw":
            # Each raw batch appends a small file to its ingest log, which every run reads whole.
            log = maintain_table(ingest_log_table(settings, entry.table), retention_hours=config.retention_hours)
            context.log.info(f"{name} ingest log: {log.files_removed} files compacted into {log.files_added}")
        yield dg.AssetObservation(
            asset_key=dg.AssetKey([entry.zone, entry.table]),
            metadata={
                "files_compacted": result.files_removed,
                "files_written": result.files_added,
                "files_vacuumed": result.vacuumed,
            },
        )


@dg.job(description="Nightly table maintenance: compaction, then vacuum.")
def maintenance_job():
    compact_and_vacuum()


maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_nightly", job=maintenance_job, cron_schedule="30 4 * * *", execution_timezone="UTC"
)
