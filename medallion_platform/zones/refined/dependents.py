"""Refined tables brought up to date after trusted changed outside a run (an erasure, a quarantine replay)."""

from collections.abc import Collection

from medallion_platform.engine import build_engine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import refresh_refined
from medallion_platform.zones.refined.coverage import inputs_missing, pending_dates

__all__ = ["refresh_dependents"]


def refresh_dependents(lake: Lakehouse, changed: Collection[str]) -> list[dict]:
    """Refreshes every refined table with an input among the trusted tables `changed` (dated tables: their
    pending dates, `coverage.py`; the others as a run would); one `{table, version, mode}` per table written."""
    tables = [t for t in REFINED_TABLES if set(t.inputs) & set(changed) and not inputs_missing(lake, t)]
    if not tables:
        return []
    done = []
    engine = build_engine(lake.settings.engine)
    try:
        for table in tables:
            dates = pending_dates(lake, table) if table.partitioned else None
            if table.partitioned and not dates:
                continue
            result = refresh_refined(lake, engine, table, dates)
            done.append(
                {"table": f"refined/{table.name}", "version": lake.refined(table.name).version(), "mode": result.mode}
            )
    finally:
        engine.close()
    return done
