"""The compatibility gate before a release (`medallion contracts check`): the working tree's contracts
against what is deployed (the lake's trusted tables, or the contracts at a git ref).

Every change is classified (`contracts/compat.py`), semantic ones counted against trusted's rows
(`zones/evolution.py::count_tightened`), and each is given the refined columns it reaches
(`zones/lineage.py::reaches`). `CheckReport.exit_code`: 0 compatible, 3 semantic changes that would
quarantine rows trusted holds (review), 4 a breaking change without a migration (refused).
"""

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medallion_platform.contracts import Contract
from medallion_platform.contracts.compat import Change, diff_contracts
from medallion_platform.contracts.loader import parse_contract
from medallion_platform.errors import ConfigError
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.evolution import count_tightened, deployed_changes
from medallion_platform.zones.lineage import reaches

__all__ = ["EXIT_REFUSED", "EXIT_SEMANTIC", "CheckReport", "check_contracts", "contracts_at_ref"]

EXIT_SEMANTIC = 3
"""`contracts check` exit code: only semantic changes, some of which would quarantine rows trusted holds."""
EXIT_REFUSED = 4
"""`contracts check` exit code: a breaking change without a migration the platform applies."""


@dataclass(frozen=True)
class CheckReport:
    """The changes of every dataset, and what they add up to."""

    against: str
    datasets: int
    changes: tuple[Change, ...]

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.refused]

    @property
    def exit_code(self) -> int:
        if self.refused:
            return EXIT_REFUSED
        if any(c.kind == "semantic" and (c.affected_rows or 0) > 0 for c in self.changes):
            return EXIT_SEMANTIC
        return 0

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        verdict = {0: "compatible", EXIT_SEMANTIC: "review", EXIT_REFUSED: "REFUSED"}[self.exit_code]
        rows = sum(c.affected_rows or 0 for c in self.changes)
        migrations = sum(1 for c in self.changes if c.migration)
        return (
            f"contracts check against {self.against}: {verdict}: {self.datasets} datasets, {len(self.changes)} changes "
            f"({self.count('additive')} additive, {self.count('breaking')} breaking ({migrations} with a migration), "
            f"{self.count('semantic')} semantic: {rows} trusted rows would be quarantined)"
        )

    def table(self) -> list[str]:
        """One line per change: dataset, kind, change, column, affected rows, reached refined columns, detail."""
        head = ("dataset", "kind", "change", "column", "rows", "reaches", "detail")
        rows = [
            (
                c.dataset,
                c.kind + (" (refused)" if c.refused else f" ({c.migration})" if c.migration else ""),
                c.what,
                c.column or "-",
                "-" if c.affected_rows is None else str(c.affected_rows),
                ",".join(c.reaches) or "-",
                c.detail + (f"; way forward: {c.way_forward}" if c.refused else ""),
            )
            for c in self.changes
        ]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
        return [
            "  ".join([*(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
            for r in [head, *rows]
        ]


def contracts_at_ref(directory: Path, ref: str) -> dict[str, Contract]:
    """The contracts in `directory` as they were at git `ref` (the folder must be in a git work tree)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise ConfigError(f"--against git:{ref}: git {' '.join(args)} failed: {detail.strip()}") from None
        return done.stdout

    prefix = git("rev-parse", "--show-prefix").strip()
    names = [n for n in git("ls-tree", "--full-tree", "--name-only", f"{ref}:{prefix}").split() if n.endswith(".yaml")]
    return {
        name.removesuffix(".yaml"): parse_contract(git("show", f"{ref}:{prefix}{name}"), Path(f"{ref}:{prefix}{name}"))
        for name in names
    }


def check_contracts(
    lake: Lakehouse,
    contracts: Mapping[str, Contract],
    *,
    deployed: Mapping[str, Contract] | None = None,
    against: str = "the lake",
) -> CheckReport:
    """Classifies every change from what is deployed (`deployed` contracts, else the lake's trusted tables)
    to `contracts`; counts the rows semantic changes would quarantine where trusted exists."""
    changes: list[Change] = []
    for name, contract in sorted(contracts.items()):
        if deployed is not None and name not in deployed:
            found = [Change(name, "additive", "dataset_added", None, f"new contract {name!r}")]
        elif deployed is not None:
            found = diff_contracts(deployed[name], contract)
        else:
            found = deployed_changes(lake, contract)
        counts: dict[str, int] | None = None
        if any(c.kind == "semantic" and c.what == "rule_tightened" for c in found) and lake.trusted(name).exists():
            from medallion_platform.engine.embedded import EmbeddedEngine

            engine = EmbeddedEngine()
            try:
                counts = count_tightened(lake, engine, contract)
            finally:
                engine.close()
        for change in found:
            source_column = _deployed_name(contract, change)
            update: dict[str, object] = {"reaches": reaches(name, source_column)}
            if counts is not None and change.what == "rule_tightened":
                update["affected_rows"] = counts.get(change.column, 0) if change.column else sum(counts.values())
            changes.append(change.with_(**update))
    for name in sorted(set(deployed or {}) - set(contracts)):
        changes.append(
            Change(
                name,
                "breaking",
                "dataset_removed",
                None,
                f"contract {name!r} removed: its tables and the refined tables reading it stay",
                "keep the contract until nothing reads its tables",
                reaches=reaches(name, None),
            )
        )
    return CheckReport(against=against, datasets=len(contracts), changes=tuple(changes))


def _deployed_name(contract: Contract, change: Change) -> str | None:
    """The deployed name of the column a change is about (a renamed column's old name): what lineage knows.
    None for a change to the whole table (every refined column reading it is reached)."""
    if change.what in ("column_added", "dataset_added") or (change.what == "metadata_changed" and not change.column):
        return "\0"  # reaches nothing: no refined column reads it yet
    if change.column is None:
        return None
    try:
        return contract.column(change.column).renamed_from or change.column
    except KeyError:
        return change.column
