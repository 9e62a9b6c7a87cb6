"""Compaction and vacuum of every catalogued table (and each raw table's ingest log): what the nightly
maintenance job (`defs/maintenance.py`) and `medallion maintain` both run.

A day of Firehose objects becomes hundreds of small raw files; compaction rewrites them into
large ones (one commit per table, data unchanged) and vacuum removes files no version needs any
longer, so reads stay fast and storage stays bounded.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from medallion_platform.catalog import Catalog
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.maintenance import MaintenanceResult, maintain_table

__all__ = ["TableMaintenance", "maintain_lakehouse"]


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


def maintain_lakehouse(lake: Lakehouse, catalog: Catalog, *, retention_hours: int) -> Iterator[TableMaintenance]:
    """Compacts and vacuums every catalogued table, and each raw table's ingest log (each raw batch
    appends a small file to it, and every run reads it whole). The nightly job and `medallion maintain`
    both run this. Catalogued tables are maintained the catalog's way (`Catalog.maintain`: OPTIMIZE/VACUUM SQL
    on Unity Catalog); the ingest logs, which no catalog lists, with delta-rs."""
    for name, entry in catalog.entries().items():
        result = catalog.maintain(entry, retention_hours=retention_hours)
        log = (
            maintain_table(lake.ingest_log(entry.table), retention_hours=retention_hours)
            if entry.zone == "raw"
            else None
        )
        yield TableMaintenance(name=name, key=[entry.zone, entry.table], table=result, ingest_log=log)
