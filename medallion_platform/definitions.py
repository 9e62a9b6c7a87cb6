"""The Dagster code location: assets, checks, sensors and schedules, all built from contracts and refined modules.

Thin on purpose: no configuration is read here (resources resolve `MEDALLION_*` when they are built),
and loading touches neither the network, Spark nor the data.
"""

import dagster as dg

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.assets.source import build_refined_asset, build_source_asset
from medallion_platform.defs.landing.sensors import build_landing_sensor
from medallion_platform.defs.maintenance import maintenance_job, maintenance_schedule
from medallion_platform.defs.notebooks import build_notebook_asset
from medallion_platform.defs.resources import platform_resources
from medallion_platform.defs.schedules import batch_sources_schedule
from medallion_platform.defs.sensors import late_event_sensor
from medallion_platform.run.materialize import ALL_ASSETS_JOB
from medallion_platform.zones.refined import REFINED_TABLES

automation_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Declarative automation (trusted and customer_lifetime follow their inputs), on by default.",
)
"""Replaces the sensor Dagster would add stopped: the eager conditions fire in every instance, as the README says."""

NOTEBOOK_TABLES = ("daily_revenue",)
"""Refined tables also built by the Databricks notebook, as `refined/<table>_notebook` (databricks only)."""


def build_definitions() -> dg.Definitions:
    """Every asset, check, sensor and schedule of the platform."""
    contracts = load_contracts()
    assets = [build_source_asset(c) for c in contracts.values()]
    assets += [build_refined_asset(t) for t in REFINED_TABLES]
    assets += [build_notebook_asset(t) for t in REFINED_TABLES if t.name in NOTEBOOK_TABLES]
    return dg.Definitions(
        assets=assets,
        sensors=[build_landing_sensor(contracts), late_event_sensor, automation_sensor],
        schedules=[batch_sources_schedule(contracts), maintenance_schedule],
        jobs=[maintenance_job, dg.define_asset_job(ALL_ASSETS_JOB, selection=dg.AssetSelection.all())],
        resources=platform_resources(),
    )


defs = build_definitions()
