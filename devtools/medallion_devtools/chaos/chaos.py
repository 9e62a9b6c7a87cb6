"""`medallion chaos`: every trial at a chosen size, summed into the figures, printed and written as JSON."""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medallion_devtools.chaos.lake_state import LakeComparison
from medallion_devtools.chaos.trials import (
    KillTrial,
    Log,
    RedeliveryTrial,
    Reference,
    WritersTrial,
    kill_trial,
    poison_isolated,
    prepare_reference,
    redelivery_trial,
    writers_trial,
)

__all__ = ["ChaosConfig", "ChaosResult", "Figures", "format_figures", "run_chaos", "write_json"]


@dataclass(frozen=True)
class ChaosConfig:
    """What to run: the corpus size and seed, how many kill trials, where (everything stays under `work_dir`)."""

    work_dir: Path
    orders: int = 5000
    trials: int = 5
    seed: int = 7
    poison: int = 0
    rerun_timeout: float | None = None
    redelivery: bool = True
    writers: bool = True


@dataclass
class Figures:
    """The reliability figures of one chaos run (summed over every trial)."""

    orders: int = 0
    records: int = 0
    trials: int = 0
    kills: int = 0
    corrupt_tables: int = 0
    lost_rows: int = 0
    duplicated_rows: int = 0
    unexpected_rows: int = 0
    differing_tables: int = 0
    hung_reruns: int = 0
    failed_reruns: int = 0
    redelivery_ok: bool | None = None
    writers_ok: bool | None = None
    instance_crashes: int = 0
    poison_injected: int = 0
    poison_isolated: int = 0
    notes: list[str] = field(default_factory=list)
    reference_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """A corrupt table, a lost or duplicated row, a hung rerun, or a reference run that failed."""
        return bool(self.corrupt_tables or self.lost_rows or self.duplicated_rows or self.hung_reruns) or any(
            n.startswith("reference run failed") for n in self.notes
        )

    def add(self, comparison: LakeComparison) -> None:
        """Counts one lake's comparison with the reference."""
        self.corrupt_tables += len(comparison.corrupt)
        self.lost_rows += comparison.lost_rows
        self.duplicated_rows += comparison.duplicated_rows
        self.unexpected_rows += comparison.unexpected_rows
        self.differing_tables += len(comparison.differing)


@dataclass
class ChaosResult:
    """The figures and every trial behind them."""

    config: ChaosConfig
    figures: Figures
    kill_trials: list[KillTrial] = field(default_factory=list)
    redelivery: RedeliveryTrial | None = None
    writers: list[WritersTrial] = field(default_factory=list)


def _reference_figures(reference: Reference, figures: Figures) -> None:
    figures.records = sum(reference.records.values())
    figures.reference_seconds = round(reference.outcome.seconds, 2)
    figures.poison_injected = len(reference.poison)
    isolated = poison_isolated(reference)
    figures.poison_isolated = isolated or 0
    if isolated is None:
        figures.notes.append(
            "poison objects isolated: 0, the lake has no rejected-objects table (raw/<dataset>_rejected)"
        )
    corrupt = [name for name, state in reference.tables.items() if state.error]
    if not reference.outcome.ok or corrupt:
        figures.notes.append(
            f"reference run failed: rc {reference.outcome.returncode}, corrupt {corrupt}: {reference.outcome.error}"
        )


def _count_rerun(figures: Figures, hung: bool, ok: bool) -> None:
    figures.hung_reruns += int(hung)
    figures.failed_reruns += int(not ok and not hung)


def run_chaos(config: ChaosConfig, *, log: Log) -> ChaosResult:
    """Reference, kill trials, re-delivery and two writers (fresh and existing), then the figures."""
    started = time.monotonic()
    figures = Figures(orders=config.orders)
    result = ChaosResult(config, figures)
    reference = prepare_reference(
        config.work_dir,
        orders=config.orders,
        seed=config.seed,
        poison=config.poison,
        rerun_timeout=config.rerun_timeout,
        log=log,
    )
    _reference_figures(reference, figures)
    if not reference.ok:
        figures.wall_seconds = round(time.monotonic() - started, 1)
        return result
    for n in range(config.trials):
        trial = kill_trial(reference, n, seed=config.seed, log=log)
        result.kill_trials.append(trial)
        figures.trials += 1
        figures.kills += int(trial.killed)
        _count_rerun(figures, trial.rerun.hung, trial.rerun.ok)
        figures.add(trial.comparison)
    if config.redelivery:
        result.redelivery = redelivery_trial(reference, log=log)
        _count_rerun(figures, result.redelivery.rerun.hung, result.redelivery.rerun.ok)
        figures.add(result.redelivery.comparison)
        figures.redelivery_ok = result.redelivery.ok
        if all(c is None for c in result.redelivery.redeliveries_counted.values()):
            figures.notes.append("re-delivery: the reconciliation records no re-delivery count; trusted checked only")
    if config.writers:
        for existing in (False, True):
            trial_w = writers_trial(reference, existing=existing, log=log)
            result.writers.append(trial_w)
            figures.hung_reruns += sum(1 for o in trial_w.outcomes if o.hung)
            figures.instance_crashes += trial_w.instance_crashes
            figures.add(trial_w.comparison)
        figures.writers_ok = all(w.ok for w in result.writers)
    figures.wall_seconds = round(time.monotonic() - started, 1)
    return result


_ROWS = (
    ("orders generated", "orders"),
    ("landing records", "records"),
    ("kill trials", "trials"),
    ("kills (run still going when killed)", "kills"),
    ("corrupt tables", "corrupt_tables"),
    ("lost rows", "lost_rows"),
    ("duplicated rows", "duplicated_rows"),
    ("rows not in the reference", "unexpected_rows"),
    ("tables differing from the reference", "differing_tables"),
    ("hung reruns and writers (killed at the timeout)", "hung_reruns"),
    ("failed reruns (exit code not 0)", "failed_reruns"),
    ("re-delivery left trusted unchanged", "redelivery_ok"),
    ("two writers: no crash, no double write", "writers_ok"),
    ("writers dead on / instances broken by creation", "instance_crashes"),
    ("poison objects injected", "poison_injected"),
    ("poison objects isolated", "poison_isolated"),
    ("reference run (s)", "reference_seconds"),
    ("wall time (s)", "wall_seconds"),
)


def format_figures(figures: Figures) -> str:
    """The figures as a two-column table, then the notes and the verdict."""
    values = asdict(figures)
    lines = [f"{'figure':50} value", *(f"{label:50} {_show(values[key])}" for label, key in _ROWS)]
    lines += [f"note: {note}" for note in figures.notes]
    lines.append("FAILED: " + _why(figures) if figures.failed else "passed")
    return "\n".join(lines)


def _show(value: object) -> str:
    return "-" if value is None else ("yes" if value is True else "NO" if value is False else str(value))


def _why(figures: Figures) -> str:
    named = [
        ("corrupt tables", figures.corrupt_tables),
        ("lost rows", figures.lost_rows),
        ("duplicated rows", figures.duplicated_rows),
        ("hung reruns", figures.hung_reruns),
    ]
    reasons = [f"{value} {name}" for name, value in named if value]
    reasons += [n for n in figures.notes if n.startswith("reference run failed")]
    return ", ".join(reasons)


def write_json(result: ChaosResult, path: Path) -> None:
    """The configuration, the figures and each trial as JSON at `path`."""
    data = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(result.config).items()},
        "figures": asdict(result.figures),
        "failed": result.figures.failed,
        "kill_trials": [_trial_json(t) for t in result.kill_trials],
        "redelivery": _redelivery_json(result.redelivery),
        "writers": [
            {
                "case": w.case,
                "ok": w.ok,
                "writers": [_outcome_json(o) for o in w.outcomes],
                "instance_crashes": w.instance_crashes,
                "unclear_failures": w.unclear_failures,
                "differences": w.comparison.summary(),
                "stale_pool_slots": w.stale_slots,
            }
            for w in result.writers
        ],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _outcome_json(outcome) -> dict[str, object]:
    return {
        "returncode": outcome.returncode,
        "seconds": round(outcome.seconds, 2),
        "hung": outcome.hung,
        "last_line": outcome.last_line,
        "error": outcome.error if not outcome.ok else "",
    }


def _trial_json(trial: KillTrial) -> dict[str, object]:
    return {
        "trial": trial.trial,
        "kill_point": trial.point,
        "killed": trial.killed,
        "killed_after_seconds": round(trial.killed_after, 2),
        "rerun": _outcome_json(trial.rerun),
        "corrupt_tables": trial.comparison.corrupt,
        "lost_rows": trial.comparison.lost_rows,
        "duplicated_rows": trial.comparison.duplicated_rows,
        "differences": trial.comparison.summary(),
        "stale_pool_slots": trial.stale_slots,
    }


def _redelivery_json(trial: RedeliveryTrial | None) -> dict[str, object] | None:
    if trial is None:
        return None
    return {
        "objects": trial.objects,
        "ok": trial.ok,
        "rerun": _outcome_json(trial.rerun),
        "raw_growth": {d: {"redelivered": e, "raw_gained": g} for d, (e, g) in trial.raw_growth.items()},
        "redeliveries_counted": trial.redeliveries_counted,
        "redeliveries_expected": trial.redeliveries_expected,
        "differences": trial.comparison.summary(),
    }
