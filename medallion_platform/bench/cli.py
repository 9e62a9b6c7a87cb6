"""`medallion bench` (and `python -m medallion_platform.bench`): arguments, run, print, write."""

import argparse
import sys
from pathlib import Path

__all__ = ["add_bench_parser", "cmd_bench", "main"]


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints the table, writes the JSON (and the table beside it)."""
    from medallion_platform.bench.report import format_report
    from medallion_platform.bench.run import BenchConfig, run_benchmark

    config = BenchConfig(
        events=args.events,
        out=Path(args.out),
        work_dir=Path(args.work_dir) if args.work_dir else None,
        spark=not args.no_spark,
        keep=args.keep,
        rss_baseline=Path(args.rss_baseline) if args.rss_baseline else None,
    )
    result = run_benchmark(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    text = format_report(result)
    config.out.with_suffix(".txt").write_text(text)
    print(text)
    print(f"wrote {config.out} and {config.out.with_suffix('.txt')}")
    return 0


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--events", type=int, default=3_000_000, help="events in the full batch (default 3000000)")
    parser.add_argument(
        "--out", default="bench_results/latest.json", help="JSON result (a .txt table is written beside)"
    )
    parser.add_argument("--work-dir", help="where the lake is built (default: a new temporary folder)")
    parser.add_argument("--no-spark", action="store_true", help="skip the local Spark comparison")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--rss-baseline", help="an earlier result JSON (smaller --events) for the RSS-growth target")
    parser.set_defaults(func=cmd_bench)
    return parser


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Registers `bench` on the `medallion` command's subparsers."""
    return _configure(subparsers.add_parser("bench", help="benchmark the platform", description=cmd_bench.__doc__))


def main(argv: list[str] | None = None) -> int:
    parser = _configure(argparse.ArgumentParser(prog="medallion bench", description=cmd_bench.__doc__))
    args = parser.parse_args(argv)
    return args.func(args)
