"""Crash recovery: a killed `medallion materialize` holds nothing, and the next one rebuilds what its inputs hold."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.run.instance import prepare_instance
from medallion_platform.run.materialize import materialize_all
from medallion_platform.run.recovery import release_dead_runs
from medallion_platform.settings import Settings
from medallion_platform.zones.refined import REFINED_TABLES

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).resolve().parents[2]


def _medallion(data: Path, home: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "MEDALLION_ENV": "local"}
    command = [sys.executable, "-m", "medallion_platform.cli", "--data-dir", str(data), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _wait_for_a_started_run(home: Path, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline and process.poll() is None:
            started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            if started:
                return started[0].run_id
            time.sleep(0.2)
    pytest.fail(f"no run started within {timeout} s (materialize exited with {process.poll()})")


def test_kill_9_mid_run_then_the_rerun_finishes_and_builds_every_table(tmp_path: Path):
    data, home = tmp_path / "data", tmp_path / "data" / ".dagster"
    prepare_instance(home)
    generate = _medallion(data, home, "generate", "--orders", "3000")
    assert generate.wait(timeout=120) == 0
    first = _medallion(data, home, "materialize", start_new_session=True)
    killed = _wait_for_a_started_run(home, first, timeout=180)
    time.sleep(1.0)  # into the run: its pool slot is claimed
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    rerun = _medallion(data, home, "materialize")
    try:
        output, _ = rerun.communicate(timeout=300)  # before the fix: no output, never returns
    except subprocess.TimeoutExpired:
        rerun.kill()
        pytest.fail("the rerun after kill -9 hung for 300 s")
    assert rerun.returncode == 0, output[-3000:]
    lake = Lakehouse(Settings.from_env({}, data_dir=data))
    for table in REFINED_TABLES:
        assert lake.refined(table.name).exists(), table.name
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(killed)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()  # every slot free
        assert release_dead_runs(instance) == []


def test_a_refined_table_lost_after_trusted_is_rebuilt_by_the_next_run(sample_lake, tmp_path: Path):
    """Killed between the trusted commit and the refined commits: no new raw rows, but the table comes back."""
    settings, _, _, _ = sample_lake
    copy = tmp_path / "lake"
    shutil.copytree(settings.data_dir, copy, ignore=shutil.ignore_patterns(".dagster"))
    lake = Lakehouse(Settings.from_env({}, data_dir=copy))
    before = lake.refined("product_performance").read()
    shutil.rmtree(copy / "refined" / "product_performance")
    prepare_instance(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        report = materialize_all(lake.settings, instance=instance, notify=lambda line: None)
    assert report.success, report.runs
    assert report.refined_dates["product_performance"] and report.refined_dates["daily_revenue"] == []
    after = lake.refined("product_performance").read()
    assert after is not None and before is not None
    assert sorted(after.to_pylist(), key=str) == sorted(before.to_pylist(), key=str)
