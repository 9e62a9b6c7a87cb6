"""`medallion bench` (and `python -m medallion_devtools.bench`): arguments, run, print, write."""

import argparse
from pathlib import Path

__all__ = ["add_bench_parser", "cmd_bench", "main", "result_path"]

DEFAULT_OUT = Path("bench_results/latest.json")


def result_path(out: str | None, work_dir: str | None) -> Path:
    """Where the JSON goes: `--out`; else `<work dir>/latest.json` when a work directory is given (the
    benchmark then writes nothing outside it); else `bench_results/latest.json`."""
    if out:
        return Path(out)
    return Path(work_dir) / DEFAULT_OUT.name if work_dir else DEFAULT_OUT


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints the table, writes the JSON (and the table beside it)."""
    from medallion_devtools.bench.report import format_report
    from medallion_devtools.bench.run import BenchConfig, plan, run_benchmark
    from medallion_platform.cli.progress import phases

    config = BenchConfig(
        events=args.events,
        out=result_path(args.out, args.work_dir),
        work_dir=Path(args.work_dir) if args.work_dir else None,
        spark=not args.no_spark,
        databricks_local="databricks-local" in (args.engine or []),
        keep=args.keep,
        rss_baseline=Path(args.rss_baseline) if args.rss_baseline else None,
    )
    with phases("bench", len(plan(config.events, config.spark, config.databricks_local))) as progress:
        result = run_benchmark(config, step=progress.step)
    text = format_report(result)
    config.out.with_suffix(".txt").write_text(text)
    print(text)
    print(f"wrote {config.out} and {config.out.with_suffix('.txt')}")
    return 0


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--events", type=int, default=3_000_000, help="events in the full batch")
    parser.add_argument(
        "--out",
        default=None,
        help=f"JSON result, a .txt table beside it (default: <work dir>/{DEFAULT_OUT.name} with --work-dir, "
        f"else {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--work-dir",
        help="where the lake, the phases' logs and temporary files go; emptied at the end but for the result "
        "(default: a new temporary folder, removed)",
    )
    parser.add_argument("--no-spark", action="store_true", help="skip the local Spark comparison")
    parser.add_argument(
        "--engine",
        action="append",
        choices=("databricks-local",),
        help="also compare the same transforms on this engine: databricks-local = a local Spark Connect cluster "
        "with native Delta (Sail, the Databricks stand-in's cluster engine)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (lake, phase logs)")
    parser.add_argument("--rss-baseline", help="an earlier result JSON (smaller --events) for the RSS-growth target")
    parser.set_defaults(func=cmd_bench)
    return parser


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Registers `bench` on the `medallion` command's subparsers."""
    return _configure(subparsers.add_parser("bench", help="benchmark the platform", description=cmd_bench.__doc__))


def main(argv: list[str] | None = None) -> int:
    """`python -m medallion_devtools.bench`: the same command as `medallion bench`."""
    from medallion_platform.cli.parser import Parser

    parser = _configure(Parser(prog="medallion bench", description=cmd_bench.__doc__))
    args = parser.parse_args(argv)
    return args.func(args)
