"""The reliability trials: kill -9 of `materialize` and a rerun, re-delivery, two writers at once.

Each trial works on its own copy of one landing corpus and is judged against a reference: an
uninterrupted `materialize` of another copy of the same objects. All `materialize` runs are child
processes (`processes.py`) with bounded waits.
"""

import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medallion_devtools.chaos.instance_state import UNREADABLE, stale_pool_slots
from medallion_devtools.chaos.lake_state import (
    LakeComparison,
    TableState,
    compare_lakes,
    read_lake,
    rejected_objects,
)
from medallion_devtools.chaos.landing import add_poison, copy_landing, generate_landing, redeliver
from medallion_devtools.chaos.processes import Outcome, Writer, run_materialize
from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.zones.quality import QUALITY_SUFFIX

__all__ = [
    "KILL_POINTS",
    "KillPoint",
    "KillTrial",
    "RedeliveryTrial",
    "Reference",
    "WritersTrial",
    "kill_trial",
    "poison_isolated",
    "prepare_reference",
    "redelivery_trial",
    "writers_trial",
]

Log = Callable[[str], None]

_COMMIT = re.compile(r"^\d{20}\.json$")
_INSTANCE_CRASH = ("IntegrityError", "alembic_version", "database is locked")


def _quiet(line: str) -> None:
    """The default log: nothing."""


@dataclass(frozen=True)
class KillPoint:
    """When a trial kills the run: right after a table's next Delta commit (`commit_of`), after the lake's
    n-th commit of the run (`random_commit`: n drawn from the trial's seeded random among the reference run's
    commits, so the kill lands mid-run however fast this run is), or after a share of the reference run's wall
    time (`fraction`)."""

    label: str
    commit_of: str | None = None
    fraction: float | None = None
    random_commit: bool = False


KILL_POINTS = (
    KillPoint("after the trusted/order_events commit", commit_of="trusted/order_events"),
    KillPoint("after the raw/order_events commit", commit_of="raw/order_events"),
    KillPoint("after a random commit", random_commit=True),
    KillPoint("after the refined/daily_revenue commit", commit_of="refined/daily_revenue"),
    KillPoint("during start-up", fraction=0.1),
)
"""Trial n kills at point n mod 5: between trusted and refined first (where a refined table was lost),
then mid-step (where a dead run kept its pool slot), then anywhere."""


@dataclass
class Reference:
    """The landing corpus, the uninterrupted run over a copy of it, and that run's tables."""

    work_dir: Path
    source: Path
    data_dir: Path
    outcome: Outcome
    tables: dict[str, TableState]
    contracts: dict[str, Contract]
    records: dict[str, int]
    poison: list[str] = field(default_factory=list)
    rerun_timeout: float = 60.0

    @property
    def ok(self) -> bool:
        """The reference run exited 0 and every table opened."""
        return self.outcome.ok and all(t.error is None for t in self.tables.values())

    def compare(self, data_dir: Path, only: Callable[[str], bool] = lambda name: True) -> LakeComparison:
        """The lake at `data_dir` against this reference."""
        return compare_lakes(self.tables, read_lake(data_dir), self.contracts, only=only)

    def fresh_copy(self, name: str) -> Path:
        """A new data directory `<work dir>/<name>` holding only the corpus' landing objects."""
        target = self.work_dir / name
        shutil.rmtree(target, ignore_errors=True)
        copy_landing(self.source, target)
        return target


def prepare_reference(
    work_dir: Path,
    *,
    orders: int,
    seed: int,
    poison: int = 0,
    rerun_timeout: float | None = None,
    log: Log = _quiet,
) -> Reference:
    """Generates the corpus (plus `poison` poison objects), runs the reference and reads its tables.

    Reruns and writers get `rerun_timeout` seconds (default: 3 x the reference run, at least 45 s)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "landing-source"
    shutil.rmtree(source, ignore_errors=True)
    records = generate_landing(source, orders=orders, seed=seed)
    poison_keys = add_poison(source, poison) if poison else []
    data_dir = work_dir / "reference"
    shutil.rmtree(data_dir, ignore_errors=True)
    copy_landing(source, data_dir)
    log(f"reference run: {sum(records.values())} records, {len(poison_keys)} poison objects")
    outcome = run_materialize(data_dir, work_dir / "logs", "reference", timeout=max(600.0, 20.0 * orders / 1000))
    timeout = rerun_timeout or max(45.0, 3.0 * outcome.seconds)
    log(f"reference run: rc {outcome.returncode} in {outcome.seconds:.1f} s; reruns get {timeout:.0f} s")
    return Reference(
        work_dir, source, data_dir, outcome, read_lake(data_dir), load_contracts(), records, poison_keys, timeout
    )


def _commits(table_dir: Path) -> int:
    log = table_dir / "_delta_log"
    return sum(1 for p in log.iterdir() if _COMMIT.match(p.name)) if log.is_dir() else 0


@dataclass
class KillTrial:
    """One kill -9 of `materialize` and the rerun after it."""

    trial: int
    point: str
    killed: bool
    killed_after: float
    rerun: Outcome
    comparison: LakeComparison
    stale_slots: list[str] = field(default_factory=list)
    """Pool slots claimed or waited for after the rerun ended (the killed run's, if it never released them)."""


def _lake_commits(data_dir: Path) -> int:
    """Delta commits of every table under `data_dir`."""
    return sum(_commits(log.parent) for log in data_dir.rglob("_delta_log"))


def _kill_at(writer: Writer, data_dir: Path, point: KillPoint, rng: random.Random, reference: Reference) -> bool:
    """Waits for the kill point (at most the rerun timeout), then kills the run's group if still running."""
    limit = reference.rerun_timeout
    if point.commit_of is not None:
        table = data_dir / point.commit_of
        before = _commits(table)
        writer.wait_until(lambda: _commits(table) > before, timeout=limit)
    elif point.random_commit:
        nth = rng.randint(1, max(1, _lake_commits(reference.data_dir) - 1))
        writer.wait_until(lambda: _lake_commits(data_dir) >= nth, timeout=limit)
    else:
        writer.wait_until(lambda: False, timeout=(point.fraction or 0.5) * reference.outcome.seconds)
    return writer.kill_group()


def kill_trial(reference: Reference, trial: int, *, seed: int = 7, log: Log = _quiet) -> KillTrial:
    """Trial `trial`: a fresh copy, `materialize` killed -9 at kill point `trial`, a bounded rerun, the checks."""
    point = KILL_POINTS[trial % len(KILL_POINTS)]
    data_dir = reference.fresh_copy(f"trial-{trial:02d}")
    logs = reference.work_dir / "logs"
    writer = Writer(data_dir, logs, f"trial-{trial:02d}-killed")
    killed = _kill_at(writer, data_dir, point, random.Random(seed * 1000 + trial), reference)
    killed_after = writer.elapsed()
    rerun = run_materialize(data_dir, logs, f"trial-{trial:02d}-rerun", timeout=reference.rerun_timeout)
    comparison = reference.compare(data_dir)
    stale = stale_pool_slots(data_dir)
    log(
        f"trial {trial}: {point.label}: {'killed' if killed else 'finished first'} at {killed_after:.1f} s; "
        f"rerun rc {rerun.returncode}{' HUNG' if rerun.hung else ''} in {rerun.seconds:.1f} s; "
        f"{'equal to the reference' if not comparison.differing else comparison.summary()}"
        + (f"; pool slots still claimed: {stale}" if stale else "")
    )
    return KillTrial(trial, point.label, killed, killed_after, rerun, comparison, stale)


def _is_derived_from_trusted(name: str) -> bool:
    """Trusted tables (not their quarantine, nor the quality record, which gains the re-delivery's batch) and
    refined tables: what a re-delivery must leave unchanged."""
    if name.endswith(("_quarantine", QUALITY_SUFFIX)):
        return False
    return name.startswith(("trusted/", "refined/"))


@dataclass
class RedeliveryTrial:
    """Every landed object delivered again under a new key, then a rerun."""

    objects: int
    rerun: Outcome
    comparison: LakeComparison
    raw_growth: dict[str, tuple[int, int]]
    """Per dataset: (records re-delivered, rows raw gained)."""
    redeliveries_counted: dict[str, int | None]
    """Per dataset: the re-deliveries the trusted reconciliation recorded (None: it records none)."""
    redeliveries_expected: dict[str, int]

    @property
    def ok(self) -> bool:
        """Rerun fine, trusted and refined unchanged, raw took each object again, the counts add up."""
        counted = all(c is None or c == self.redeliveries_expected[d] for d, c in self.redeliveries_counted.items())
        grown = all(expected == got for expected, got in self.raw_growth.values())
        return self.rerun.ok and not self.comparison.differing and grown and counted


def _trusted_figures(data_dir: Path, dataset: str) -> dict[str, object]:
    """The metadata of `trusted/<dataset>`'s latest materialization in the data directory's instance."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(data_dir / ".dagster")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["trusted", dataset]))
        if event is None or event.asset_materialization is None:
            return {}
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _redeliveries(figures: dict[str, object]) -> int | None:
    for key, value in figures.items():
        if "redeliver" in key.replace("_", "").replace("-", "") and isinstance(value, int):
            return value
    return None


def redelivery_trial(reference: Reference, *, log: Log = _quiet) -> RedeliveryTrial:
    """A copy of the reference lake (its instance too), every object re-delivered, a rerun, the checks."""
    data_dir = reference.work_dir / "redelivery"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(reference.data_dir, data_dir, symlinks=True)
    objects = redeliver(data_dir)
    rerun = run_materialize(data_dir, reference.work_dir / "logs", "redelivery", timeout=reference.rerun_timeout)
    comparison = reference.compare(data_dir, only=_is_derived_from_trusted)
    after = read_lake(data_dir)
    growth, counted, expected = {}, {}, {}
    for dataset in reference.contracts:
        before_rows = _rows(reference.tables, f"raw/{dataset}")
        growth[dataset] = (before_rows, _rows(after, f"raw/{dataset}") - before_rows)
        counted[dataset] = _redeliveries(_trusted_figures(data_dir, dataset))
        expected[dataset] = _rows(reference.tables, f"trusted/{dataset}")
    result = RedeliveryTrial(objects, rerun, comparison, growth, counted, expected)
    log(
        f"re-delivery of {objects} objects: rerun rc {rerun.returncode} in {rerun.seconds:.1f} s; "
        f"{'trusted and refined unchanged' if not comparison.differing else comparison.summary()}; "
        f"raw growth {growth}; re-deliveries counted {counted} (expected {expected})"
    )
    return result


def _rows(tables: dict[str, TableState], name: str) -> int:
    state = tables.get(name)
    return state.rows.num_rows if state is not None and state.rows is not None else 0


@dataclass
class WritersTrial:
    """Two `materialize` started together on one data directory."""

    case: str
    outcomes: list[Outcome]
    comparison: LakeComparison
    stale_slots: list[str] = field(default_factory=list)
    """Pool slots claimed or waited for after both writers ended."""

    @property
    def instance_crashes(self) -> int:
        """Writers that died creating or opening the Dagster instance, plus one if they left it unreadable."""
        died = sum(1 for o in self.outcomes if any(s in "\n".join(o.stderr_tail or []) for s in _INSTANCE_CRASH))
        return died + int(any(s.startswith(UNREADABLE) for s in self.stale_slots))

    @property
    def unclear_failures(self) -> int:
        """Writers that failed with a traceback or without a message (a clean failure is one line)."""
        return sum(1 for o in self.outcomes if not o.ok and not o.hung and (o.traceback or not o.last_line))

    @property
    def ok(self) -> bool:
        """No crash, no hang, any failure one clear line, and the lake equal to the reference."""
        hung = any(o.hung for o in self.outcomes)
        return not (hung or self.instance_crashes or self.unclear_failures or self.comparison.differing)


def writers_trial(reference: Reference, *, existing: bool, log: Log = _quiet) -> WritersTrial:
    """Two writers at once on a new data directory, or on one whose Dagster instance already exists
    (the reference run's history and pool configuration, with an empty lake and every object new)."""
    case = "existing instance" if existing else "fresh data directory"
    data_dir = reference.fresh_copy("writers-existing" if existing else "writers-fresh")
    if existing:
        shutil.copytree(reference.data_dir / ".dagster", data_dir / ".dagster")
    label = "writers-existing" if existing else "writers-fresh"
    logs = reference.work_dir / "logs"
    writers = [Writer(data_dir, logs, f"{label}-{n}") for n in (1, 2)]
    outcomes = [w.finish(timeout=2 * reference.rerun_timeout) for w in writers]  # both timed from their start
    comparison = reference.compare(data_dir)
    trial = WritersTrial(case, outcomes, comparison, stale_pool_slots(data_dir))
    described = ", ".join(
        f"rc {o.returncode}{' HUNG' if o.hung else ''} in {o.seconds:.1f} s"
        + (f" ({o.error[:200]})" if not o.ok else "")
        for o in outcomes
    )
    log(
        f"two writers, {case}: {described}; "
        f"{'lake equal to the reference' if not comparison.differing else comparison.summary()}"
        + (f"; pool slots left: {trial.stale_slots}" if trial.stale_slots else "")
    )
    return trial


def poison_isolated(reference: Reference) -> int | None:
    """Objects in the reference lake's rejected-objects tables (None: the lake has no such table)."""
    return rejected_objects(reference.tables)
