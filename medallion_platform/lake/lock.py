"""The lake lock: one writer that rewrites the lake at a time (`materialize`, `erase`, a quarantine replay).

The lock is the kernel's (`flock` on `<data dir>/.materialize.lock`), so a killed holder releases it with its
process; a second holder waits, saying for whom. Sensor and UI runs are held to one writer per source by the
Dagster pools instead.
"""

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["lake_lock"]

LOCK_FILE = ".materialize.lock"


@contextmanager
def lake_lock(data_dir: Path, note: Callable[[str], None], *, holder: str = "materialize") -> Iterator[None]:
    """Holds the lake lock of `data_dir` for the block; `note` gets one line when another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            other = lock.read().strip() or "another process"
            note(f"waiting for the {other} on {data_dir} (one writer per lake)")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{holder} run of pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
