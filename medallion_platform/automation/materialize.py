"""Materialize the whole medallion in-process, in dependency order, with real Dagster runs.

Used by `medallion demo` / `medallion materialize` and the end-to-end test. Date-partitioned assets
run as one single-run backfill over the partition range each step needs:
1. raw + trusted of the batch sources; 2. raw + trusted order_events for the landing dates found;
3. the date-partitioned refined tables for the event dates trusted reported as touched;
4. the unpartitioned refined tables.
"""

import os
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.execution.execution_result import ExecutionResult  # the base of both results: no public name

from medallion_platform.automation.partitions import partition_dates
from medallion_platform.contracts import load_contracts
from medallion_platform.ingestion.landing import list_landing_files
from medallion_platform.settings import Settings
from medallion_platform.zones.keys import is_partitioned, refined_key, source_keys, touched_dates
from medallion_platform.zones.refined import REFINED_TABLES

__all__ = ["ALL_ASSETS_JOB", "MaterializeReport", "materialize_all", "medallion_asset_job"]

ALL_ASSETS_JOB = "medallion_all_assets"
"""Every asset as one job: runs select a subset of it."""


@dataclass
class MaterializeReport:
    """The runs made and whether each succeeded."""

    runs: list[tuple[str, bool]] = field(default_factory=list)
    touched_dates: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(ok for _, ok in self.runs)


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": min(keys), "dagster/asset_partition_range_end": max(keys)}


def materialize_all(
    settings: Settings, *, instance: dg.DagsterInstance, defs: dg.Definitions | None = None, log_level: str = "WARNING"
) -> MaterializeReport:
    """Runs every asset of `defs` (default: the code location) over what has landed."""
    if defs is None:
        from medallion_platform.definitions import defs
    from medallion_platform.resources import platform_resources

    resources = platform_resources(settings)
    assets = list(defs.assets or [])  # type: ignore[union-attr]  # `defs` is set above
    contracts = load_contracts()
    report = MaterializeReport()

    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if settings.env == "databricks":
        # The reconstructed job resolves its resources from the environment, here and on the cluster.
        os.environ.update({"MEDALLION_ENV": "databricks", "MEDALLION_DATA_DIR": str(settings.data_dir)})

    def run(label: str, selection: dg.AssetSelection, tags: dict[str, str] | None = None):
        if settings.env == "databricks":
            # The step launcher ships each step by reference: the job must be reconstructable, and its
            # resources resolve from the environment (on the orchestrator and on the cluster alike).
            keys = list(selection.resolve(assets))
            with dg.execute_job(
                dg.reconstructable(medallion_asset_job),
                instance=instance,
                asset_selection=keys,
                tags=tags,
                raise_on_error=False,
                run_config={**run_config, "execution": {"config": {"in_process": {}}}},
            ) as job_result:
                report.runs.append((label, job_result.success))
                touched(job_result)
            return
        result = dg.materialize(
            assets,
            selection=selection,
            resources=resources,
            instance=instance,
            tags=tags,
            raise_on_error=False,
            run_config=run_config,
        )
        report.runs.append((label, result.success))
        touched(result)

    def touched(result: ExecutionResult) -> None:
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization  # type: ignore[union-attr]
            if mat.asset_key.path[0] == "trusted" and mat.asset_key.path[1] in streams:
                report.touched_dates += touched_dates(mat.metadata)

    batch = [c.name for c in contracts.values() if not is_partitioned(c)]
    streams = [c.name for c in contracts.values() if is_partitioned(c)]
    run("batch sources", _raw_and_trusted(batch))
    for name in streams:
        files, _ = list_landing_files(settings, contracts[name])
        dates = sorted({f.landing_date for f in files})
        if not dates:
            continue
        run(f"{name} raw+trusted", _raw_and_trusted([name]), _range_tags(dates))
    report.touched_dates = sorted(set(report.touched_dates))
    dated = [refined_key(t.name) for t in REFINED_TABLES if t.partitioned]
    refined_dates = partition_dates(report.touched_dates).keys  # the refined assets report dates outside
    if refined_dates:
        run("refined by date", dg.AssetSelection.assets(*dated), _range_tags(refined_dates))
    whole = [refined_key(t.name) for t in REFINED_TABLES if not t.partitioned]
    run("refined whole tables", dg.AssetSelection.assets(*whole))
    return report


def medallion_asset_job() -> dg.JobDefinition:
    """Every asset of the code location as one job (reconstructable: the Databricks step launcher needs it)."""
    from medallion_platform.definitions import defs

    return defs.resolve_job_def(ALL_ASSETS_JOB)


def _raw_and_trusted(datasets: list[str]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*(key for name in datasets for key in source_keys(name)))
