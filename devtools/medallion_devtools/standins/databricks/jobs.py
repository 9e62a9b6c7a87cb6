"""Jobs 2.2 on the stand-in: one-time runs (`runs/submit`), jobs (`create` + `run-now`), their life cycle.

A run's tasks execute one after another, each in its own driver process (`driver.py`) in its own
process group, with `/dbfs` mounted (`mount.py`). The life cycle is Databricks':
`PENDING` (libraries checked, driver spawned) → `RUNNING` → `TERMINATED` with `SUCCESS`, `FAILED`
(non-zero exit: "Workload failed, see run output for details"), `CANCELED` (`runs/cancel`: SIGTERM to the
group, `TERMINATING` until it is gone) or `TIMEDOUT` (the task's or run's `timeout_seconds`, or the
stand-in's maximum run time, which keeps a client that polls without a limit from hanging forever);
`INTERNAL_ERROR` when a task cannot start (a library that is not installed, a missing file, no `/dbfs`).
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medallion_devtools.standins.databricks.access import acting_as, caller
from medallion_devtools.standins.databricks.dbfs import Dbfs
from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request
from medallion_devtools.standins.databricks.libraries import LibraryInstallFailed, check_libraries
from medallion_devtools.standins.databricks.mount import MOUNT_POINT, DbfsMount
from medallion_devtools.standins.databricks.volumes import Volumes
from medallion_devtools.standins.databricks.workspace import Workspace

__all__ = ["Cluster", "Jobs"]

TASK_KINDS = ("spark_python_task", "notebook_task")
TERMINAL = ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")
FAILED_MESSAGE = "Workload failed, see run output for details"
LOGS_TAIL_BYTES = 5 * 1024 * 1024  # get-output returns the last 5 MB of the logs, as Databricks does
KILL_GRACE_SECONDS = 10.0
# What a driver inherits from the stand-in's environment: enough to run Python and Java, nothing of
# the caller's configuration (no DATABRICKS_*, no AWS_*, no PYTHONPATH). The cluster adds its own.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "JAVA_HOME")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Cluster:
    """An all-purpose cluster: the stand-in's one existing cluster, or a run's `new_cluster`."""

    cluster_id: str
    cluster_name: str = "medallion-local"
    spark_version: str = "17.3.x-scala2.13"  # the DBR line on Spark 4, as the local pyspark 4.x
    spark_env_vars: Mapping[str, str] = field(default_factory=dict)
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    log_destination: str | None = None  # e.g. "dbfs:/cluster-logs": driver logs under <it>/<id>/driver/
    # The cluster's own identity: its drivers reach the workspace with this token (runtime native authentication),
    # never with the caller's.
    token: str = field(default_factory=lambda: f"dapi-cluster-{secrets.token_hex(16)}", repr=False)
    # The principal that token stands for: a dedicated cluster's `single_user_name`, else whom the run runs as (its
    # submitter), as a job's compute acts as the job's run-as identity.
    principal: str = ""
    # A job cluster starts: PENDING until `running_at` (time.monotonic()), then RUNNING. The existing one is up.
    running_at: float = 0.0
    spec: Mapping[str, object] = field(default_factory=dict)  # a job cluster's new_cluster as submitted

    @property
    def running(self) -> bool:
        return time.monotonic() >= self.running_at

    def info(self) -> JsonObject:
        """`clusters/get`: a single-node cluster, PENDING while it starts, then RUNNING."""
        info: JsonObject = {
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "spark_version": self.spark_version,
            "state": "RUNNING" if self.running else "PENDING",
            "state_message": "" if self.running else "Starting Spark",
            "node_type_id": str(self.spec.get("node_type_id", "local")),
            "driver_node_type_id": str(self.spec.get("driver_node_type_id", self.spec.get("node_type_id", "local"))),
            "num_workers": self.spec.get("num_workers", 0),
            **{
                k: self.spec[k]
                for k in ("autoscale", "data_security_mode", "policy_id", "custom_tags")
                if k in self.spec
            },
            "spark_conf": dict(self.spark_conf),
            "spark_env_vars": dict(self.spark_env_vars),
            "cluster_source": "UI",
            "creator_user_name": "standin@localhost",
        }
        if self.log_destination:
            info["cluster_log_conf"] = {"dbfs": {"destination": self.log_destination}}
        return info


@dataclass
class _Task:
    """One task of a run, with its own run id, cluster and driver process."""

    task_key: str
    run_id: int
    settings: JsonObject
    cluster: Cluster
    directory: Path
    spark_context_id: str = field(default_factory=lambda: str(secrets.randbits(62)))
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = "Waiting for cluster"
    user_cancelled_or_timedout: bool = False
    start_time: int = field(default_factory=_now_ms)
    end_time: int = 0
    process: subprocess.Popen[bytes] | None = None
    outcome: JsonObject = field(default_factory=dict)

    def end(self, life_cycle_state: str, result_state: str, message: str) -> None:
        self.life_cycle_state, self.result_state, self.state_message = life_cycle_state, result_state, message
        self.user_cancelled_or_timedout = result_state in ("CANCELED", "TIMEDOUT")
        self.end_time = _now_ms()

    def state(self) -> JsonObject:
        state: JsonObject = {
            "life_cycle_state": self.life_cycle_state,
            "state_message": self.state_message,
            "user_cancelled_or_timedout": self.user_cancelled_or_timedout,
        }
        if self.result_state:
            state["result_state"] = self.result_state
        return state

    def info(self) -> JsonObject:
        info: JsonObject = {
            **{k: v for k, v in self.settings.items() if k not in ("new_cluster",)},
            "task_key": self.task_key,
            "run_id": self.run_id,
            "state": self.state(),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "attempt_number": 0,
            # Always present (also for a new cluster): the step launcher waits 10 s per poll without it.
            "cluster_instance": {"cluster_id": self.cluster.cluster_id, "spark_context_id": self.spark_context_id},
        }
        if "new_cluster" in self.settings:
            info["new_cluster"] = self.settings["new_cluster"]
        return info


@dataclass
class _Run:
    run_id: int
    job_id: int
    run_name: str
    run_type: str
    tasks: list[_Task]
    timeout_seconds: float | None
    run_page_url: str
    start_time: int = field(default_factory=_now_ms)
    cancel: threading.Event = field(default_factory=threading.Event)

    def state(self) -> JsonObject:
        """The run's state: its running task's, or once all ended, the first unsuccessful one's."""
        active = [t for t in self.tasks if t.life_cycle_state not in TERMINAL]
        if active:
            return active[0].state() | ({"state_message": "In run"} if active[0].life_cycle_state == "RUNNING" else {})
        failed = [t for t in self.tasks if t.result_state != "SUCCESS"]
        return (failed or self.tasks)[0].state()


class Jobs:
    """The runs and jobs of one stand-in."""

    def __init__(
        self,
        *,
        host: Callable[[], str],
        dbfs: Dbfs,
        workspace: Workspace,
        cluster: Cluster,
        mount: DbfsMount,
        runs_dir: Path,
        secret_scopes: Mapping[str, Mapping[str, str]],
        max_run_seconds: float,
        volumes: Volumes,
        legacy: bool = False,
        cluster_start_seconds: float = 0.0,
        spark_remote: Callable[[], str | None] = lambda: None,
        storage_folders: Callable[[], Sequence[Path]] = lambda: (),
    ) -> None:
        self._storage_folders = storage_folders
        self._cluster_start_seconds = cluster_start_seconds
        self._host = host
        self._spark_remote = spark_remote
        self._dbfs = dbfs
        self._volumes = volumes
        self._legacy = legacy
        self._workspace = workspace
        self.cluster = cluster
        self._mount = mount
        self._runs_dir = runs_dir
        self._secret_scopes = secret_scopes
        self._max_run_seconds = max_run_seconds
        self._ids = iter(range(1001, sys.maxsize))
        self._runs: dict[int, _Run] = {}
        self._task_runs: dict[int, tuple[_Run, _Task]] = {}
        self._jobs: dict[int, JsonObject] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- API -------------------------------------------------------------------------------------

    def submit(self, body: JsonObject) -> JsonObject:
        """`runs/submit`: a one-time run of `tasks`; returns `{run_id}` at once, the run goes on."""
        run = self._start(body, job_id=None, run_type="SUBMIT_RUN", name=body.get("run_name") or "Untitled")
        return {"run_id": run.run_id}

    def create(self, body: JsonObject) -> JsonObject:
        """`jobs/create`: a job to `run-now` later."""
        self._tasks_of(body)  # validated now, as Databricks does
        with self._lock:
            job_id = next(self._ids)
            self._jobs[job_id] = {"job_id": job_id, "created_time": _now_ms(), "settings": body}
        return {"job_id": job_id}

    def get_job(self, job_id: int) -> JsonObject:
        """`jobs/get`."""
        return {**self._job(job_id), "creator_user_name": "standin@localhost"}

    def run_now(self, body: JsonObject) -> JsonObject:
        """`run-now`: a run of a job; `python_params` replace and `notebook_params` extend task parameters."""
        job = self._job(body.get("job_id"))
        if body.get("job_parameters"):
            raise bad_request("The stand-in does not support job_parameters; use python_params or notebook_params.")
        settings = json.loads(json.dumps(job["settings"]))
        for task in settings.get("tasks", []):
            if "python_params" in body and "spark_python_task" in task:
                task["spark_python_task"]["parameters"] = list(body["python_params"])
            if "notebook_params" in body and "notebook_task" in task:
                task["notebook_task"]["base_parameters"] = {
                    **task["notebook_task"].get("base_parameters", {}),
                    **body["notebook_params"],
                }
        run = self._start(settings, job_id=job["job_id"], run_type="JOB_RUN", name=settings.get("name") or "Untitled")
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def get(self, run_id: int) -> JsonObject:
        """`runs/get`."""
        run = self._run(run_id)
        with self._lock:
            tasks = [t.info() for t in run.tasks]
            state = run.state()
            end = max(t.end_time for t in run.tasks) if state["life_cycle_state"] in TERMINAL else 0
        info: JsonObject = {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "original_attempt_run_id": run.run_id,
            "run_name": run.run_name,
            "run_type": run.run_type,
            "run_page_url": run.run_page_url,
            "creator_user_name": "standin@localhost",
            "state": state,
            "start_time": run.start_time,
            "end_time": end,
            "format": "MULTI_TASK",
            "attempt_number": 0,
            "tasks": tasks,
        }
        if len(tasks) == 1:
            info["cluster_instance"] = tasks[0]["cluster_instance"]
        return info

    def list_runs(self, active_only: bool, completed_only: bool, job_id: int | None, limit: int) -> JsonObject:
        """`runs/list`: newest first, one page (`limit` runs, at most 25 by default as on Databricks)."""
        with self._lock:
            runs = sorted(self._runs, reverse=True)
        infos = [self.get(run_id) for run_id in runs]
        infos = [
            info
            for info in infos
            if (job_id is None or info["job_id"] == job_id)
            and not (active_only and info["state"]["life_cycle_state"] in TERMINAL)
            and not (completed_only and info["state"]["life_cycle_state"] not in TERMINAL)
        ]
        return {"runs": infos[:limit], "has_more": len(infos) > limit} if infos else {"has_more": False}

    def cancel(self, run_id: int) -> JsonObject:
        """`runs/cancel`: asynchronous, as on Databricks (the run is TERMINATING, then CANCELED)."""
        run = self._run(run_id)
        with self._lock:
            if any(t.life_cycle_state not in TERMINAL for t in run.tasks):
                run.cancel.set()
                for task in run.tasks:
                    if task.life_cycle_state not in TERMINAL:
                        task.life_cycle_state, task.result_state = "TERMINATING", "CANCELED"
                        task.state_message = "Run cancelled."
                        task.user_cancelled_or_timedout = True
        return {}

    def get_output(self, run_id: int) -> JsonObject:
        """`runs/get-output` of a task run (or of a one-task run): `{metadata, error, error_trace, logs}`."""
        with self._lock:
            found = self._task_runs.get(run_id)
            run = self._runs.get(run_id)
        if found is None and run is not None:
            if len(run.tasks) != 1:
                raise bad_request(
                    "Retrieving the output of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead."
                )
            found = (run, run.tasks[0])
        if found is None:
            raise bad_request(f"Run {run_id} does not exist.", "RESOURCE_DOES_NOT_EXIST")
        run, task = found
        output: JsonObject = {"metadata": {**self.get(run.run_id), **task.info()}}
        with self._lock:
            output.update({k: v for k, v in task.outcome.items() if k in ("error", "error_trace")})
            if "notebook_result" in task.outcome:
                output["notebook_output"] = {"result": task.outcome["notebook_result"], "truncated": False}
            if task.life_cycle_state == "INTERNAL_ERROR" and "error" not in output:
                output["error"] = task.state_message
        if "spark_python_task" in task.settings:
            logs, truncated = _tail(task.directory / "stdout", LOGS_TAIL_BYTES)
            output["logs"], output["logs_truncated"] = logs, truncated
        return output

    def cluster_of(self, cluster_id: str) -> Cluster:
        """The existing cluster, or the job cluster of a run (`clusters/get`)."""
        if cluster_id == self.cluster.cluster_id:
            return self.cluster
        with self._lock:
            for _, task in self._task_runs.values():
                if task.cluster.cluster_id == cluster_id:
                    return task.cluster
        raise bad_request(f"Cluster {cluster_id} does not exist")

    def cluster_principals(self) -> dict[str, str]:
        """The token of the existing cluster and of every job cluster (each cluster's own identity), with the
        principal each stands for."""
        with self._lock:
            clusters = [self.cluster, *(task.cluster for _, task in self._task_runs.values())]
        return {c.token: c.principal for c in clusters if c.principal}

    def has_job(self, job_id: int) -> bool:
        """Whether `job_id` names a job or the job of a one-time run (for `permissions/jobs/…`)."""
        with self._lock:
            return job_id in self._jobs or any(r.job_id == job_id for r in self._runs.values())

    def stop(self, timeout: float = 30.0) -> None:
        """Cancels every active run and waits (at most `timeout` s) for their drivers to be gone."""
        with self._lock:
            runs = list(self._runs.values())
            threads = list(self._threads)
        for run in runs:
            run.cancel.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftovers = [t.process for _, t in self._task_runs.values() if t.process and t.process.poll() is None]
        for process in leftovers:
            _kill_group(process, signal.SIGKILL)

    # -- runs ------------------------------------------------------------------------------------

    def _job(self, job_id: object) -> JsonObject:
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, int) else None
        if job is None:
            raise bad_request(f"Job {job_id} does not exist.", "RESOURCE_DOES_NOT_EXIST")
        return job

    def _run(self, run_id: int) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise bad_request(f"Run {run_id} does not exist.", "RESOURCE_DOES_NOT_EXIST")
        return run

    def _tasks_of(self, body: JsonObject) -> list[JsonObject]:
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise bad_request("At least one task is required (`tasks`).")
        keys = [t.get("task_key") for t in tasks]
        if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
            raise bad_request(f"Every task needs a unique, non-empty task_key; got {keys}.")
        for task in tasks:
            kinds = [k for k in task if k.endswith("_task")]
            if len(kinds) != 1 or kinds[0] not in TASK_KINDS:
                raise bad_request(
                    f"Task {task['task_key']}: the stand-in runs exactly one of {TASK_KINDS}; got {kinds}."
                )
            existing, new = task.get("existing_cluster_id"), task.get("new_cluster")
            if existing is not None and existing != self.cluster.cluster_id:
                raise bad_request(f"Cluster {existing} does not exist")
            if existing is not None and new is not None:
                raise bad_request(f"Task {task['task_key']}: give one of existing_cluster_id and new_cluster.")
            if new is not None:
                self._validate_new_cluster(new)
            if existing is None and new is None:
                self._validate_serverless(task, body.get("environments") or [])
        return tasks

    def _validate_new_cluster(self, new: object) -> None:
        """A new cluster as the Jobs API checks it: a node type (or pool), a size, and (no legacy access on a new
        account) a Unity Catalog access mode."""
        if not isinstance(new, dict):
            raise bad_request("new_cluster must be an object.")
        prefix = "Cluster validation error: "
        if not new.get("spark_version"):
            raise bad_request(prefix + "Missing required field: settings.cluster_spec.new_cluster.spark_version")
        if not (new.get("node_type_id") or new.get("instance_pool_id")):
            raise bad_request(prefix + "Missing required field: settings.cluster_spec.new_cluster.node_type_id")
        if "num_workers" not in new and "autoscale" not in new:
            raise bad_request(prefix + "Missing required field: settings.cluster_spec.new_cluster.size")
        mode = new.get("data_security_mode")
        if not self._legacy and mode in (None, "NONE", "LEGACY_TABLE_ACL", "LEGACY_PASSTHROUGH", "LEGACY_SINGLE_USER"):
            raise bad_request(
                prefix + f"data_security_mode {mode or 'unset'} is a legacy access mode, which this workspace "
                "disables: choose SINGLE_USER (dedicated) or USER_ISOLATION (standard)."
            )

    def _validate_serverless(self, task: JsonObject, environments: list[object]) -> None:
        """A task without a cluster runs on serverless compute: notebooks as they are, Python tasks in one of the
        run's `environments` (`environment_key`)."""
        if self._legacy:
            raise bad_request(
                f"Task {task['task_key']}: give one of existing_cluster_id and new_cluster (this classic workspace "
                "has no serverless compute)."
            )
        if "notebook_task" in task:
            return
        keys = {e.get("environment_key") for e in environments if isinstance(e, dict)}
        if task.get("environment_key") not in keys:
            raise bad_request(
                f"Task {task['task_key']}: a Python task on serverless compute needs an environment_key naming one "
                f"of the run's environments; got {task.get('environment_key')!r}."
            )

    def _start(self, body: JsonObject, *, job_id: int | None, run_type: str, name: str) -> _Run:
        tasks = self._tasks_of(body)
        timeout = body.get("timeout_seconds") or None
        with self._lock:
            run_id = next(self._ids)
            job_id = job_id if job_id is not None else next(self._ids)
            run = _Run(
                run_id=run_id,
                job_id=job_id,
                run_name=name,
                run_type=run_type,
                tasks=[],
                timeout_seconds=float(timeout) if timeout else None,
                run_page_url=f"{self._host()}/?o=0#job/{job_id}/run/{run_id}",
            )
            for settings in tasks:
                task_run_id = next(self._ids)
                task = _Task(
                    task_key=settings["task_key"],
                    run_id=task_run_id,
                    settings=settings,
                    cluster=self._cluster_for(settings),
                    directory=self._runs_dir / str(run_id) / settings["task_key"],
                )
                run.tasks.append(task)
                self._task_runs[task_run_id] = (run, task)
            self._runs[run_id] = run
            thread = threading.Thread(target=self._execute, args=(run,), name=f"standin-run-{run_id}", daemon=True)
            self._threads.append(thread)
        thread.start()
        return run

    def _cluster_for(self, settings: JsonObject) -> Cluster:
        new = settings.get("new_cluster")
        run_as = caller() or ""  # the submitter: a one-time run runs as whoever submits it
        if new is None and settings.get("existing_cluster_id") is None:  # serverless: up at once
            stamp = time.strftime("%m%d-%H%M%S", time.gmtime())
            return Cluster(
                cluster_id=f"{stamp}-serverless-{secrets.token_hex(4)}", cluster_name="serverless", principal=run_as
            )
        if new is None:
            return self.cluster
        stamp = time.strftime("%m%d-%H%M%S", time.gmtime())
        return Cluster(
            cluster_id=f"{stamp}-{secrets.token_hex(4)}",
            cluster_name=f"job-cluster-{settings['task_key']}",
            spark_version=str(new.get("spark_version", self.cluster.spark_version)),
            spark_env_vars={str(k): str(v) for k, v in (new.get("spark_env_vars") or {}).items()},
            spark_conf={str(k): str(v) for k, v in (new.get("spark_conf") or {}).items()},
            log_destination=(new.get("cluster_log_conf") or {}).get("dbfs", {}).get("destination"),
            running_at=time.monotonic() + self._cluster_start_seconds,
            spec=dict(new),
            principal=str(new.get("single_user_name") or run_as),
        )

    def _execute(self, run: _Run) -> None:
        run_limit = min(x for x in (self._max_run_seconds, run.timeout_seconds) if x)
        run_deadline = time.monotonic() + run_limit
        for index, task in enumerate(run.tasks):
            with self._lock:
                if run.cancel.is_set():
                    task.end("TERMINATED", "CANCELED", "Run cancelled.")
                    continue
                if any(t.result_state != "SUCCESS" for t in run.tasks[:index]):
                    task.end("TERMINATED", "UPSTREAM_FAILED", "Upstream task failed.")
                    continue
            limit, deadline = run_limit, run_deadline
            task_timeout = float(task.settings.get("timeout_seconds") or 0)
            if task_timeout and time.monotonic() + task_timeout < run_deadline:
                limit, deadline = task_timeout, time.monotonic() + task_timeout
            self._execute_task(run, task, deadline, f"Task {task.task_key} timed out after {limit:g} seconds.")

    def _execute_task(self, run: _Run, task: _Task, deadline: float, timeout_message: str) -> None:
        while not task.cluster.running:  # a job cluster starting: the task is PENDING, "Waiting for cluster"
            if run.cancel.wait(0.05):
                with self._lock:
                    task.end("TERMINATED", "CANCELED", "Run cancelled.")
                return
        try:
            check_libraries(task.settings.get("libraries") or [], task.cluster.cluster_id, self._read_text)
            process = self._spawn(task)
        except LibraryInstallFailed as exc:
            with self._lock:
                task.end("INTERNAL_ERROR", "FAILED", str(exc))
            return
        except (ApiError, OSError, RuntimeError) as exc:
            with self._lock:
                task.end("INTERNAL_ERROR", "FAILED", f"Could not start the task's driver: {exc}")
            return
        with self._lock:
            task.process = process
            if task.life_cycle_state == "PENDING":
                task.life_cycle_state, task.state_message = "RUNNING", "In run"
        ending: tuple[str, str] | None = None
        while process.poll() is None:
            if run.cancel.wait(0.05):
                ending = ("CANCELED", "Run cancelled.")
            elif time.monotonic() > deadline:
                ending = ("TIMEDOUT", timeout_message)
            if ending:
                with self._lock:
                    task.life_cycle_state, task.result_state, task.state_message = "TERMINATING", *ending
                _stop_group(process)
                break
        returncode = process.wait()
        _kill_group(process, signal.SIGKILL)  # whatever the driver left in its group (a JVM) goes with it
        outcome = _read_outcome(task.directory / "outcome.json")
        self._deliver_logs(task)
        with self._lock:
            task.outcome = outcome
            if ending:
                task.end("TERMINATED", *ending)
            elif returncode == 0:
                task.end("TERMINATED", "SUCCESS", "")
            else:
                task.end("TERMINATED", "FAILED", FAILED_MESSAGE)

    def _spawn(self, task: _Task) -> "subprocess.Popen[bytes]":
        task.directory.mkdir(parents=True, exist_ok=True)
        principal = task.cluster.principal or None  # None: the stand-in's own set-up
        with acting_as(principal):  # the cluster reads its code with its own privileges
            file, parameters, widgets = self._entry_point(task.settings)
        conf_dir = task.directory / "conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "spark-defaults.conf").write_text(_spark_defaults(task.cluster, task.directory))
        spec = task.directory / "spec.json"
        spec.touch(mode=0o600)  # it carries the secret scopes
        spec.write_text(
            json.dumps(
                {
                    "file": file,
                    "parameters": parameters,
                    "widgets": widgets,
                    "secrets": self._secret_scopes,
                    "outcome_file": str(task.directory / "outcome.json"),
                }
            )
        )
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env.update(self.cluster.spark_env_vars if task.cluster is self.cluster else {})
        env.update(task.cluster.spark_env_vars)
        env.update(
            # the runtime's native authentication: the cluster's own principal, not the caller's token
            DATABRICKS_HOST=self._host(),
            DATABRICKS_TOKEN=task.cluster.token,
            DATABRICKS_AUTH_TYPE="pat",
            SPARK_CONF_DIR=str(conf_dir),
            SPARK_LOCAL_IP="127.0.0.1",
            PYSPARK_PYTHON=sys.executable,
            PYTHONUNBUFFERED="1",
            # Set on every Databricks cluster: the runtime line, "17.3" of "17.3.x-scala2.13".
            DATABRICKS_RUNTIME_VERSION=".".join(task.cluster.spark_version.split(".")[:2]),
        )
        remote = self._spark_remote()
        if remote is not None:  # the cluster's engine: `spark` is a Spark Connect session to it (`runtime.py`)
            env["SPARK_REMOTE"] = remote
        work = task.directory / "work"
        work.mkdir(exist_ok=True)
        # the cluster's principal sees the volumes it may read, read-only unless it may write them (`mount.py`)
        # and, as on a Unity Catalog cluster, no storage but through Spark: the external locations' local folders
        # are empty to it (but for a location holding the stand-in's own files: an older workspace's catch-all)
        hidden = [f for f in self._storage_folders() if not task.directory.is_relative_to(f)]
        command = self._mount.wrap(
            [sys.executable, "-m", "medallion_devtools.standins.databricks.driver", str(spec)],
            volumes=self._volumes.mounts_for(principal),
            view=task.directory / "volumes-view",
            hidden=hidden,
        )
        with (task.directory / "stdout").open("wb") as stdout, (task.directory / "stderr").open("wb") as stderr:
            return subprocess.Popen(
                command,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=work,
                start_new_session=True,
            )

    def _entry_point(self, settings: JsonObject) -> tuple[str, list[str], dict[str, str]]:
        """The file the driver runs (as the driver sees it), its `sys.argv[1:]` and its widgets."""
        if "notebook_task" in settings:
            notebook = settings["notebook_task"]
            if notebook.get("source") == "GIT":
                raise RuntimeError("notebooks from Git are not supported by the stand-in")
            path = str(notebook.get("notebook_path", ""))
            try:
                found = self._workspace.get(path)
            except ApiError:
                found = None
            if found is None or found.object_type != "NOTEBOOK":
                raise RuntimeError(f'Unable to access the notebook "{path}": it does not exist or is not a notebook.')
            widgets = {str(k): str(v) for k, v in (notebook.get("base_parameters") or {}).items()}
            return str(found.local), [], widgets
        task = settings["spark_python_task"]
        python_file = str(task.get("python_file", ""))
        parameters = [str(p) for p in task.get("parameters") or []]
        if task.get("source") == "GIT":
            raise RuntimeError("python files from Git are not supported by the stand-in")
        if python_file.startswith("/Volumes/"):
            if not self._volumes.local(python_file).is_file():
                raise RuntimeError(f"The python file {python_file} does not exist in its volume.")
            return python_file, parameters, {}  # the driver sees volumes at /Volumes, as on a cluster
        if python_file.startswith("dbfs:"):
            if not self._legacy:
                raise RuntimeError(f"Public DBFS root is disabled. Access is denied on path: {python_file}")
            if not self._dbfs.local(python_file).is_file():
                raise RuntimeError(f"The python file {python_file} does not exist on DBFS.")
            return (
                f"{MOUNT_POINT}/{self._dbfs.local(python_file).relative_to(self._dbfs.root).as_posix()}",
                parameters,
                {},
            )
        if python_file.startswith("/"):
            found = self._workspace.get(python_file)
            if found.object_type != "FILE":
                raise RuntimeError(f"The python file {python_file} is a {found.object_type.lower()}, not a file.")
            return str(found.local), parameters, {}
        raise RuntimeError(
            f"The stand-in runs python files from /Volumes/, the workspace or (legacy) dbfs:/, not {python_file}."
        )

    def _read_text(self, path: str) -> str:
        if path.startswith("/Volumes/"):
            return self._volumes.local(path).read_text()
        if path.startswith("dbfs:"):
            if not self._legacy:
                raise RuntimeError(f"Public DBFS root is disabled. Access is denied on path: {path}")
            return self._dbfs.local(path).read_text()
        return self._workspace.get(path).local.read_text()

    def _deliver_logs(self, task: _Task) -> None:
        """Cluster log delivery: the driver's stdout/stderr appended under `<destination>/<id>/driver/`."""
        if not task.cluster.log_destination:
            return
        driver = self._dbfs.local(f"{task.cluster.log_destination}/{task.cluster.cluster_id}/driver")
        driver.mkdir(parents=True, exist_ok=True)
        for name in ("stdout", "stderr"):
            with (driver / name).open("ab") as out:
                out.write((task.directory / name).read_bytes())


def _spark_defaults(cluster: Cluster, directory: Path) -> str:
    """The driver's `spark-defaults.conf`: every SparkSession in the task is the cluster's."""
    delivery = "true" if cluster.log_destination else ""  # read as Python truthiness: "false" would be true
    conf = {
        "spark.master": "local[1]",
        "spark.app.name": "Databricks Shell",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.warehouse.dir": str(directory / "work" / "spark-warehouse"),
        "spark.databricks.clusterUsageTags.clusterId": cluster.cluster_id,
        "spark.databricks.clusterUsageTags.clusterName": cluster.cluster_name,
        "spark.databricks.clusterUsageTags.sparkVersion": cluster.spark_version,
        "spark.databricks.clusterUsageTags.clusterLogDeliveryEnabled": delivery,
        **({"spark.databricks.clusterUsageTags.clusterLogDestination": cluster.log_destination} if delivery else {}),
        **cluster.spark_conf,
    }
    return "".join(f"{key} {value}\n" for key, value in conf.items())


def _read_outcome(path: Path) -> JsonObject:
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return outcome if isinstance(outcome, dict) else {}


def _tail(path: Path, limit: int) -> tuple[str, bool]:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace"), size > limit
    except OSError:
        return "", False


def _stop_group(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the driver's process group; SIGKILL if it is still there after the grace period."""
    _kill_group(process, signal.SIGTERM)
    try:
        process.wait(KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _kill_group(process, signal.SIGKILL)


def _kill_group(process: "subprocess.Popen[bytes]", sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
