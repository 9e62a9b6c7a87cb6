"""The Dagster instance the project creates: pools, run monitoring, telemetry off, safe to create concurrently."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.launcher.base import WorkerStatus

from medallion_platform.run.instance import DAGSTER_YAML, MedallionRunLauncher, prepare_instance


def test_the_instance_has_one_writer_per_source_run_monitoring_and_no_telemetry(tmp_path: Path):
    home = tmp_path / "new" / ".dagster"
    prepare_instance(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "op"
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
        assert isinstance(instance.run_launcher, MedallionRunLauncher)
        assert not instance.get_settings("telemetry")["enabled"]
        assert instance.auto_materialize_use_sensors


def test_idempotent_upgrades_the_demo_file_and_keeps_someone_elses(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\n")  # what the demo wrote
    prepare_instance(home)
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML
    written = (home / "dagster.yaml").stat().st_mtime_ns
    prepare_instance(home)
    assert (home / "dagster.yaml").stat().st_mtime_ns == written
    own = tmp_path / "own"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_instance(own)
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_processes_creating_one_new_instance_at_once_all_succeed(tmp_path: Path):
    """Without the lock, two `materialize` at once on a new data directory die on `alembic_version`."""
    home, go = tmp_path / "home", tmp_path / "go"
    code = (
        "import sys, time, pathlib\n"
        "from medallion_platform.run.instance import prepare_instance\n"
        "import dagster as dg\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "deadline = time.monotonic() + 60\n"
        "while not go.exists() and time.monotonic() < deadline: time.sleep(0.01)\n"
        "prepare_instance(pathlib.Path(sys.argv[1]))\n"
        "with dg.DagsterInstance.from_config(sys.argv[1]) as i: print(len(i.get_runs()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(home), str(go)], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    time.sleep(3)  # all three imported dagster and wait for the signal
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]


def test_the_launcher_reports_a_run_whose_process_died(tmp_path: Path):
    prepare_instance(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(timeout=60)
        alive_run = _started_run(instance, os.getpid())
        dead_run = _started_run(instance, dead.pid)
        launcher = instance.run_launcher
        assert launcher.check_run_worker_health(alive_run).status == WorkerStatus.RUNNING
        assert launcher.check_run_worker_health(dead_run).status == WorkerStatus.FAILED


def _started_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    """A run in STARTED state whose RUN_START event names process `pid`."""
    from dagster._core.events import DagsterEvent

    run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), status=dg.DagsterRunStatus.NOT_STARTED)
    instance.report_dagster_event(
        DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid), run.run_id
    )
    started = instance.get_run_by_id(run.run_id)
    assert started is not None and started.status == dg.DagsterRunStatus.STARTED
    return started
