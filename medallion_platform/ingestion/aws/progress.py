"""Progress lines and throughput summaries on stderr, without a progress-bar dependency."""

import sys
import time
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Progress", "Throughput"]


@dataclass(frozen=True)
class Throughput:
    """Records and bytes moved in a time span."""

    records: int
    bytes: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float(self.records)

    @property
    def mib_per_second(self) -> float:
        return self.bytes / 2**20 / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.records:,} records, {self.bytes / 2**20:.2f} MiB in {self.seconds:.2f} s "
            f"({self.records_per_second:,.0f} records/s, {self.mib_per_second:.2f} MiB/s)"
        )


class Progress:
    """Prints `label: done/total (pct) rate` at most every `every` seconds, and always at the end."""

    def __init__(self, label: str, total: int | None = None, *, out: TextIO | None = None, every: float = 1.0):
        self.label, self.total, self.out, self.every = label, total, out, every
        self.records = self.bytes = 0
        self.started = self._last = time.monotonic()

    def advance(self, records: int, nbytes: int) -> None:
        self.records += records
        self.bytes += nbytes
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._print(self._bar())

    def _bar(self) -> str:
        rate = self.records / max(time.monotonic() - self.started, 1e-9)
        if self.total:
            share = min(self.records / self.total, 1.0)
            bar = "#" * int(share * 30)
            return f"{self.label}: [{bar:.<30}] {self.records:,}/{self.total:,} ({share:.0%}) {rate:,.0f}/s"
        return f"{self.label}: {self.records:,} records {rate:,.0f}/s"

    def finish(self) -> Throughput:
        """Prints the final bar and returns the throughput."""
        result = Throughput(self.records, self.bytes, time.monotonic() - self.started)
        self._print(self._bar())
        return result

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stderr, flush=True)
