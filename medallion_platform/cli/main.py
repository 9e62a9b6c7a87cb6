"""The `medallion` command: demo, generate, materialize, ui, sql, catalog, maintain, erase, quarantine replay,
local AWS and ingestion."""

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from medallion_platform.cli import plugins
from medallion_platform.cli.aws import register as register_aws
from medallion_platform.cli.contracts import register as register_contracts
from medallion_platform.cli.errors import describe
from medallion_platform.cli.governance import register as register_governance
from medallion_platform.cli.parser import Parser
from medallion_platform.cli.quality import register as register_quality

__all__ = ["build_parser", "main"]

DEMO_MARKER = ".medallion-demo"
WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"
"""The code location of a source checkout (`dagster dev -w`); installed packages load the module instead."""


def _settings(args: argparse.Namespace):
    from medallion_platform.settings import Settings

    return Settings.from_env(**({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}))


def _dagster_home(settings) -> Path:
    """The Dagster instance folder this lake's runs use: `$DAGSTER_HOME`, else `<data dir>/.dagster`, made
    ready (created, with the project's `dagster.yaml`)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / ".dagster").resolve()
    from medallion_platform.run.instance import prepare_instance

    prepare_instance(home)  # pools, run monitoring, telemetry off, automation on; safe when two start at once
    return home


def _instance(settings):
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(_dagster_home(settings))
    return dg.DagsterInstance.get()


def _command(name: str) -> str:
    """The absolute path of one of this environment's commands (`medallion`, `dagster`), for printed hints."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _require_lake(settings) -> None:
    """Fails with what to run when the data directory holds no lake (the catalog lives in it)."""
    from medallion_platform.settings import ConfigError

    if settings.catalog_kind != "embedded":
        return
    if not settings.data_dir.is_dir():
        raise ConfigError(
            f"data directory {settings.data_dir} does not exist: run `medallion demo` for sample data, "
            "or point --data-dir (or MEDALLION_DATA_DIR) at a lake"
        )
    if not settings.catalog_path.exists():
        raise ConfigError(
            f"no tables in {settings.data_dir} yet ({settings.catalog_path} is missing): "
            "run `medallion materialize` after landing data (`medallion generate` writes sample files)"
        )


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _generate(args: argparse.Namespace, settings) -> list[str]:
    from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data

    manifest = generate_sample_data(
        Path(settings.landing_root), SampleSpec(seed=args.seed, orders=args.orders, days=args.days)
    )
    return [
        f"{dataset:14} {len(files):5} files  {manifest.raw_rows[dataset]:7} records"
        for dataset, files in sorted(manifest.files.items())
    ]


def _materialize(args: argparse.Namespace, settings) -> tuple[bool, list[str]]:
    from medallion_platform.run.materialize import materialize_all

    report = materialize_all(settings, instance=_instance(settings), log_level="DEBUG" if args.verbose else "WARNING")
    return report.success, [f"run {label:28} {'ok' if ok else 'FAILED'}" for label, ok in report.runs]


def cmd_generate(args: argparse.Namespace) -> int:
    """Writes deterministic sample landing files into the raw zone's landing prefix."""
    print("\n".join(_generate(args, _settings(args))))
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    """Materializes every asset over what has landed, then prints the summary."""
    from medallion_platform.cli.errors import check_services
    from medallion_platform.cli.progress import phases

    settings = _settings(args)
    check_services(settings)
    with phases("materialize", 2) as progress:
        with progress.step("every asset, in dependency order"):
            ok, lines = _materialize(args, settings)
        with progress.step("summary"):
            lines += _summary(settings)
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Fresh sample data, the whole medallion, a summary, and the commands to browse and query it."""
    from medallion_platform.cli.progress import phases
    from medallion_platform.settings import ConfigError

    settings = _settings(args)
    data_dir = settings.data_dir
    # a Dagster home alone (e.g. from `medallion ui` before the first demo) is not user data
    foreign = data_dir.exists() and any(p.name != ".dagster" for p in data_dir.iterdir())
    if foreign and not (data_dir / DEMO_MARKER).exists():
        raise ConfigError(f"{data_dir} holds data the demo did not make; give the demo another folder with --data-dir")
    data_dir.mkdir(parents=True, exist_ok=True)
    for child in data_dir.iterdir():  # the run history (.dagster) stays, for the UI
        if child.name != ".dagster":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    (data_dir / DEMO_MARKER).write_text("made by `medallion demo`; deleted by the next demo\n")
    lines = [f"data directory: {data_dir}"]
    with phases("demo", 3) as progress:
        with progress.step("generate sample landing files"):
            lines += _generate(args, settings)
        with progress.step("materialize every asset"):
            ok, runs = _materialize(args, settings)
            lines += runs
        with progress.step("summary"):
            lines += _summary(settings)
    medallion = f"{_command('medallion')} --data-dir {data_dir}"
    lines += [
        "",
        f"Browse it: {medallion} ui   # the Dagster UI on http://127.0.0.1:3000, Ctrl-C stops it",
        f'Query it:  {medallion} sql "SELECT * FROM medallion.refined.daily_revenue LIMIT 5"',
    ]
    print("\n".join(lines))
    return 0 if ok else 1


def _summary(settings) -> list[str]:
    from medallion_platform.catalog import build_catalog
    from medallion_platform.lake.lakehouse import HISTORY_SUFFIX, Lakehouse

    lake = Lakehouse(settings)
    # quarantines are counted beside their tables; quality figures are `medallion quality`'s
    hidden = ("_quarantine", "_quality")
    entries = {n: e for n, e in build_catalog(settings).entries().items() if not e.table.endswith(hidden)}
    width = max([38, *map(len, entries)])
    lines = ["", f"{'table':{width}} {'rows':>9} {'quarantined':>11} {'version':>7}  location"]
    for name, entry in entries.items():
        table = lake.at(entry.location).table()
        rows = table.count() if table else 0
        quarantined = "-"
        if entry.zone == "trusted" and not entry.table.endswith(HISTORY_SUFFIX):
            q = lake.quarantine(entry.table).table()
            quarantined = str(q.count() if q else 0)
        version = table.version() if table else -1
        lines.append(f"{name:{width}} {rows:>9} {quarantined:>11} {version:>7}  {entry.location}")
    return lines


def cmd_ui(args: argparse.Namespace) -> int:
    """Starts the Dagster UI and daemon (`dagster dev`) on this lake's Dagster instance, on 127.0.0.1, until
    Ctrl-C. The instance folder is `$DAGSTER_HOME`, else `<data dir>/.dagster`, created if missing."""
    settings = _settings(args)
    home = _dagster_home(settings)
    target = ["-w", str(WORKSPACE)] if WORKSPACE.exists() else ["-m", "medallion_platform.definitions"]
    env = {**os.environ, "DAGSTER_HOME": str(home), "MEDALLION_DATA_DIR": str(settings.data_dir)}
    print(f"Dagster UI on http://{args.host}:{args.port} (instance {home}); Ctrl-C stops it", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    dagster = _command("dagster")
    os.execve(dagster, [dagster, "dev", *target, "-h", args.host, "-p", str(args.port)], env)
    return 0  # not reached: `dagster dev` replaced this process


def cmd_sql(args: argparse.Namespace) -> int:
    """Runs SQL over `medallion.<zone>.<table>` names and prints the rows."""
    from medallion_platform.catalog import build_catalog
    from medallion_platform.cli.errors import check_services

    settings = _settings(args)
    _require_lake(settings)
    check_services(settings)
    table = build_catalog(settings).sql(args.query)
    names = table.column_names
    rows = table.to_pylist()[: args.limit]
    widths = [max(len(n), *(len(str(r[n])) for r in rows)) if rows else len(n) for n in names]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[n]).ljust(w) for n, w in zip(names, widths, strict=True)))
    print(f"({table.num_rows} rows)")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    """Lists the registered tables: name, owner, location and PII columns."""
    from medallion_platform.catalog import build_catalog
    from medallion_platform.cli.errors import check_services

    settings = _settings(args)
    _require_lake(settings)
    check_services(settings)
    entries = build_catalog(settings).entries()
    name_width = max(map(len, entries), default=0)
    owner_width = max((len(f"owner={e.owner}") for e in entries.values()), default=0)
    for name, entry in entries.items():
        pii = f"  pii={','.join(entry.pii)}" if entry.pii else ""
        print(f"{name:{name_width}}  {'owner=' + entry.owner:{owner_width}}  {entry.location}{pii}")
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    """Compacts and vacuums every registered table and the raw ingest logs (what the nightly job does), and
    says why when nothing changed."""
    from medallion_platform.catalog import build_catalog
    from medallion_platform.cli.errors import check_services
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.zones.maintenance import maintain_lakehouse

    settings = _settings(args)
    _require_lake(settings)
    check_services(settings)
    catalog = build_catalog(settings)
    for done in maintain_lakehouse(Lakehouse(settings), catalog, retention_hours=args.retention_hours):
        print(done.summary())
    return 0


def build_parser(commands: Mapping[str, plugins.Register] | None = None) -> argparse.ArgumentParser:
    """The `medallion` argument parser, every subcommand included; `commands`: the subcommands other
    distributions add (default: those installed, `plugins.installed_commands()`)."""
    extra = plugins.installed_commands() if commands is None else commands
    parser = Parser(prog="medallion", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default: $MEDALLION_DATA_DIR, else ./data)")
    parser.add_argument("--verbose", action="store_true", help="show Dagster's DEBUG event lines of each run")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        p.set_defaults(func=func)
        return p

    for name, func, text in (
        ("demo", cmd_demo, "fresh sample data through the whole medallion"),
        ("generate", cmd_generate, "write sample landing files"),
    ):
        p = add(name, func, text)
        p.add_argument("--seed", type=int, default=7, help="random seed of the sample (same seed, same files)")
        p.add_argument("--orders", type=int, default=1500, help="orders in the sample (about 3 events each)")
        p.add_argument("--days", type=_positive, default=5, help="days the sample's events span (landing partitions)")
    add("materialize", cmd_materialize, "materialize every asset over what has landed")
    p = add("ui", cmd_ui, "the Dagster UI and daemon on this lake's instance")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--port", type=int, default=3000, help="port to serve on")
    p = add("sql", cmd_sql, "query tables by medallion.<zone>.<table>")
    p.add_argument("query", help='SQL over catalog names, e.g. "SELECT * FROM medallion.refined.daily_revenue"')
    p.add_argument("--limit", type=int, default=50, help="rows printed (all rows are counted)")
    add("catalog", cmd_catalog, "list registered tables")
    p = add("maintain", cmd_maintain, "compact and vacuum every table")
    p.add_argument("--retention-hours", type=int, default=168, help="vacuum deletes unreferenced files older than this")

    register_quality(sub, _settings)
    plugins.add_command(sub, "local-aws", extra)
    register_aws(sub, _settings)
    register_contracts(sub, _settings)
    register_governance(sub, _settings)
    for name in (*plugins.DEV_COMMANDS[1:], *sorted(extra.keys() - set(plugins.DEV_COMMANDS))):
        plugins.add_command(sub, name, extra)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one `medallion` command; expected failures print one line (`--debug`: the traceback)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        code, line = describe(exc)
        print(f"medallion {args.command}: {line}", file=sys.stderr)
        return code
