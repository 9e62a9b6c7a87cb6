"""The one place the project creates and configures a Dagster instance folder (`$DAGSTER_HOME`).

`medallion materialize` / `demo` / `ui`, the README's `dagster dev` walkthroughs and the tests call
`prepare_instance(home)`. It writes the project's `dagster.yaml`:

- **pools**: every source step runs in the pool `medallion_<dataset>` with one slot, so one writer per
  source at a time, whoever starts it (a sensor, the UI, `medallion materialize`). Granularity `op`: each
  step claims its slot in every run, in-process runs included (granularity `run` would only gate the
  queue, and `materialize` does not go through the queue). The queued run coordinator (Dagster's default)
  keeps a run QUEUED while the pools of its first steps are full, so a second writer waits in the queue.
- **run monitoring**: the daemon asks `MedallionRunLauncher` whether each started run's process lives
  (`run/recovery.py`) and fails the runs whose process died; their slots are freed shortly after.
  `max_resume_run_attempts: 0`: the default launcher cannot resume a run, it reruns it from the start.
- **telemetry off**, and declarative automation through sensors (the code location turns the automation
  condition sensor on by default: `definitions.py`).

Safe when several processes call it at once on a new folder: a file lock is held while the file is
written and while the instance's SQLite storage is created (two processes creating it at once collide on
`alembic_version`). Idempotent; a `dagster.yaml` someone else wrote is left alone.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus  # no public name for these

from medallion_platform.run.recovery import run_process_alive

__all__ = ["DAGSTER_YAML", "MedallionRunLauncher", "prepare_instance"]

# The header names the modules old path on purpose: it is how files written before the move are recognised.
_HEADER = "# Written by medallion (medallion_platform/automation/instance.py); rewritten when the project changes it.\n"
_LEGACY = "concurrency:\n  pools:\n    default_limit: 1\n"
"""What `medallion demo` wrote before this module: upgraded in place."""

DAGSTER_YAML = (
    _HEADER
    + """telemetry:
  enabled: false
concurrency:
  pools:
    # one writer per source: each source step runs in the pool medallion_<dataset>
    default_limit: 1
    # steps claim slots in every run, in-process `medallion materialize` runs included
    granularity: op
    # the queue holds a run while the pools of its first steps are full
    op_granularity_run_buffer: 0
run_launcher:
  module: medallion_platform.run.instance
  class: MedallionRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  # the default launcher cannot resume a run: a run whose process died is failed, not resumed
  max_resume_run_attempts: 0
  start_timeout_seconds: 180
  free_slots_after_run_end_seconds: 15
auto_materialize:
  use_sensors: true
"""
)
"""The project's `dagster.yaml`."""


class MedallionRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher, plus a run-worker health check for run monitoring: a started run is
    healthy while the process that started it lives (the pid on its RUN_START event)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the run's process lives, FAILED once it is gone, UNKNOWN before it has started."""
        alive = run_process_alive(self._instance, run.run_id)
        if alive is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has not recorded its process yet")
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, "the run's process is gone (killed or lost)")


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    with open(home / ".medallion.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_config(home: Path) -> None:
    config = home / "dagster.yaml"
    current = config.read_text() if config.exists() else None
    if current == DAGSTER_YAML:
        return
    if current is not None and not current.startswith(_HEADER) and current.strip() != _LEGACY.strip():
        return  # someone's own configuration: theirs to keep
    staged = home / f".dagster.yaml.{os.getpid()}"
    staged.write_text(DAGSTER_YAML)
    staged.replace(config)


def prepare_instance(dagster_home: Path) -> None:
    """Creates `dagster_home` with the project's `dagster.yaml` and initialised storage (see the module)."""
    home = Path(dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home):
        _write_config(home)
        with dg.DagsterInstance.from_config(str(home)):
            pass  # creates (or migrates) the SQLite storage while the lock is held


if __name__ == "__main__":  # `python -m medallion_platform.run.instance "$DAGSTER_HOME"` (README, make ui)
    import sys

    prepare_instance(Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["DAGSTER_HOME"]))
