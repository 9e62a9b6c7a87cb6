"""The maintenance job: compaction and vacuum of every catalogued table, nightly.

A day of Firehose objects becomes hundreds of small raw files; compaction rewrites them into
large ones (one commit per table, data unchanged) and vacuum removes files no version needs any
longer, so reads stay fast and storage stays bounded.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

from medallion_platform.catalog import Catalog
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.maintenance import MaintenanceResult, maintain_table

__all__ = ["TableMaintenance", "maintain_lakehouse", "maintenance_job", "maintenance_schedule"]


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one catalogued table (and, for raw tables, to its ingest log)."""

    name: str
    key: list[str]
    table: MaintenanceResult
    ingest_log: MaintenanceResult | None

    def summary(self) -> str:
        """One line: files compacted and vacuumed, or why nothing changed."""
        r = self.table
        if r.files_removed == 0 and r.vacuumed == 0:
            line = f"{self.name}: nothing to do (already compact; no unreferenced file older than the retention)"
        else:
            line = f"{self.name}: {r.files_removed} files compacted into {r.files_added}, {r.vacuumed} vacuumed"
        if self.ingest_log is not None and self.ingest_log.files_removed:
            line += f"; ingest log {self.ingest_log.files_removed} files compacted into {self.ingest_log.files_added}"
        return line


class MaintenanceConfig(dg.Config):
    retention_hours: int = 168
    """Versions younger than this stay readable (time travel, concurrent readers)."""


def maintain_lakehouse(lake: Lakehouse, catalog: Catalog, *, retention_hours: int) -> Iterator[TableMaintenance]:
    """Compacts and vacuums every catalogued table, and each raw table's ingest log (each raw batch
    appends a small file to it, and every run reads it whole). The nightly job and `medallion maintain`
    both run this."""
    for name, entry in catalog.entries().items():
        result = maintain_table(lake.at(entry.location), retention_hours=retention_hours)
        log = (
            maintain_table(lake.ingest_log(entry.table), retention_hours=retention_hours)
            if entry.zone == "raw"
            else None
        )
        yield TableMaintenance(name=name, key=[entry.zone, entry.table], table=result, ingest_log=log)


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
