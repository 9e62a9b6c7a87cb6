"""The `medallion` command as users run it: exit codes and what it prints (the AWS commands:
`ingestion/aws/test_cli_aws.py`)."""

import contextlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from medallion_platform.cli import main

TABLES = {
    f"medallion.{zone}.{name}"
    for zone, names in {
        "raw": ("order_events", "customers", "products", "payments"),
        "trusted": (
            "order_events",
            "order_events_quarantine",
            "customers",
            "customers_quarantine",
            "customers_history",
            "products",
            "products_quarantine",
            "payments",
            "payments_quarantine",
            "payments_history",
            "order_events_quality",
            "customers_quality",
            "products_quality",
            "payments_quality",
        ),
        "refined": ("daily_revenue", "customer_lifetime", "product_performance", "segment_revenue"),
    }.items()
    for name in names
}


def _local_env(mp: pytest.MonkeyPatch, dagster_home: Path) -> None:
    """A clean `local` environment whatever the caller's shell exports."""
    for var in [v for v in os.environ if v.startswith("MEDALLION_")]:
        mp.delenv(var)
    mp.setenv("DAGSTER_HOME", str(dagster_home))  # `demo` sets it for its run; restored afterwards


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`medallion demo --orders 100` once for the module: the data directory and what the demo printed."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as mp:
        _local_env(mp, root / ".dagster")
        code, out, _err = _run("--data-dir", str(data_dir), "demo", "--orders", "100")
        assert code == 0, out
        yield data_dir, out


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _local_env(monkeypatch, tmp_path / ".dagster")


def _summary(printed: str) -> dict[str, tuple[int, str]]:
    """`table rows quarantined version location` rows of the demo's summary → {table: (rows, quarantined)}."""
    rows = re.findall(r"^(medallion\.\S+)\s+(\d+)\s+(\S+)\s+\d+\s+\S+$", printed, flags=re.M)
    return {name: (int(n), q) for name, n, q in rows}


def _generated(printed: str) -> dict[str, int]:
    """`dataset  N files  M records` lines of `generate` (the demo runs it first)."""
    return {d: int(n) for d, n in re.findall(r"^(\w+)\s+\d+ files\s+(\d+) records$", printed, flags=re.M)}


def test_demo_lands_everything_it_generated_and_reconciles(lake, local_env):
    _data_dir, printed = lake
    generated, summary = _generated(printed), _summary(printed)
    assert set(generated) == {"order_events", "customers", "products", "payments"}
    assert set(summary) == {t for t in TABLES if not t.endswith(("_quarantine", "_quality"))}
    for dataset, records in generated.items():
        assert summary[f"medallion.raw.{dataset}"][0] == records, dataset
        trusted, quarantined = summary[f"medallion.trusted.{dataset}"]
        assert 0 < trusted < records and int(quarantined) > 0  # the sample holds duplicates and bad rows
    assert all(rows > 0 for rows, _q in summary.values())


def test_sql_prints_rows_by_catalog_name(lake, local_env):
    data_dir, printed = lake
    summary = _summary(printed)
    code, out, _ = _run(
        "--data-dir",
        str(data_dir),
        "sql",
        "SELECT count(*) AS n, count(DISTINCT customer_id) AS ids FROM medallion.trusted.customers",
    )
    assert code == 0
    header, row, footer = out.splitlines()
    assert header.split() == ["n", "ids"]
    n = summary["medallion.trusted.customers"][0]
    assert row.split() == [str(n), str(n)]  # trusted is unique on the key
    assert footer == "(1 rows)"

    code, out, _ = _run(
        "--data-dir",
        str(data_dir),
        "sql",
        "SELECT event_date FROM medallion.refined.daily_revenue ORDER BY event_date",
        "--limit",
        "3",
    )
    lines = out.splitlines()
    assert code == 0 and lines[0].strip() == "event_date" and len(lines) == 1 + 3 + 1
    assert lines[-1] == f"({summary['medallion.refined.daily_revenue'][0]} rows)"  # all counted, 3 shown
    assert lines[1:4] == sorted(lines[1:4])


def test_catalog_lists_every_table_with_owner_location_and_pii(lake, local_env):
    data_dir, _ = lake
    code, out, _ = _run("--data-dir", str(data_dir), "catalog")
    assert code == 0
    listed = {line.split()[0]: line for line in out.splitlines()}
    assert set(listed) == TABLES
    customers = listed["medallion.trusted.customers"]
    assert "owner=team:crm-data" in customers and "pii=name,email" in customers
    assert str(data_dir / "trusted" / "customers") in customers
    assert "pii=" not in listed["medallion.refined.daily_revenue"]


def test_config_errors_are_one_line_and_exit_2(local_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MEDALLION_ENV", "aws")
    assert main(["--data-dir", str(tmp_path), "catalog"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("medallion catalog: MEDALLION_ENV=aws needs MEDALLION_RAW_BUCKET")


def test_ingest_on_a_local_environment_says_how_to_get_aws(local_env, tmp_path, capsys):
    export = tmp_path / "customers.csv"
    export.write_text("customer_id\n1\n")
    assert main(["--data-dir", str(tmp_path), "ingest", "batch", "customers", str(export)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "MEDALLION_ENV is local" in line and "medallion local-aws up" in line


def _local_aws_without_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDALLION_ENV", "local-aws")
    for zone in ("RAW", "TRUSTED", "REFINED"):
        monkeypatch.setenv(f"MEDALLION_{zone}_BUCKET", f"medallion-local-{zone.lower()}")


def test_ingest_without_a_stack_name_names_the_variable(local_env, monkeypatch, tmp_path, capsys):
    _local_aws_without_stack(monkeypatch)
    assert main(["ingest", "stream", "order_events", str(tmp_path / "none.jsonl")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("medallion ingest: MEDALLION_STACK is not set")


def test_ingest_refuses_a_dataset_of_the_other_kind(local_env, monkeypatch, tmp_path, capsys):
    _local_aws_without_stack(monkeypatch)
    assert main(["ingest", "stream", "customers", str(tmp_path / "x.jsonl")]) == 2
    assert "'customers' is not a stream dataset; stream datasets: order_events" in capsys.readouterr().err


def test_usage_errors_exit_2(local_env, capsys):
    for argv in (["ingest", "batch", "customers"], ["ingest", "batch", "customers", "f.csv", "--copy", "later"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "invalid choice: 'later'" in capsys.readouterr().err


def _one_line(code_wanted: int, *argv: str) -> str:
    """Runs `medallion argv`, expects exit `code_wanted`, nothing on stdout and exactly one line on stderr."""
    code, out, err = _run(*argv)
    assert (code, out) == (code_wanted, ""), (code, out, err)
    (line,) = err.splitlines()
    return line


def test_bad_sql_is_one_line_exit_1(lake, local_env):
    data_dir, _ = lake
    line = _one_line(1, "--data-dir", str(data_dir), "sql", "SELEC 1")
    assert line.startswith("medallion sql: the query is not valid SQL: syntax error at or near")
    assert '"SELEC"' in line and "Traceback" not in line


def test_an_unknown_table_is_one_line_naming_it_exit_1(lake, local_env):
    data_dir, _ = lake
    line = _one_line(1, "--data-dir", str(data_dir), "sql", "SELECT * FROM medallion.refined.revenue")
    assert "Table with name revenue does not exist" in line and line.endswith("(`medallion catalog` lists the tables)")
    line = _one_line(1, "--data-dir", str(data_dir), "sql", "SELECT nope FROM medallion.refined.daily_revenue")
    assert 'Referenced column "nope" not found' in line


def test_a_missing_data_directory_is_named_with_what_to_run_exit_2(local_env, tmp_path):
    missing = tmp_path / "no-lake-here"
    for argv in (["sql", "SELECT 1"], ["catalog"], ["maintain"]):
        line = _one_line(2, "--data-dir", str(missing), *argv)
        assert line == (
            f"medallion {argv[0]}: data directory {missing} does not exist: run `medallion demo` for sample data, "
            "or point --data-dir (or MEDALLION_DATA_DIR) at a lake"
        )
    missing.mkdir()  # a folder, but no lake in it
    line = _one_line(2, "--data-dir", str(missing), "sql", "SELECT * FROM medallion.raw.customers")
    assert f"no tables in {missing} yet" in line and "medallion materialize" in line


def test_an_unknown_environment_is_one_line_exit_2(local_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALLION_ENV", "prod")
    line = _one_line(2, "--data-dir", str(tmp_path), "catalog")
    assert line == (
        "medallion catalog: MEDALLION_ENV='prod' is not an environment: use one of local, local-aws, aws, databricks "
        "(unset it for local)"
    )


def test_a_local_emulator_that_is_down_is_one_line_exit_1(lake, local_env, monkeypatch):
    data_dir, _ = lake
    monkeypatch.setenv("MEDALLION_ENV", "local-aws")
    for zone in ("raw", "trusted", "refined"):
        monkeypatch.setenv(f"MEDALLION_{zone.upper()}_BUCKET", f"medallion-local-{zone}")
    monkeypatch.setenv("MEDALLION_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    line = _one_line(1, "--data-dir", str(data_dir), "sql", "SELECT 1")
    assert line == (
        "medallion sql: the local AWS emulator at http://127.0.0.1:9 does not answer: start it with "
        "`medallion local-aws up` in another terminal and `source` the lines it prints"
    )


def test_a_databricks_stand_in_that_is_down_is_one_line_exit_1(local_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALLION_ENV", "databricks")
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")
    line = _one_line(1, "--data-dir", str(tmp_path), "catalog")
    assert line.startswith("medallion catalog: the local Databricks stand-in at http://127.0.0.1:9 does not answer")
    assert "medallion local-databricks up" in line


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(lake, local_env, monkeypatch):
    data_dir, _ = lake
    import medallion_platform.catalog as catalog

    def broken(settings):
        raise RuntimeError("catalog file is corrupt\nsecond line")

    monkeypatch.setattr(catalog, "build_catalog", broken)
    line = _one_line(1, "--data-dir", str(data_dir), "catalog")
    assert line == "medallion catalog: RuntimeError: catalog file is corrupt (run with --debug for the traceback)"
    with pytest.raises(RuntimeError, match="catalog file is corrupt"):
        main(["--debug", "--data-dir", str(data_dir), "catalog"])


def _options(parser, path: str = "medallion"):
    """Every (command path, option action) of the parser and its subcommands, recursively."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help_and_help_shows_defaults(capsys):
    from medallion_platform.cli import build_parser

    options = list(_options(build_parser()))
    assert len(options) > 20
    assert not [f"{path} {a.option_strings[0]}" for path, a in options if not (a.help or "").strip()]
    for argv, shown in (
        (["sql", "--help"], "rows printed (all rows are counted) (default: 50)"),
        (["maintain", "--help"], "(default: 168)"),
        (["demo", "--help"], "(default: 1500)"),
        (["bench", "--help"], "(default: <work dir>/latest.json with --work-dir"),
        (["local-aws", "up", "--help"], "(default: local)"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert shown in " ".join(capsys.readouterr().out.split()), argv


def test_catalog_aligns_names_owners_and_locations(lake, local_env):
    data_dir, _ = lake
    code, out, _ = _run("--data-dir", str(data_dir), "catalog")
    assert code == 0
    lines = out.splitlines()
    assert len({line.index(" owner=") for line in lines}) == 1  # the longest name sets the column
    assert len({line.index(f" {data_dir}") for line in lines}) == 1


def test_maintain_says_why_nothing_changed(lake, local_env):
    data_dir, _ = lake
    code, out, _ = _run("--data-dir", str(data_dir), "maintain", "--retention-hours", "168")
    assert code == 0
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    assert set(lines) == TABLES
    # a fresh demo's refined table is one commit of compact files: nothing to compact, nothing old to vacuum
    assert lines["medallion.refined.customer_lifetime"].endswith(
        ": nothing to do (already compact; no unreferenced file older than the retention)"
    )
    assert "0 -> 0" not in out


def test_demo_hints_use_absolute_paths_and_the_data_dir_given(lake):
    data_dir, printed = lake
    browse, query = (line for line in printed.splitlines() if line.startswith(("Browse it:", "Query it:")))
    medallion = browse.split()[2]
    assert Path(medallion).is_absolute() and Path(medallion).name == "medallion"
    assert browse.startswith(f"Browse it: {medallion} --data-dir {data_dir} ui")
    assert query.startswith(f"Query it:  {medallion} --data-dir {data_dir} sql ")


def test_importing_the_code_location_warns_about_nothing_but_other_warnings_still_show():
    import subprocess
    import sys

    code = (
        "import warnings, dagster; import medallion_platform.definitions; "
        "warnings.warn('another beta API', dagster.BetaWarning)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "backfill_policy" not in done.stderr
    assert "another beta API" in done.stderr  # the filter is narrow: other Dagster warnings still show


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise():
    from medallion_platform.cli.progress import phases

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        with phases("demo", 2, stream=stream) as progress:
            for name in ("generate", "materialize"):
                with progress.step(name):
                    pass
        assert progress.done == 2
    assert plain.getvalue() == "demo: generate 0.0 s\ndemo: materialize 0.0 s\n"
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())  # without the terminal's escapes
    assert "━" in shown and "2/2" in shown
    assert "demo: generate 0.0 s" in shown and "demo: materialize 0.0 s" in shown


DEV_HINT = "comes with the development tools: pip install -e ./devtools (make installs it)"


@pytest.mark.parametrize(
    "argv",
    [
        ("local-aws", "up", "--stack", "x"),
        ("local-databricks", "up", "--port", "0"),
        ("bench", "--events", "5000"),
        ("chaos", "--help"),
    ],
)
def test_without_the_development_tools_their_commands_say_how_to_install_them_and_exit_2(argv, monkeypatch):
    """The product alone (no `medallion.commands` entry points): each dev-only command is still listed, parses any
    arguments, and fails with one line. Tested through the dispatch with an empty entry-point list."""
    from medallion_platform.cli import build_parser, plugins

    monkeypatch.setattr(plugins, "installed_commands", dict)
    assert argv[0] in build_parser().format_help()
    assert _one_line(2, *argv) == f"medallion {argv[0]}: `{argv[0]}` {DEV_HINT}"


def test_the_development_tools_add_their_commands_through_the_entry_point_group(capsys):
    from medallion_platform.cli import plugins

    assert set(plugins.installed_commands()) >= set(plugins.DEV_COMMANDS)
    with pytest.raises(SystemExit) as exit_info:  # the real parser, not the not-installed stand-in
        main(["local-aws", "up", "--help"])
    assert exit_info.value.code == 0 and "--shards" in capsys.readouterr().out


def test_a_product_command_still_refuses_arguments_it_does_not_take(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["catalog", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
