"""Table maintenance: compaction (small Firehose-sized files into large ones) and vacuum."""

from dataclasses import dataclass

from medallion_platform.lake.delta_io import DeltaTableIO

__all__ = ["MaintenanceResult", "maintain_table"]


@dataclass(frozen=True)
class MaintenanceResult:
    uri: str
    files_removed: int
    files_added: int
    vacuumed: int


def maintain_table(
    table: DeltaTableIO, *, retention_hours: int = 168, target_size: int | None = None
) -> MaintenanceResult:
    """Compacts small files, then vacuums files older than the retention (default 7 days)."""
    delta = table.table()
    if delta is None:
        return MaintenanceResult(table.uri, 0, 0, 0)
    metrics = delta.optimize.compact(target_size=target_size)
    vacuumed = delta.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    return MaintenanceResult(
        table.uri, int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0)), len(vacuumed)
    )
