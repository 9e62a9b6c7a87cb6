"""`medallion materialize` as a child process in its own process group, with bounded waits and kill -9.

Every wait here has a limit: a child that outlives it has its whole process group killed, so a hung
`materialize` is a finding the harness counts, never a hang of the harness.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outcome", "Writer", "materialize_command", "run_materialize"]

_POLL_SECONDS = 0.01
_EXCEPTION = re.compile(r"^[\w.]*(Error|Exception|Failure|Interrupt)\b")


def materialize_command(data_dir: Path) -> list[str]:
    """The `medallion materialize` command line for `data_dir`, on this interpreter (and its PYTHONPATH)."""
    return [sys.executable, "-m", "medallion_platform.cli", "--data-dir", str(data_dir), "materialize"]


def _child_env() -> dict[str, str]:
    """The environment of a child: a local lake whose Dagster home is its own data directory's `.dagster`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MEDALLION_DATA_DIR")}
    env["MEDALLION_ENV"] = "local"
    # The reference and every trial are copies of one deployment, so they hash personal data with one key (a
    # lake's own generated key would make their quarantines differ in every hashed cell).
    env.setdefault("MEDALLION_PII_HASH_KEY", "chaos-trials-are-one-deployment")
    return env


@dataclass
class Outcome:
    """How one `materialize` ended: exit code (None while hung), seconds, whether it was killed and why."""

    returncode: int | None
    seconds: float
    killed: bool = False
    hung: bool = False
    stderr_tail: list[str] | None = None
    stdout_tail: list[str] | None = None

    @property
    def ok(self) -> bool:
        """Exited 0 by itself."""
        return self.returncode == 0 and not self.killed

    @property
    def last_line(self) -> str:
        """The last line of stderr that is not a warning, an indented line (Dagster's telemetry banner, a
        traceback's frames) or blank: what a user reads as the error."""
        lines = [line for line in self.stderr_tail or [] if line.strip() and line[0] != " " and "Warning:" not in line]
        return lines[-1].strip() if lines else ""

    @property
    def error(self) -> str:
        """What went wrong, for a report: the runs `materialize` printed as FAILED and the first
        exception line of stderr (else its last line)."""
        failed = [
            line.removeprefix("run ").removesuffix("FAILED").strip()
            for line in self.stdout_tail or []
            if line.startswith("run ") and line.rstrip().endswith("FAILED")
        ]
        exceptions = [
            line.strip()
            for line in self.stderr_tail or []
            if _EXCEPTION.match(line) and "StepExecutionError" not in line
        ]
        cause = exceptions[0] if exceptions else self.last_line  # the first failure; later ones follow from it
        return (f"runs failed: {', '.join(failed)}; " if failed else "") + cause[:300]

    @property
    def traceback(self) -> bool:
        """Whether stderr holds a Python traceback."""
        return any("Traceback (most recent call last)" in line for line in self.stderr_tail or [])


class Writer:
    """One `medallion materialize` child, started in its own session (so it leads its own process group)."""

    def __init__(self, data_dir: Path, log_dir: Path, label: str) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.stdout_path = log_dir / f"{label}.stdout"
        self.stderr_path = log_dir / f"{label}.stderr"
        self.started = time.monotonic()
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                materialize_command(data_dir),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=_child_env(),
                start_new_session=True,
            )

    def elapsed(self) -> float:
        """Seconds since start."""
        return time.monotonic() - self.started

    def alive(self) -> bool:
        """Whether the child has not exited yet."""
        return self.process.poll() is None

    def kill_group(self) -> bool:
        """kill -9 of the child's whole process group; True if it was still running."""
        was_alive = self.alive()
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return was_alive

    def wait_until(self, event: Callable[[], bool], *, timeout: float) -> bool:
        """Polls until `event()` holds (True), the child exits or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if event():
                return True
            if not self.alive():
                return event()
            time.sleep(_POLL_SECONDS)
        return False

    def finish(self, *, timeout: float) -> Outcome:
        """Waits up to `timeout` seconds; a child still running then is killed with its group and called hung."""
        try:
            code: int | None = self.process.wait(timeout=max(timeout - self.elapsed(), 0.1))
            hung = False
        except subprocess.TimeoutExpired:
            self.kill_group()
            code, hung = None, True
        return Outcome(
            code,
            self.elapsed(),
            killed=hung,
            hung=hung,
            stderr_tail=self._tail(self.stderr_path),
            stdout_tail=self._tail(self.stdout_path),
        )

    @staticmethod
    def _tail(path: Path, lines: int = 200) -> list[str]:
        text = path.read_text(errors="replace") if path.exists() else ""
        return text.splitlines()[-lines:]


def run_materialize(data_dir: Path, log_dir: Path, label: str, *, timeout: float) -> Outcome:
    """One `materialize` of `data_dir` to its end, or killed (and counted hung) after `timeout` seconds."""
    return Writer(data_dir, log_dir, label).finish(timeout=timeout)
