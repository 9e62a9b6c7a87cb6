"""`medallion bench` at a tiny size: every figure is in the JSON and the rows reconcile. No timing assertions."""

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medallion_devtools.bench.cli import add_bench_parser, result_path
from medallion_devtools.bench.report import format_report
from medallion_devtools.bench.run import BenchConfig, plan, run_benchmark
from medallion_devtools.bench.targets import TARGETS, evaluate, ratios

from medallion_platform.cli import build_parser, main

EVENTS = 5_000
MEASURED = ("wall_s", "cpu_s", "peak_rss_mb", "rows", "rows_per_s")
PIPELINES = ("pipeline", "incremental_1pct", "double", "incremental_after_double")
INCREMENTAL = [f"{name}_{n}" for name in ("incremental_1pct", "incremental_after_double") for n in (1, 2, 3)]
# each pipeline run and the landing it processes
RUNS = [
    ("generate", "pipeline"),
    *[(f"land_incremental_{n}", f"incremental_1pct_{n}") for n in (1, 2, 3)],
    ("land_double", "double"),
    *[(f"land_incremental_after_double_{n}", f"incremental_after_double_{n}") for n in (1, 2, 3)],
]
STAGES = ("stage_raw", "commit_raw", "promote", "refined")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """`medallion bench --work-dir <tmp>/work` run from `<tmp>` as a user would: (result, JSON path, work
    directory, what it printed on stdout and stderr)."""
    tmp = tmp_path_factory.mktemp("bench")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.chdir(tmp)
        assert main(["bench", "--events", str(EVENTS), "--work-dir", "work"]) == 0
    work = tmp / "work"
    result = json.loads((work / "latest.json").read_text())
    return result, work / "latest.json", work, out.getvalue() + err.getvalue()


@pytest.mark.spark
@pytest.mark.slow
def test_bench_writes_only_under_its_work_dir_and_prints_no_debug_lines(bench):
    _result, out, work, printed = bench
    assert sorted(p.name for p in work.parent.iterdir()) == ["work"]  # nothing beside it (the cwd)
    assert sorted(p.name for p in work.iterdir()) == [".medallion-bench", "latest.json", "latest.txt"]
    assert "DEBUG" not in printed
    assert "wrote work/latest.json and work/latest.txt" in printed and out == work / "latest.json"
    # not a terminal: one plain line per phase on stderr, no progress bar
    assert all(re.search(rf"(?m)^bench: {name} \d+\.\d s$", printed) for name, _ in plan(EVENTS, spark=True))


@pytest.mark.spark
@pytest.mark.slow
def test_json_has_every_phase_figure_ratio_and_target(bench):
    result, out, _, _ = bench
    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    phases = result["phases"]
    assert [name for name, _ in plan(EVENTS, spark=True)] + ["incremental_1pct", "incremental_after_double"] == list(
        phases
    )
    for name in ("incremental_1pct", "incremental_after_double"):  # the median of three runs
        walls = phases[name]["runs_wall_s"]
        assert phases[name]["median_of"] == 3 and walls == [phases[f"{name}_{n}"]["wall_s"] for n in (1, 2, 3)]
        assert phases[name]["wall_s"] == sorted(walls)[1]
    for name in ("parse_limit", *PIPELINES):
        assert all(isinstance(phases[name][key], int | float) for key in (*MEASURED, "mb_per_s")), name
        assert phases[name]["rows"] > 0 and phases[name]["bytes"] > 0
    for name in PIPELINES:
        stages = phases[name]["stages"]
        assert set(STAGES) <= set(stages), name
        for stage in STAGES:
            assert all(key in stages[stage] for key in ("wall_s", "cpu_s", "rows", "rows_per_s", "mb_per_s", "rss_mb"))
        tables = stages["refined"]["tables"]
        assert set(tables) == {"daily_revenue", "customer_lifetime", "product_performance", "segment_revenue"}
        for table, figures in tables.items():  # what each refined table read and built, so a regression shows
            assert isinstance(figures["files_read"], int) and figures["files_read"] > 0, (name, table)
            assert figures["refresh"] in ("rebuild", "incremental"), (name, table)
            dated = table != "customer_lifetime"
            assert figures["dates"] == (phases[name]["counts"]["touched_dates"] if dated else None), (name, table)
            assert isinstance(figures["folded"], int) and isinstance(figures["files_probed"], int), (name, table)
        if name.startswith("incremental"):  # late events of stored dates fold into them
            assert all(tables[t]["folded"] > 0 for t in ("daily_revenue", "product_performance")), name
    assert "master_data" in phases["pipeline"]["stages"]
    for name in ("spark", "embedded_same_transforms"):
        engine = phases[name]
        assert all(isinstance(engine[key], int | float) for key in MEASURED)
        assert engine["session_start"]["wall_s"] > 0
        assert set(engine["stages"]) == {
            "trusted_transform",
            "refined_daily_revenue",
            "refined_customer_lifetime",
            "refined_product_performance",
            "refined_segment_revenue",
        }
    # Same transforms, same data: both engines produce the same row counts.
    for stage in phases["spark"]["stages"]:
        assert phases["spark"]["stages"][stage]["rows"] == phases["embedded_same_transforms"]["stages"][stage]["rows"]
    assert phases["spark"]["jvm_peak_rss_mb"] > 0
    dagster = phases["dagster_overhead"]
    for key in ("definitions_load_median_s", "validate_median_s", "one_asset_run_s", "overhead_per_asset_ms"):
        assert dagster[key] > 0
    assert all(value is not None for value in result["ratios"].values())
    assert set(result["targets"]) == set(TARGETS)
    for name, target in result["targets"].items():
        expected_none = name == "rss_growth_vs_baseline"  # needs --rss-baseline
        assert (target["met"] is None) == expected_none and (target["value"] is None) == expected_none, name
    assert all(key in result["machine"] for key in ("nproc", "ram_gb", "cpu_model", "duckdb", "deltalake", "pyspark"))


@pytest.mark.spark
@pytest.mark.slow
def test_rows_reconcile_across_every_batch(bench):
    result, _, work, _ = bench
    phases, recon = result["phases"], result["reconciliation"]
    assert not (work / "phases").exists()  # the lake and phases are removed without --keep; the result stays
    for land, run in RUNS:
        counts = phases[run]["counts"]
        assert counts["raw_rows"] == phases[land]["lines"] == counts["promoted_rows"], run
        assert (
            counts["raw_rows"] == counts["inserted"] + counts["updated"] + counts["duplicates"] + counts["quarantined"]
        )
        assert counts["reconciled"] and counts["max_batch_rows"] > 0
    for land, run in RUNS:
        if run not in INCREMENTAL:
            continue
        counts, landed = phases[run]["counts"], phases[land]
        # Re-delivered events are already in trusted: each is a duplicate, or quarantined again if it was bad.
        assert landed["redelivered_lines"] > 0
        assert counts["duplicates"] + counts["quarantined"] >= landed["redelivered_lines"]
    assert recon["balanced"] and recon["every_batch_reconciled"]
    assert recon["landed_lines"] == recon["inserted"] + recon["duplicates"] + recon["quarantined"] + recon["updated"]
    assert recon["trusted_rows_total"] == recon["inserted"]
    assert recon["quarantine_rows_total"] == recon["quarantined"]


@pytest.mark.spark
@pytest.mark.slow
def test_report_prints_every_phase_ratio_and_target(bench):
    result, _, _, _ = bench
    text = format_report(result)
    for word in ("parse limit", "full pipeline", "local Spark", "incremental 1 %", "dagster:", *TARGETS):
        assert word in text
    assert "balanced" in text and "NOT BALANCED" not in text


@pytest.mark.spark
@pytest.mark.slow
def test_without_spark_the_spark_figures_are_absent_not_invented(bench):
    result, _, _, _ = bench
    assert "spark" not in [name for name, _ in plan(EVENTS, spark=False)]
    phases = {name: value for name, value in result["phases"].items() if name != "spark"}
    ratio = ratios(phases)
    assert ratio["spark_vs_embedded"] is None and ratio["spark_vs_embedded_with_start"] is None
    target = evaluate(phases, ratio)["spark_vs_embedded_with_start"]
    assert target["value"] is None and target["met"] is None
    assert "n/a" in format_report({**result, "phases": phases, "ratios": ratio, "targets": evaluate(phases, ratio)})


def test_rss_growth_target_uses_the_baseline_run():
    phases = {"pipeline": {"peak_rss_mb": 1100.0}}
    ratio = {"peak_rss_max_mb": 1100.0, "incremental_after_double_vs_incremental": None}
    ratio |= {k: None for k in ("pipeline_vs_parse", "spark_vs_embedded_with_start", "incremental_vs_full")}
    baseline = {"phases": {"pipeline": {"peak_rss_mb": 1000.0}}}
    target = evaluate(phases, ratio, baseline)["rss_growth_vs_baseline"]
    assert target["value"] == 1.1 and target["met"] is True
    assert (
        evaluate(phases, ratio, {"phases": {"pipeline": {"peak_rss_mb": 900.0}}})["rss_growth_vs_baseline"]["met"]
        is False
    )


def test_bench_command_line(tmp_path: Path):
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--events", "1000", "--no-spark", "--work-dir", str(tmp_path), "--keep"])
    assert (args.events, args.no_spark, args.keep) == (1000, True, True)
    # with a work directory the result goes inside it (nothing is written elsewhere), else bench_results/
    assert result_path(args.out, args.work_dir) == tmp_path / "latest.json"
    assert result_path(None, None) == Path("bench_results/latest.json")
    assert result_path("x/y.json", str(tmp_path)) == Path("x/y.json")
    assert args.func.__name__ == "cmd_bench"
    registered = build_parser().parse_args(["bench", "--events", "1000", "--no-spark"])  # `medallion bench`
    assert registered.func.__name__ == "cmd_bench" and registered.events == 1000


def test_refuses_a_work_dir_it_did_not_make(tmp_path: Path):
    (tmp_path / "precious.txt").write_text("not the benchmark's")
    with pytest.raises(SystemExit, match="not empty"):
        run_benchmark(BenchConfig(events=10, out=tmp_path / "out.json", work_dir=tmp_path), log=lambda _: None)
    assert (tmp_path / "precious.txt").exists()


def test_databricks_local_compares_the_same_transforms_on_a_spark_connect_cluster_when_asked():
    names = [name for name, _ in plan(EVENTS, spark=True, databricks_local=True)]
    assert names.index("databricks_local") == names.index("spark") + 1
    assert dict(plan(EVENTS, spark=False, databricks_local=True))["databricks_local"] == {
        "worker": "same_transforms",
        "engine": "databricks-local",
    }
    assert "databricks_local" not in dict(plan(EVENTS, spark=True))
    parser = build_parser()
    args = parser.parse_args(["bench", "--engine", "databricks-local"])
    assert args.engine == ["databricks-local"]


def test_a_phase_s_peak_rss_is_its_own_not_that_of_the_process_that_spawned_it():
    """Linux carries the spawning process's peak over an exec into `ru_maxrss`; a phase reports its own."""
    held = bytearray(300 * 2**20)
    held[::4096] = b"\x01" * len(held[::4096])  # resident, not just reserved
    child = subprocess.run(
        [sys.executable, "-c", "from medallion_devtools.bench.measure import peak_rss_mb; print(peak_rss_mb())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert float(child.stdout) < 200, child.stdout  # this process holds over 300 MB
    del held


def test_a_span_counts_the_cpu_of_its_live_grandchildren():
    """A phase's CPU includes processes its children started and that still run (the Spark JVM under its
    launcher): found through each thread's `children` list, the same set as walking every process."""
    from medallion_devtools.bench.measure import _descendants_by_parent, descendant_pids

    launcher = subprocess.Popen(["bash", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        for _ in range(100):  # both sleeps started (bounded: 10 s)
            if len(_descendants_by_parent(launcher.pid)) == 2:
                break
            time.sleep(0.1)
        found = descendant_pids()
        assert launcher.pid in found
        assert set(_descendants_by_parent(launcher.pid)) <= set(found)
        assert len(found) >= 3
    finally:
        for pid in _descendants_by_parent(launcher.pid):
            os.kill(pid, signal.SIGKILL)
        launcher.kill()
        launcher.wait(timeout=10)
