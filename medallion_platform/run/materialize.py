"""Materialize the whole medallion in-process, in dependency order, with real Dagster runs.

Used by `medallion demo` / `medallion materialize` and the end-to-end tests. Before anything runs,
runs whose process died (a killed `materialize`) are failed and their pool slots freed
(`run/recovery.py`), so a rerun never waits on a dead run. Date-partitioned assets run as one
single-run backfill over the partition range each step needs:
1. raw + trusted of the batch sources; 2. raw + trusted of each stream source for the landing dates found;
3. the date-partitioned refined tables for their pending event dates (`zones/refined/coverage.py`: what
   their fact input holds that they were not built from, every date for a missing table), whatever the
   earlier steps of this run touched; 4. the unpartitioned refined tables.
A refined table whose trusted inputs do not exist yet is not run; the report says what it waits for.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.execution.execution_result import ExecutionResult  # the base of both results: no public name

from medallion_platform.contracts import load_contracts
from medallion_platform.definitions import medallion_asset_job, platform_resources
from medallion_platform.defs.keys import history_key, is_partitioned, refined_key, source_keys, touched_dates
from medallion_platform.ingestion.landing import list_landing_files
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.lock import lake_lock
from medallion_platform.run.recovery import release_dead_runs, run_process_alive
from medallion_platform.settings import Settings
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.coverage import inputs_missing, pending_dates

__all__ = ["MaterializeReport", "materialize_all"]


@dataclass
class MaterializeReport:
    """The runs made and whether each succeeded, the event dates trusted touched, and notes for people
    (dead runs released, a pool another run holds, refined tables waiting for their inputs)."""

    runs: list[tuple[str, bool]] = field(default_factory=list)
    touched_dates: list[str] = field(default_factory=list)
    refined_dates: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(ok for _, ok in self.runs)


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": min(keys), "dagster/asset_partition_range_end": max(keys)}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class _Runner:
    """Runs selections of the code location's assets in this process and records them in the report."""

    settings: Settings
    instance: dg.DagsterInstance
    defs: dg.Definitions
    log_level: str
    notify: Callable[[str], None]
    report: MaterializeReport = field(default_factory=MaterializeReport)

    def note(self, line: str) -> None:
        self.report.notes.append(line)
        self.notify(line)

    @property
    def assets(self) -> list:
        return list(self.defs.assets or [])

    def run(self, label: str, selection: dg.AssetSelection, tags: dict[str, str] | None = None) -> None:
        self._say_who_holds_the_pools(selection)
        run_config: dict = {"loggers": {"console": {"config": {"log_level": self.log_level}}}}
        if self.settings.env == "databricks":
            # The step launcher ships each step by reference: the job must be reconstructable, and its
            # resources resolve from the environment (on the orchestrator and on the cluster alike).
            with dg.execute_job(
                dg.reconstructable(medallion_asset_job),
                instance=self.instance,
                asset_selection=list(selection.resolve(self.assets)),
                tags=tags,
                raise_on_error=False,
                run_config=run_config,  # the code location's executor runs every step in this process
            ) as job_result:
                self._record(label, job_result)
            return
        result = dg.materialize(
            self.assets,
            selection=selection,
            resources=platform_resources(self.settings),
            instance=self.instance,
            tags=tags,
            raise_on_error=False,
            run_config=run_config,
        )
        self._record(label, result)

    def _record(self, label: str, result: ExecutionResult) -> None:
        self.report.runs.append((label, result.success))
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization  # type: ignore[union-attr]
            if mat.asset_key.path[0] == "trusted":
                self.report.touched_dates += touched_dates(mat.metadata)

    def _say_who_holds_the_pools(self, selection: dg.AssetSelection) -> None:
        """One line per pool of `selection` a live run holds: this run's steps wait for it."""
        storage = self.instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            return
        keys = selection.resolve(self.assets)
        pools = {p for a in self.assets if set(a.keys) & keys for p in (a.node_def.pools or ())}
        for pool in sorted(pools):
            holders = {slot.run_id for slot in storage.get_concurrency_info(pool).claimed_slots}
            for run_id in sorted(h for h in holders if run_process_alive(self.instance, h)):
                self.note(f"waiting for pool {pool}: run {run_id} is writing to that source (one writer at a time)")


def materialize_all(
    settings: Settings,
    *,
    instance: dg.DagsterInstance,
    defs: dg.Definitions | None = None,
    log_level: str = "WARNING",
    notify: Callable[[str], None] | None = None,
) -> MaterializeReport:
    """Runs every asset of `defs` (default: the code location) over what has landed; `notify` (default:
    stderr) gets one line per dead run released, pool held by another run, or refined table waiting."""
    if defs is None:
        from medallion_platform.definitions import defs
    if settings.env == "databricks":
        # The reconstructed job resolves its resources from the environment, here and on the cluster.
        os.environ.update({"MEDALLION_ENV": "databricks", "MEDALLION_DATA_DIR": str(settings.data_dir)})
    runner = _Runner(settings, instance, defs, log_level, notify or _stderr)  # type: ignore[arg-type]  # set above
    with lake_lock(settings.data_dir, runner.note):  # one `materialize` (or `erase`, replay) per lake
        return _materialize(runner, settings, instance)


def _materialize(runner: "_Runner", settings: Settings, instance: dg.DagsterInstance) -> MaterializeReport:
    for line in release_dead_runs(instance):
        runner.note(line)
    contracts = load_contracts()
    batch = [c.name for c in contracts.values() if not is_partitioned(c)]
    runner.run("batch sources", _raw_and_trusted(batch))
    for name in (c.name for c in contracts.values() if is_partitioned(c)):
        files, _ = list_landing_files(settings, contracts[name])
        dates = sorted({f.landing_date for f in files})
        if dates:
            runner.run(f"{name} raw+trusted", _raw_and_trusted([name]), _range_tags(dates))
    runner.report.touched_dates = sorted(set(runner.report.touched_dates))
    lake = Lakehouse(settings)
    histories = [history_key(c.name) for c in contracts.values() if c.history is not None and lake.raw(c.name).exists()]
    if histories:
        runner.run("history", dg.AssetSelection.assets(*histories))
    _refined(runner, lake)
    return runner.report


def _refined(runner: _Runner, lake: Lakehouse) -> None:
    """Steps 3 and 4: dated refined tables over their pending dates (grouped by date set), then whole tables."""
    graph = runner.defs.resolve_asset_graph()
    by_dates: dict[tuple[str, ...], list[dg.AssetKey]] = {}
    whole: list[dg.AssetKey] = []
    for table in REFINED_TABLES:
        key = refined_key(table.name)
        missing = inputs_missing(lake, table)
        if missing:
            runner.note(f"refined/{table.name} not built: it waits for {', '.join(missing)} (nothing landed for it)")
            continue
        if not table.partitioned:
            whole.append(key)
            continue
        partitions = graph.get(key).partitions_def
        pending = pending_dates(lake, table)
        dates = [d for d in pending if partitions is None or partitions.has_partition_key(d)]
        if len(dates) < len(pending):
            outside = sorted(set(pending) - set(dates))
            runner.note(f"refined/{table.name}: event dates {outside[0]}..{outside[-1]} are outside its partitions")
        runner.report.refined_dates[table.name] = dates
        if dates:
            by_dates.setdefault(tuple(dates), []).append(key)
    for group, keys in by_dates.items():
        label = "refined by date" if len(by_dates) == 1 else f"refined by date ({', '.join(k.path[1] for k in keys)})"
        runner.run(label, dg.AssetSelection.assets(*keys), _range_tags(list(group)))
    if whole:
        runner.run("refined whole tables", dg.AssetSelection.assets(*whole))


def _raw_and_trusted(datasets: list[str]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*(key for name in datasets for key in source_keys(name)))
