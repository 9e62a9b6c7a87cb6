"""Wall time, CPU time and peak memory of the running benchmark phase (Linux `/proc` and `getrusage`).

Each phase runs in its own process, so its `VmHWM` is that phase's peak. CPU time counts every thread
of the process (DuckDB and delta-rs run their own), plus child processes still running (the Spark JVM).
"""

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Measured", "cpu_seconds", "descendant_pids", "measured", "peak_rss_mb", "process_peak_rss_mb"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB): its `VmHWM`, since Linux carries the parent's peak over
    an exec into `ru_maxrss` (a worker spawned by a 500 MB parent reports 500 MB there); `ru_maxrss` elsewhere."""
    return process_peak_rss_mb(os.getpid()) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_peak_rss_mb(pid: int) -> float:
    """Peak resident memory (`VmHWM`) of another live process, 0 if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendant_pids(pid: int | None = None) -> list[int]:
    """Live descendants of `pid` (default: this process), from `/proc`; empty where there is no `/proc`.

    Each process's threads list their children (`/proc/<pid>/task/<tid>/children`): a few reads per
    measured span, where walking every process of a busy machine took milliseconds, inside the spans
    of the phases measured (a 1 % batch measures ten of them)."""
    root = pid or os.getpid()
    if not Path(f"/proc/{root}/task/{root}/children").exists():  # a kernel without the file: every process read
        return _descendants_by_parent(root)
    out, todo = [], [root]
    while todo:
        parent = todo.pop()
        children: list[int] = []
        for task in Path(f"/proc/{parent}/task").glob("[0-9]*"):
            try:
                children += [int(p) for p in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        out += children
        todo += children
    return out


def _descendants_by_parent(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads), its reaped children and its live descendants."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime + sum(_proc_cpu(p) for p in descendant_pids())


@dataclass
class Measured:
    """One measured span: wall and CPU seconds, and the process's peak RSS when it ended."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"wall_s": round(self.wall_s, 4), "cpu_s": round(self.cpu_s, 4), "rss_mb": round(self.rss_mb, 1)}


@contextmanager
def measured() -> Iterator[Measured]:
    """Measures the `with` block."""
    span = Measured()
    wall, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield span
    finally:
        span.wall_s = time.perf_counter() - wall
        span.cpu_s = cpu_seconds() - cpu
        span.rss_mb = peak_rss_mb()
