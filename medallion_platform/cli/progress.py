"""Progress of the `medallion` command's long phases: a `rich` bar on a terminal, plain lines otherwise.

Everything goes to stderr, so stdout stays the command's result (tables, summaries, `export` lines).
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["Phases", "phases"]


class Phases:
    """The phases of one command: `step(name)` around each; a bar on a TTY, one line per phase otherwise."""

    def __init__(self, title: str, total: int, *, stream: IO[str] | None = None) -> None:
        self.title = title
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._progress: Any = None
        self._task: Any = None
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream, highlight=False),
                transient=True,
            )

    def __enter__(self) -> "Phases":
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One phase: shown while it runs (a TTY), then `<title>: <name> N s` once it succeeded. A phase that
        fails prints nothing here, so the command's one-line error stays the only line."""
        started = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.title}: {name}")
        yield
        self.done += 1
        line = f"{self.title}: {name} {time.perf_counter() - started:.1f} s"
        if self._progress is not None:
            self._progress.update(self._task, advance=1)
            self._progress.console.print(line)
        else:
            print(line, file=self.stream, flush=True)


def phases(title: str, total: int, *, stream: IO[str] | None = None) -> Phases:
    """`with phases("demo", 3) as p: with p.step("generate"): ...`."""
    return Phases(title, total, stream=stream)
