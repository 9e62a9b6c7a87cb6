"""The `medallion` command: demo, generate, materialize, sql, catalog, maintain, local AWS and ingestion."""

import argparse
import os
import shutil
import sys
from pathlib import Path

__all__ = ["main"]

DEMO_MARKER = ".medallion-demo"


def _settings(args: argparse.Namespace):
    from medallion_platform.settings import Settings

    return Settings.from_env(**({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}))


def _instance(settings):
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # One writer per source at a time: each source step runs in the pool `medallion_<dataset>`.
        config.write_text("concurrency:\n  pools:\n    default_limit: 1\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def cmd_generate(args: argparse.Namespace) -> int:
    """Writes deterministic sample landing files into the raw zone's landing prefix."""
    from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data

    settings = _settings(args)
    manifest = generate_sample_data(Path(settings.landing_root), SampleSpec(seed=args.seed, orders=args.orders))
    for dataset, files in sorted(manifest.files.items()):
        print(f"{dataset:14} {len(files):5} files  {manifest.raw_rows[dataset]:7} records")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    """Materializes every asset over what has landed, then prints the summary."""
    from medallion_platform.automation.materialize import materialize_all

    settings = _settings(args)
    report = materialize_all(settings, instance=_instance(settings))
    for label, ok in report.runs:
        print(f"run {label:28} {'ok' if ok else 'FAILED'}")
    _print_summary(settings)
    return 0 if report.success else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Fresh sample data, the whole medallion, a summary."""
    settings = _settings(args)
    data_dir = settings.data_dir
    # a Dagster home alone (e.g. from `make ui` before the first demo) is not user data
    foreign = data_dir.exists() and any(p.name != ".dagster" for p in data_dir.iterdir())
    if foreign and not (data_dir / DEMO_MARKER).exists():
        print(f"{data_dir} holds data the demo did not make; set MEDALLION_DATA_DIR elsewhere", file=sys.stderr)
        return 2
    data_dir.mkdir(parents=True, exist_ok=True)
    for child in data_dir.iterdir():  # the run history (.dagster) stays, for the UI
        if child.name != ".dagster":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    (data_dir / DEMO_MARKER).write_text("made by `medallion demo`; deleted by the next demo\n")
    print(f"data directory: {data_dir}")
    cmd_generate(args)
    code = cmd_materialize(args)
    print(f"\nBrowse it: DAGSTER_HOME={data_dir / '.dagster'} .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1")
    print('Query it:  .venv/bin/medallion sql "SELECT * FROM medallion.refined.daily_revenue LIMIT 5"')
    return code


def _print_summary(settings) -> None:
    from medallion_platform.catalog import build_catalog
    from medallion_platform.lake.lakehouse import Lakehouse

    lake = Lakehouse(settings)
    entries = build_catalog(settings).entries()
    print(f"\n{'table':38} {'rows':>9} {'quarantined':>11} {'version':>7}  location")
    for name, entry in entries.items():
        if entry.table.endswith("_quarantine"):
            continue
        table = lake.at(entry.location).table()
        rows = table.count() if table else 0
        quarantined = "-"
        if entry.zone == "trusted":
            q = lake.quarantine(entry.table).table()
            quarantined = str(q.count() if q else 0)
        version = table.version() if table else -1
        print(f"{name:38} {rows:>9} {quarantined:>11} {version:>7}  {entry.location}")


def cmd_sql(args: argparse.Namespace) -> int:
    """Runs SQL over `medallion.<zone>.<table>` names."""
    from medallion_platform.catalog import build_catalog

    table = build_catalog(_settings(args)).sql(args.query)
    names = table.column_names
    rows = table.to_pylist()[: args.limit]
    widths = [max(len(n), *(len(str(r[n])) for r in rows)) if rows else len(n) for n in names]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[n]).ljust(w) for n, w in zip(names, widths, strict=True)))
    print(f"({table.num_rows} rows)")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    """Lists the registered tables."""
    from medallion_platform.catalog import build_catalog

    for name, entry in build_catalog(_settings(args)).entries().items():
        pii = f"  pii={','.join(entry.pii)}" if entry.pii else ""
        print(f"{name:40} owner={entry.owner:20} {entry.location}{pii}")
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    """Compacts and vacuums every registered table and the raw ingest logs (what the nightly job does)."""
    from medallion_platform.automation.maintenance import maintain_lakehouse
    from medallion_platform.catalog import build_catalog
    from medallion_platform.lake.lakehouse import Lakehouse

    settings = _settings(args)
    catalog = build_catalog(settings)
    for done in maintain_lakehouse(Lakehouse(settings), catalog, retention_hours=args.retention_hours):
        print(done.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medallion", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default: $MEDALLION_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        p.set_defaults(func=func)
        return p

    for name, func, text in (
        ("demo", cmd_demo, "fresh sample data through the whole medallion"),
        ("generate", cmd_generate, "write sample landing files"),
    ):
        p = add(name, func, text)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--orders", type=int, default=1500)
    add("materialize", cmd_materialize, "materialize every asset over what has landed")
    p = add("sql", cmd_sql, "query tables by medallion.<zone>.<table>")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=50)
    add("catalog", cmd_catalog, "list registered tables")
    p = add("maintain", cmd_maintain, "compact and vacuum every table")
    p.add_argument("--retention-hours", type=int, default=168)

    from medallion_platform.cli_aws import register  # imported here: cli_aws may use this module

    register(sub, _settings)
    from medallion_platform.cli_databricks import register as register_databricks

    register_databricks(sub)
    from medallion_platform.bench.cli import add_bench_parser

    add_bench_parser(sub)
    from medallion_platform.cli_chaos import register as register_chaos

    register_chaos(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from medallion_platform.settings import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"medallion: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
