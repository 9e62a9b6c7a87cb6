"""The measured phases that land data and run the platform's own code on it (embedded engine).

`run_pipeline` is the full path a run takes, through the same source step plan the Dagster asset
runs (`zones/source_step.py`): stage raw (survey the landing prefix, parse the new objects), commit
raw (rejections, the batch, its ingest-log rows), promote to trusted + quarantine from the batch in
hand (plan, then write), then the refined tables for the event dates the run touched. The full run,
the incremental batches and the doubled table all go through it.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from medallion_devtools.bench.data import generate_events, generate_master_data, redeliver_events
from medallion_devtools.bench.measure import measured, peak_rss_mb
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings

__all__ = ["event_files", "land", "parse_limit", "run_pipeline"]

EVENT_COLUMNS = (
    "event_id",
    "order_id",
    "customer_id",
    "product_id",
    "quantity",
    "unit_price",
    "currency",
    "status",
    "event_time",
)


def event_files(settings: Settings) -> list[Path]:
    """Every landed order-event object."""
    return sorted(p for p in (Path(settings.landing_root) / "landing" / "order_events").rglob("*") if p.is_file())


def _rate(amount: float, seconds: float) -> float:
    return round(amount / seconds, 1) if seconds > 0 else 0.0


START = dt.date(2026, 10, 1)


def land(
    settings: Settings,
    *,
    events: int,
    first_id: int,
    tag: str,
    redeliver: int = 0,
    master: bool = False,
    day: int = 0,
    days: int = 7,
    late: int = 0,
) -> dict:
    """Lands a batch of events for days `day`..`day+days-1` (plus `late` events for the three days
    before, re-deliveries of the newest objects, and master data); not a target."""
    before = {p: p.stat().st_size for p in event_files(settings)}
    root = Path(settings.landing_root)
    with measured() as span:
        # re-deliveries first: they repeat objects already landed (and ingested) before this batch
        redelivered = redeliver_events(root, redeliver, tag=tag, newest=True) if redeliver else 0
        start = START + dt.timedelta(days=day)
        data = generate_events(root, events, first_id=first_id, tag=tag, start=start, days=days)
        lines = data.lines
        if late:
            # events of the three previous days that arrive now: they touch (only) those dates
            late_data = generate_events(
                root,
                late,
                first_id=first_id + events,
                tag=f"{tag}-late",
                start=start - dt.timedelta(days=3),
                days=3,
                late_events=False,
                arrival=start,
            )
            lines += late_data.lines
        masters = generate_master_data(Path(settings.landing_root)) if master else {}
    new = [p for p in event_files(settings) if p not in before]
    return {
        **span.as_dict(),
        "events": events,
        "first_id": first_id,
        "tag": tag,
        "lines": lines + redelivered,
        "redelivered_lines": redelivered,
        "files": len(new),
        "bytes": sum(p.stat().st_size for p in new),
        "master_rows": masters,
    }


def parse_limit(settings: Settings) -> dict:
    """The reference: DuckDB reads every landed event object and materializes every column, nothing else."""
    files = [str(p) for p in event_files(settings)]
    columns = ", ".join(f"{name}: 'VARCHAR'" for name in EVENT_COLUMNS)  # raw keeps every value as text
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    with measured() as span:
        con.execute(
            f"""CREATE TABLE parsed AS SELECT * FROM read_json(?, format = 'newline_delimited',
                columns = {{{columns}}}, ignore_errors = true)""",
            [files],
        )
        (rows,) = con.execute("SELECT count(*) FROM parsed").fetchall()[0]
    size = sum(Path(f).stat().st_size for f in files)
    con.close()
    return {
        **span.as_dict(),
        "rows": rows,
        "files": len(files),
        "bytes": size,
        "rows_per_s": _rate(rows, span.wall_s),
        "mb_per_s": _rate(size / 1e6, span.wall_s),
    }


def _stage(span, rows: int, size: int, **extra) -> dict:
    return {
        **span.as_dict(),
        "rows": rows,
        "rows_per_s": _rate(rows, span.wall_s),
        "mb_per_s": _rate(size / 1e6, span.wall_s),
        **extra,
    }


def import_pipeline() -> None:
    """Imports what `run_pipeline` uses, so a phase's clock starts with the code loaded (as in a
    code-location process); the import time is reported as the phase's `startup_s`."""
    import medallion_platform.engine.embedded
    import medallion_platform.zones.flow
    import medallion_platform.zones.refined
    import medallion_platform.zones.source_step  # noqa: F401


def _master_data(lake: Lakehouse, contracts: dict) -> dict:
    """customers and products through raw and trusted (and the customers' history), measured as one stage."""
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.zones.flow import ingest_and_promote
    from medallion_platform.zones.history import refresh_history

    with measured() as span:
        rows = 0
        for name in ("customers", "products"):
            engine = EmbeddedEngine()
            raw_result, _ = ingest_and_promote(lake, engine, contracts[name])
            refresh_history(lake, engine, contracts[name])  # segment_revenue joins the customers' history
            engine.close()
            rows += raw_result.rows
    return _stage(span, rows, 0)


def _refined(lake: Lakehouse, result: Any, size: int) -> dict:
    """Every refined table refreshed for the dates `result` touched, each measured."""
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.zones.refined import REFINED_TABLES
    from medallion_platform.zones.refined.base import refresh_refined

    tables: dict[str, dict] = {}
    with measured() as span:
        for table in REFINED_TABLES:
            dates = result.touched_partitions if table.partitioned else None
            with measured() as one:
                engine = EmbeddedEngine()
                refreshed = refresh_refined(lake, engine, table, dates)
                engine.close()
            tables[table.name] = {
                **one.as_dict(),
                "rows": refreshed.rows,
                "dates": refreshed.dates,  # event dates built (None: the whole table)
                "files_read": refreshed.files_read,  # trusted files read: the dates' (or the new events')
                "folded": refreshed.folded,  # of `dates`, those the new events were folded into
                "files_probed": refreshed.files_probed,  # older files read for the distinct-count check only
                "refresh": refreshed.mode,
            }
    return _stage(span, result.inserted + result.updated, size, tables=tables)


def run_pipeline(settings: Settings, *, master: bool = False) -> dict:
    """Raw -> trusted (+ quarantine) -> refined over what has newly landed, measured per stage."""
    from medallion_platform.contracts import load_contracts
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.zones.flow import write_raw
    from medallion_platform.zones.source_step import SourceStep
    from medallion_platform.zones.trusted import write_promotion

    lake = Lakehouse(settings)
    contracts = load_contracts()
    contract = contracts["order_events"]
    stages: dict[str, dict] = {}
    started = dt.datetime.now(dt.UTC)
    with measured() as total:
        if master:
            stages["master_data"] = _master_data(lake, contracts)

        with SourceStep(lake, contract) as step:
            with measured() as span:
                plan = step.plan_raw()
            batch = plan.batch
            if batch is None:
                raise RuntimeError("nothing new has landed: the benchmark lands data before each pipeline run")
            size = sum(f.size for f in batch.files)
            stages["stage_raw"] = _stage(span, batch.rows, size, files=len(batch.files))

            with measured() as span:
                raw_result = write_raw(lake, plan)
            stages["commit_raw"] = _stage(span, raw_result.rows, size, max_batch_rows=raw_result.max_batch_rows)

            with measured() as span:
                engine = EmbeddedEngine()
                result = write_promotion(lake, contract, step.plan_promotion(engine))
                engine.close()
                step.close()
            stages["promote"] = _stage(
                span,
                result.raw_rows,
                size,
                built_from_batch=result.built_from_batch,
                max_batch_rows=result.max_batch_rows,
            )

        stages["refined"] = _refined(lake, result, size)

    trusted = lake.trusted(contract.name).table()
    quarantine = lake.quarantine(contract.name).table()
    plans = EmbeddedEngine().plans
    return {
        **total.as_dict(),
        # plans run from the plan cache, and plans built (and kept) by this run
        "plans": None if plans is None else {"reused": plans.hits, "built": plans.recorded},
        "started_at": started.isoformat(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rows": raw_result.rows,
        "bytes": size,
        "files": len(batch.files),
        "rows_per_s": _rate(raw_result.rows, total.wall_s),
        "mb_per_s": _rate(size / 1e6, total.wall_s),
        "stages": stages,
        "counts": {
            "raw_rows": raw_result.rows,
            "malformed": raw_result.malformed,
            "promoted_rows": result.raw_rows,
            "inserted": result.inserted,
            "updated": result.updated,
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
            "quarantine_by_rule": result.quarantine_by_rule,
            "reconciled": result.reconciled,
            "touched_dates": len(result.touched_partitions),
            "trusted_rows_total": trusted.count() if trusted else 0,
            "quarantine_rows_total": quarantine.count() if quarantine else 0,
            "max_batch_rows": max(raw_result.max_batch_rows, result.max_batch_rows),
        },
        "touched_partitions": result.touched_partitions,
    }
