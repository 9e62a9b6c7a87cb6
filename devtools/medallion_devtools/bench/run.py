"""`medallion bench`: one run, one machine, the same generated landing files, every phase in its own process.

Phases, in order: land the full batch (+ master data), the parse limit (DuckDB reads every column of
the landing files: the reference), the full pipeline on the embedded engine, the same transforms on
local Spark and on the embedded engine, a 1 % incremental batch (new events, re-deliveries, late
events), a second full-sized batch (the table doubles), another 1 % batch, and Dagster's own overhead.
The result is a JSON document (`report.py` prints it) with times, ratios and the targets.
"""

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from medallion_devtools.bench.targets import evaluate, ratios, reconciliation

__all__ = ["INCREMENTAL_RUNS", "BenchConfig", "plan", "run_benchmark", "summarise_repeats"]

MARKER = ".medallion-bench"
INCREMENTAL_RUNS = 3
"""1 % batches measured in a row, before and after doubling; the median is the reported figure."""


@dataclass(frozen=True)
class BenchConfig:
    """What to run: `events` for the full batch; the incremental batches are 1 % of it."""

    events: int = 3_000_000
    out: Path = Path("bench_results/latest.json")
    work_dir: Path | None = None
    spark: bool = True
    databricks_local: bool = False
    """Also the same transforms on a local Spark Connect cluster (Sail), the `databricks` engine's code."""
    keep: bool = False
    rss_baseline: Path | None = None
    """A previous result at a smaller size: its pipeline peak RSS is the base of the RSS-growth target."""


def _work_dir(config: BenchConfig) -> Path:
    if config.work_dir is None:
        work = Path(tempfile.mkdtemp(prefix="medallion-bench-"))
    else:
        work = config.work_dir.resolve()
        if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
            raise SystemExit(f"medallion bench: {work} is not empty and was not made by the benchmark; pick another")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    (work / MARKER).write_text("made by `medallion bench`; deleted when it ends unless --keep\n")
    return work


def _phase_environment(work: Path) -> dict[str, str]:
    """The phases' environment: temporary files (DuckDB spill, Dagster test instances) and the plan cache
    under the work directory (empty at the start: the full batch and the first 1 % batch build their plans,
    each phase's `plans` says how many it built and reused), and an absolute PYTHONPATH (phases run in the
    work directory, so relative entries would break)."""
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "MEDALLION_PLAN_CACHE": str(work / "plans")}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return env


def _run_phase(work: Path, phase: str, options: dict[str, object]) -> dict:
    """One phase in its own interpreter, in the work directory; its output goes to `phases/<phase>.log`
    (Dagster's DEBUG event lines among it) and only a failure shows its tail."""
    out = work / "phases" / f"{phase}.json"
    out.parent.mkdir(exist_ok=True)
    worker = str(options.pop("worker"))
    command = [sys.executable, "-m", "medallion_devtools.bench.worker", worker, "--work-dir", str(work)]
    command += ["--out", str(out)]
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        command += [flag] if value is True else [flag, str(value)]
    log = out.with_suffix(".log")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=work, env=_phase_environment(work), stdout=sink, stderr=subprocess.STDOUT
        )
        code = process.wait()
    shutil.rmtree(work / "tmp" / f"medallion-duckdb-{process.pid}", ignore_errors=True)  # the phase's spill
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"benchmark phase {phase} failed (exit {code}): {' '.join(command)}\n{tail}")
    return json.loads(out.read_text())


def _clean(work: Path, keep: Path) -> None:
    """Removes the work directory, or, when the result is written inside it, all of it but the result."""
    keep = keep.resolve()
    if not keep.is_relative_to(work):
        shutil.rmtree(work, ignore_errors=True)
        return
    top = keep.relative_to(work).parts[0]
    for child in work.iterdir():
        if child.name in (MARKER, top, keep.with_suffix(".txt").name):
            continue
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


def plan(events: int, spark: bool, databricks_local: bool = False) -> list[tuple[str, dict[str, object]]]:
    """The phases and their worker options, following time as a stream does.

    The full batch covers days 0-6. A 1 % batch is the next day's events (0.8 %), late events for
    the three days before (0.1 %) and re-deliveries of the newest objects (0.1 %); three such
    batches follow each other (days 7-9) and the median is reported. Doubling lands days 10-16
    (a week more of history); three more 1 % batches follow it (days 17-19).
    """
    new = max(1, round(events * 0.008))
    late = max(1, round(events * 0.001))
    redeliver = max(4, events // 1000)
    steps: list[tuple[str, dict[str, object]]] = [
        ("generate", {"worker": "land", "events": events, "first_id": 0, "tag": "full", "master": True}),
        ("parse_limit", {"worker": "parse_limit"}),
        ("pipeline", {"worker": "pipeline", "master": True}),
    ]
    if spark:
        steps.append(("spark", {"worker": "same_transforms", "engine": "spark"}))
    if databricks_local:
        steps.append(("databricks_local", {"worker": "same_transforms", "engine": "databricks-local"}))
    steps.append(("embedded_same_transforms", {"worker": "same_transforms", "engine": "embedded"}))
    next_id = events

    def incremental(name: str, land: str, day: int) -> None:
        nonlocal next_id
        for run in range(1, INCREMENTAL_RUNS + 1):
            options = {"worker": "land", "events": new, "first_id": next_id, "tag": f"{name}{run}"}
            options |= {"day": day + run - 1, "days": 1, "late": late, "redeliver": redeliver}
            steps.append((f"{land}_{run}", options))
            steps.append((f"{name}_{run}", {"worker": "pipeline"}))
            next_id += new + late

    incremental("incremental_1pct", "land_incremental", 7)
    double_day = 7 + INCREMENTAL_RUNS
    steps.append(
        ("land_double", {"worker": "land", "events": events, "first_id": next_id, "tag": "double", "day": double_day})
    )
    steps.append(("double", {"worker": "pipeline"}))
    next_id += events
    incremental("incremental_after_double", "land_incremental_after_double", double_day + 7)
    steps.append(("dagster_overhead", {"worker": "dagster_overhead"}))
    return steps


def summarise_repeats(phases: dict[str, dict]) -> None:
    """Adds `incremental_1pct` and `incremental_after_double`: the median run of each series (by wall
    time) with every run's wall time beside it. A 1 % run takes seconds, so one sample on a shared
    machine says little; the series' runs stay in `phases` under their numbered names."""
    for name in ("incremental_1pct", "incremental_after_double"):
        runs = [phases[f"{name}_{n}"] for n in range(1, INCREMENTAL_RUNS + 1) if f"{name}_{n}" in phases]
        if not runs:
            continue
        median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        phases[name] = {**median, "median_of": len(runs), "runs_wall_s": [r["wall_s"] for r in runs]}


def machine() -> dict:
    """The machine and the versions the numbers belong to."""
    info: dict[str, object] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next(
            (line.split(":", 1)[1].strip() for line in cpu.splitlines() if "model name" in line), ""
        )
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["ram_gb"] = round(int(mem[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    for package in ("duckdb", "deltalake", "pyarrow", "sqlframe", "pyspark", "dagster"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    return info


def source_state() -> dict:
    """The commit the numbers belong to, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parents[3]  # the checkout: devtools/medallion_devtools/bench/run.py
    code = ["medallion_platform", "devtools/medallion_devtools"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--short", "--", *code], cwd=root, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return {}
    diff = subprocess.run(["git", "diff", "HEAD", "--", *code], cwd=root, capture_output=True)
    return {
        "commit": head.stdout.strip(),
        "modified": [line[3:] for line in dirty.stdout.splitlines()],
        "diff_sha1": hashlib.sha1(diff.stdout).hexdigest(),  # uncommitted changes, to spot edits during a run
    }


def run_benchmark(
    config: BenchConfig,
    *,
    log: Callable[[str], None] = print,
    step: Callable[[str], AbstractContextManager[object]] | None = None,
) -> dict:
    """Runs every phase, writes the JSON to `config.out`, returns it. Each phase runs inside `step(name)`
    when given (the command's progress bar), else between two `log` lines."""
    work = _work_dir(config)
    started, source = dt.datetime.now(dt.UTC), source_state()
    phases: dict[str, dict] = {}
    try:
        for name, options in plan(config.events, config.spark, config.databricks_local):
            if step is not None:
                with step(name):
                    phases[name] = _run_phase(work, name, dict(options))
                continue
            log(f"bench: {name} ...")
            phases[name] = _run_phase(work, name, dict(options))
            log(f"bench: {name} {phases[name].get('wall_s', 0):.2f} s")
    finally:
        if not config.keep:
            _clean(work, config.out)
    baseline = json.loads(config.rss_baseline.read_text()) if config.rss_baseline else None
    result = {
        "benchmark": "medallion bench",
        "schema_version": 1,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "config": {
            "events": config.events,
            "spark": config.spark,
            "databricks_local": config.databricks_local,
            "work_dir": str(work) if config.keep else None,
            "rss_baseline": str(config.rss_baseline) if config.rss_baseline else None,
        },
        "machine": machine(),
        "source": {**source, "changed_during_run": source != source_state()},
        "phases": phases,
    }
    summarise_repeats(phases)
    found_ratios = ratios(phases)
    result["ratios"] = found_ratios
    result["reconciliation"] = reconciliation(phases)
    result["targets"] = evaluate(phases, found_ratios, baseline)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(result, indent=2, default=str))
    return result
