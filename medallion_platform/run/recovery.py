"""Runs whose process died: found by the pid Dagster records on their events, failed, and their pool slots freed.

A `kill -9` of `medallion materialize` (or of a run worker the UI launched) leaves the run STARTED in
the instance storage with its pool slot (`medallion_<dataset>`) and its claimed steps still held, so
every later writer of that source waits for ever. Dagster records on every event the pid of the
process that emitted it: the RUN_START event names the run's process. A run is dead when that process
is gone, is a zombie, or is a newer process that reused the pid (it started after the run did). The
run monitoring daemon asks `MedallionRunLauncher.check_run_worker_health` (`run/instance.py`),
and `materialize_all` calls `release_dead_runs` before it starts; both use `run_process_alive`.

Pids only mean something on the machine that ran the process: the instances the project creates keep
their storage in a local folder (SQLite), so their runs ran here.
"""

import os
from pathlib import Path

import dagster as dg

__all__ = ["release_dead_runs", "run_process_alive", "run_process_id"]

_STARTED = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
_FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
_START_SLACK_SECONDS = 2.0
"""A process that started this long after its run's RUN_START event is not the run's (pid reused)."""


def run_process_id(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that started run `run_id`, and when (the RUN_START event), if recorded."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event else None
    return None if pid is None else (pid, entry.timestamp)


def _process_started_at(pid: int) -> tuple[float, str] | None:
    """Start time (epoch seconds) and state letter of `pid` from /proc, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]


def run_process_alive(instance: dg.DagsterInstance, run_id: str) -> bool | None:
    """Whether the process that runs `run_id` still lives; None when the run recorded no process yet."""
    found = run_process_id(instance, run_id)
    if found is None:
        return None
    pid, started = found
    if pid == os.getpid():
        return True
    if Path("/proc/self/stat").exists():
        process = _process_started_at(pid)
        if process is None:
            return False
        process_start, state = process
        return state not in ("Z", "X") and process_start <= started + _START_SLACK_SECONDS
    try:  # no /proc (macOS): existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks every started run whose process is gone as failed and frees its pool slots and claimed steps;
    frees the slots that finished runs still hold (a run failed by the daemon keeps them until then).
    Returns one line per run released."""
    released: list[str] = []
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=list(_STARTED)))
    for record in records:
        run = record.dagster_run
        if run_process_alive(instance, run.run_id) is not False:
            continue
        message = f"the process of run {run.run_id} is gone (killed or lost): marked failed, its pool slots freed"
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(message)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holding = storage.get_concurrency_run_ids()
        if holding:
            finished = instance.get_run_records(
                filters=dg.RunsFilter(run_ids=list(holding), statuses=list(_FINISHED)), limit=len(holding)
            )
            for record in finished:
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
                released.append(f"run {record.dagster_run.run_id} had ended but still held pool slots: freed")
    return released
