"""The `medallion` command as users run it: exit codes and what it prints (the AWS commands: `aws/test_cli_aws.py`)."""

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
        "raw": ("order_events", "customers", "products"),
        "trusted": (
            "order_events",
            "order_events_quarantine",
            "customers",
            "customers_quarantine",
            "products",
            "products_quarantine",
        ),
        "refined": ("daily_revenue", "customer_lifetime", "product_performance"),
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
    assert set(generated) == {"order_events", "customers", "products"}
    assert set(summary) == {t for t in TABLES if not t.endswith("_quarantine")}
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
