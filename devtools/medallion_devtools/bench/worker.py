"""One benchmark phase in its own process, so CPU time and peak RSS are that phase's alone.

`python -m medallion_devtools.bench.worker <phase> --work-dir DIR --out PHASE.json [phase options]`
"""

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["PHASES", "main"]

PHASES = ("land", "parse_limit", "pipeline", "same_transforms", "dagster_overhead")


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="medallion_devtools.bench.worker")
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--tag", default="full")
    parser.add_argument("--day", type=int, default=0, help="first event day, counted from the benchmark's start")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--late", type=int, default=0, help="late events for the three days before --day")
    parser.add_argument("--redeliver", type=int, default=0)
    parser.add_argument("--master", action="store_true")
    parser.add_argument("--engine", choices=("embedded", "spark", "databricks-local"), default="embedded")
    args = parser.parse_args(argv)

    from medallion_devtools.bench import pipeline
    from medallion_platform.settings import Settings

    settings = Settings.from_env({}, data_dir=args.work_dir / "lake")
    if args.phase == "pipeline":
        pipeline.import_pipeline()
    imported = time.perf_counter() - started
    if args.phase == "land":
        result = pipeline.land(
            settings,
            events=args.events,
            first_id=args.first_id,
            tag=args.tag,
            redeliver=args.redeliver,
            master=args.master,
            day=args.day,
            days=args.days,
            late=args.late,
        )
    elif args.phase == "parse_limit":
        result = pipeline.parse_limit(settings)
    elif args.phase == "pipeline":
        result = pipeline.run_pipeline(settings, master=args.master)
    elif args.phase == "same_transforms":
        from medallion_devtools.bench.engines import same_transforms

        result = same_transforms(settings, args.engine)
    else:
        from medallion_devtools.bench.orchestration import dagster_overhead

        result = dagster_overhead()
    from medallion_devtools.bench.measure import peak_rss_mb

    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    result["startup_s"] = round(imported, 4)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
