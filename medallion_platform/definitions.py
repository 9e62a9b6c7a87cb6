"""The Dagster code location and composition root: assets, checks, sensors, schedules and jobs, all built
from contracts and refined modules (`defs/`), bound to the resources every run needs.

Thin on purpose: no configuration is read here (resources resolve `MEDALLION_*` when they are built),
and loading touches neither the network, Spark nor the data.
"""

from typing import Any

import dagster as dg

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.assets.history import build_history_asset
from medallion_platform.defs.assets.refined import build_refined_asset
from medallion_platform.defs.assets.source import build_source_asset
from medallion_platform.defs.io_manager import DeltaIOManager
from medallion_platform.defs.landing.sensors import build_landing_sensor
from medallion_platform.defs.launcher import medallion_step_launcher
from medallion_platform.defs.maintenance import maintenance_job, maintenance_schedule
from medallion_platform.defs.notebooks import DatabricksNotebooks, build_notebook_asset
from medallion_platform.defs.replay import quarantine_replay_job
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.defs.schedules import batch_sources_schedule
from medallion_platform.defs.sensors import late_event_sensor
from medallion_platform.settings import Settings
from medallion_platform.zones.refined import REFINED_TABLES

__all__ = ["ALL_ASSETS_JOB", "build_definitions", "defs", "medallion_asset_job", "platform_resources"]

ALL_ASSETS_JOB = "medallion_all_assets"
"""Every asset as one job: runs select a subset of it."""

automation_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Declarative automation (trusted and customer_lifetime follow their inputs), on by default.",
)
"""Replaces the sensor Dagster would add stopped: the eager conditions fire in every instance, as the README says."""

NOTEBOOK_TABLES = ("daily_revenue",)
"""Refined tables also built by the Databricks notebook, as `refined/<table>_notebook` (databricks only)."""


def platform_resources(settings: Settings | None = None) -> dict[str, Any]:
    """The resources every Medallion asset needs, bound to `settings` (None: `MEDALLION_*` at run time)."""
    lakehouse = (
        LakehouseResource()
        if settings is None
        else LakehouseResource(data_dir=str(settings.data_dir), env=settings.env)
    )
    engine = EngineResource() if settings is None else EngineResource(kind=settings.engine)
    return {
        "lakehouse": lakehouse,
        "engine": engine,
        "io_manager": DeltaIOManager(lakehouse=lakehouse, engine_kind=engine.kind),
        "step_launcher": medallion_step_launcher,
        "notebooks": DatabricksNotebooks(),
    }


def build_definitions() -> dg.Definitions:
    """Every asset, check, sensor and schedule of the platform."""
    contracts = load_contracts()
    assets = [build_source_asset(c) for c in contracts.values()]
    assets += [build_history_asset(c) for c in contracts.values() if c.history is not None]
    assets += [build_refined_asset(t) for t in REFINED_TABLES]
    assets += [build_notebook_asset(t) for t in REFINED_TABLES if t.name in NOTEBOOK_TABLES]
    return dg.Definitions(
        assets=assets,
        sensors=[build_landing_sensor(contracts), late_event_sensor, automation_sensor],
        schedules=[batch_sources_schedule(contracts), maintenance_schedule],
        jobs=[
            maintenance_job,
            quarantine_replay_job,
            dg.define_asset_job(ALL_ASSETS_JOB, selection=dg.AssetSelection.all()),
        ],
        resources=platform_resources(),
        executor=dg.in_process_executor,
    )


defs = build_definitions()


def medallion_asset_job() -> dg.JobDefinition:
    """Every asset of the code location as one job (reconstructable: the Databricks step launcher needs it)."""
    return defs.resolve_job_def(ALL_ASSETS_JOB)
