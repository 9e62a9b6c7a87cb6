"""The real `databricks_pyspark_step_launcher` (dagster-databricks 0.29.27, databricks-sdk 0.60.0) runs ops
on the local Databricks stand-in: upload over DBFS, `runs/submit`, a driver subprocess, events back."""

import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.jobs import RunLifeCycleState, RunResultState
from medallion_devtools.standins.databricks import LocalDatabricks, RecordedRequest

from medallion_tests.databricks.conftest import REMOTE_CODE

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(300)]

PINS = [f"{name}=={version(name)}" for name in ("dagster", "dagster-databricks", "dagster-pyspark", "databricks-sdk")]


def step_launcher_config(dbx: LocalDatabricks, *, pins: list[str] = PINS) -> dict[str, Any]:
    """The step launcher's resource config for the stand-in's existing cluster."""
    return {
        "databricks_host": dbx.host,
        "databricks_token": dbx.token,
        "run_config": {
            "run_name": "medallion-step",
            "cluster": {"existing": dbx.cluster_id},
            "install_default_libraries": False,
            "libraries": [{"pypi": {"package": pin}} for pin in pins],
        },
        "permissions": {},
        "secrets_to_env_variables": [],
        "local_pipeline_package_path": str(REMOTE_CODE),
        "poll_interval_sec": 0.2,
        "max_completion_wait_time_seconds": 240,
    }


@dataclass
class Outcome:
    """What a Dagster run of a step-launcher job left: success, the steps' events, the logs, the output."""

    success: bool
    succeeded_steps: list[str]
    failures: dict[str, str]  # step key -> the error as Dagster shows it
    logs: list[str]
    doubled: int | None


def _execute(job_name: str, dbx: LocalDatabricks, tmp_path: Path, **config: Any) -> Outcome:
    import dbx_remote_jobs  # on sys.path from conftest: the package the step launcher ships

    home = tmp_path / "dagster"
    home.mkdir()  # the step launcher needs a persistent instance whose directory exists
    run_config = {
        "resources": {
            "step_launcher": {"config": step_launcher_config(dbx, **config)},
            "io_manager": {"config": {"base_dir": str(tmp_path / "outputs")}},
        }
    }
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = dg.execute_job(
            dg.reconstructable(getattr(dbx_remote_jobs, job_name)),
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
        )
        with result:
            return Outcome(
                success=result.success,
                succeeded_steps=[e.step_key or "" for e in result.get_step_success_events()],
                failures={
                    e.step_key or "": e.step_failure_data.error.to_string() if e.step_failure_data.error else ""
                    for e in result.get_step_failure_events()
                },
                logs=[e.message for e in instance.all_logs(result.run_id)],
                doubled=result.output_for_node("local_double") if result.success and job_name == "answer_job" else None,
            )


def _paths(requests: list[RecordedRequest]) -> list[str]:
    return [r.path for r in requests]


def test_an_op_runs_remotely_and_its_output_and_events_come_back(local_databricks: LocalDatabricks, tmp_path):
    mark = len(local_databricks.requests)
    outcome = _execute("answer_job", local_databricks, tmp_path)

    assert outcome.success, outcome.failures
    assert outcome.doubled == 84  # 42 computed by the remote driver, doubled by the local op
    assert any("remote answer computed on the stand-in" in m for m in outcome.logs)  # a remote event, replayed
    assert any("hello from the remote driver" in m for m in outcome.logs)  # the driver's captured stdout
    assert outcome.succeeded_steps == ["remote_answer", "local_double"]

    wire = local_databricks.requests[mark:]
    paths = _paths(wire)
    uploads = [r.body["path"].rsplit("/", 1)[-1] for r in wire if r.path == "/api/2.0/dbfs/create" and r.body]
    assert uploads == ["databricks_step_main.py", "code.zip", "step_run_ref.pkl", "config.pkl"]
    assert paths.count("/api/2.0/dbfs/add-block") >= 4 and paths.count("/api/2.0/dbfs/close") == 4
    (submit,) = [r for r in wire if r.path == "/api/2.2/jobs/runs/submit"]
    assert paths.index("/api/2.2/jobs/runs/submit") > max(i for i, p in enumerate(paths) if p == "/api/2.0/dbfs/close")
    assert submit.body is not None
    (task,) = submit.body["tasks"]
    assert task["task_key"] == "dagster-task" and task["existing_cluster_id"] == local_databricks.cluster_id
    assert [lib["pypi"]["package"] for lib in task["libraries"]] == PINS
    assert task["spark_python_task"]["python_file"].startswith("dbfs:///dagster_staging/")
    assert all(p.startswith("/dbfs//dagster_staging/") for p in task["spark_python_task"]["parameters"])
    after = paths[paths.index("/api/2.2/jobs/runs/submit") :]
    assert "/api/2.2/jobs/runs/get" in after
    reads = [r.query["path"] for r in wire if r.path == "/api/2.0/dbfs/read"]
    assert any(p.endswith("/remote_answer/0_events.pkl") for p in reads)
    assert reads[-2:] == [reads[-2].rsplit("/", 1)[0] + "/stdout", reads[-2].rsplit("/", 1)[0] + "/stderr"]
    assert all(r.user_agent.startswith("dagster-databricks/0.29.27 databricks-sdk-py/0.60.0") for r in wire)


def test_a_failing_remote_op_is_a_failed_step_with_the_remote_error(local_databricks: LocalDatabricks, tmp_path):
    outcome = _execute("failure_job", local_databricks, tmp_path)

    assert not outcome.success
    assert list(outcome.failures) == ["remote_failure"]
    assert "ValueError: remote boom: raised on the Databricks stand-in" in outcome.failures["remote_failure"]


def test_a_library_pin_the_cluster_does_not_have_fails_the_run_as_a_library_install(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient, tmp_path
):
    outcome = _execute("answer_job", local_databricks, tmp_path, pins=[*PINS[1:], "dagster==0.0.1"])

    assert not outcome.success
    message = outcome.failures["remote_answer"]
    assert "Library installation failed for library due to user error for pypi" in message
    assert "dagster==0.0.1" in message and f"dagster {version('dagster')} is installed" in message
    run = next(iter(workspace.jobs.list_runs()))  # newest first
    assert run.state is not None and run.state.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR


def _driver_pids(dbx: LocalDatabricks, run_id: int) -> list[int]:
    """Processes whose command line names the run's directory (its driver)."""
    marker = f"{dbx.root}/runs/{run_id}/".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_cancelled_run_ends_canceled_and_its_driver_is_gone(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient, tmp_path
):
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=_execute("sleep_job", local_databricks, tmp_path)), daemon=True
    )
    thread.start()
    deadline, running = time.monotonic() + 120, None
    while running is None and time.monotonic() < deadline:
        active = list(workspace.jobs.list_runs(active_only=True))
        running = next((r for r in active if r.state and r.state.life_cycle_state == RunLifeCycleState.RUNNING), None)
        time.sleep(0.2)
    assert running is not None and running.run_id is not None, "the remote op never started running"
    assert _driver_pids(local_databricks, running.run_id)

    workspace.jobs.cancel_run(running.run_id)
    thread.join(120)

    assert not thread.is_alive()
    assert not outcome["result"].success and list(outcome["result"].failures) == ["remote_sleep"]
    final = workspace.jobs.get_run(running.run_id)
    assert final.state is not None
    assert (final.state.life_cycle_state, final.state.result_state) == (
        RunLifeCycleState.TERMINATED,
        RunResultState.CANCELED,
    )
    assert _driver_pids(local_databricks, running.run_id) == []
