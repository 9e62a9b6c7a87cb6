"""The refined assets: one per refined table, a partition overwrite of the event dates in the run or a full
rewrite. Date-partitioned tables are partitioned by event date, each event date depending on the fact's
landing dates D .. D+3 (`defs/partitions.py`). A run asked to materialize a table materializes it, also
when nothing is new (the table as it stands) and for requested dates with no events (empty partitions).
"""

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.assets.common import (
    COLUMN_LINEAGE,
    KINDS,
    column_lineage,
    column_schema,
    freshness,
    partition_keys,
)
from medallion_platform.defs.checks.refined import refined_check_results, refined_check_specs
from medallion_platform.defs.keys import refined_key, trusted_key
from medallion_platform.defs.launcher import StepLauncherParam
from medallion_platform.defs.partitions import DAILY, EVENT_DATE_MAPPING, partition_dates
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.table_state import cluster_of
from medallion_platform.zones.entries import refined_entry
from medallion_platform.zones.lineage import refined_lineage
from medallion_platform.zones.refined import RefinedTable
from medallion_platform.zones.refined.base import fact_rows_by_date, plan_refresh

__all__ = ["build_refined_asset"]

_BACKFILL_POLICY_BETA = r"Parameter `backfill_policy` of function `asset` is currently in beta"
"""Dagster 1.13 warns on every definitions load (each run and code server) about a parameter we rely on."""


def follows_its_inputs(fact: dg.AssetKey) -> dg.AutomationCondition:
    """Eager, for an unpartitioned table over a dated fact: it waits for its master data and for at least
    one date of the fact, not for every date (a day nothing landed on is never materialized by the landing
    sensor, and would hold the table back forever under `eager()`'s `any_deps_missing`)."""
    dated_fact = dg.AssetSelection.assets(fact)
    return dg.AutomationCondition.eager().replace(
        "any_deps_missing", dg.AutomationCondition.any_deps_missing().ignore(dated_fact)
    ) & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(dated_fact).with_label(
        "any date of the fact materialized"
    )


def build_refined_asset(table: RefinedTable) -> dg.AssetsDefinition:
    """`refined/<table>`: partition overwrite of the event dates in the run, or a full rewrite.

    The fact input is a dependency (event date D <- landing dates D .. D+3 for dated tables) read by
    the body for the dates being built; master data comes from the Delta IO manager as DataFrames.
    """
    key = refined_key(table.name)
    fact = trusted_key(table.fact)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BACKFILL_POLICY_BETA, category=dg.BetaWarning)

        @dg.asset(
            key=key,
            group_name="refined",
            description=table.description,
            owners=[table.owner],
            kinds=KINDS,
            deps=[dg.AssetDep(fact, partition_mapping=EVENT_DATE_MAPPING if table.partitioned else None)],
            ins={name: dg.AssetIn(key=trusted_key(name)) for name in table.master_data},
            check_specs=refined_check_specs(table, key),
            partitions_def=DAILY if table.partitioned else None,
            backfill_policy=dg.BackfillPolicy.single_run() if table.partitioned else None,
            automation_condition=None if table.partitioned else follows_its_inputs(fact),
            freshness_policy=freshness(load_contracts()[table.fact]),
            metadata={"dagster/column_schema": column_schema(table.schema, dict(table.columns))},
            code_version="1",
            pool=f"medallion_refined_{table.name}",  # one writer per refined table (sensor, UI, materialize)
        )
        def refined_asset(
            context: dg.AssetExecutionContext,
            lakehouse: LakehouseResource,
            engine: EngineResource,
            step_launcher: StepLauncherParam,  # runs the step on Databricks in the databricks environment
            **inputs: Frame,
        ) -> Iterator[Any]:
            yield from _refine(context, lakehouse.lake(), engine, table, inputs)

    return refined_asset


def _refine(
    context: dg.AssetExecutionContext,
    lake: Lakehouse,
    engine: EngineResource,
    table: RefinedTable,
    inputs: Mapping[str, Frame],
) -> Iterator[Any]:
    """The refresh of one refined table (a materialization, also when unchanged), then its checks."""
    key = refined_key(table.name)
    dates = partition_keys(context) if table.partitioned else None
    with engine.session() as session:
        plan = plan_refresh(lake, session, table, dates, inputs)
        metadata: dict[str, Any] = {
            "refresh": plan.mode,
            "dates": ",".join(dates) if dates else "all",
            COLUMN_LINEAGE: column_lineage(refined_lineage(table.name), trusted_key),
        }
        if table.partitioned:
            metadata |= _dates_outside_partitions(context, lake, table, session)
        plan.write.entry = refined_entry(table)
        # `unchanged` writes nothing: the materialization records the table as it stands
        yield dg.MaterializeResult(value=plan.write, metadata=metadata)
        # after the IO manager's write; on a cluster its Spark reads both tables (the driver reads nothing)
        wanted = context.selected_asset_check_keys
        checks = refined_check_results(lake, table, key, dates, session if cluster_of(session) else None)
    for result in checks:
        if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
            yield result


def _dates_outside_partitions(
    context: dg.AssetExecutionContext, lake: Lakehouse, table: RefinedTable, engine: Engine
) -> dict[str, Any]:
    """Event dates of the fact that no partition holds (before the first day, after tomorrow): warned
    about by date and row count, and recorded, never dropped in silence or turned into a partition key."""
    rows = fact_rows_by_date(lake, table, engine)
    outside = partition_dates(rows).outside
    if not outside:
        return {"dates_outside_partitions": dg.JsonMetadataValue({})}
    listed = ", ".join(f"{d} ({rows[d]} rows)" for d in outside)
    context.log.warning(
        f"refined/{table.name}: trusted/{table.fact} holds {sum(rows[d] for d in outside)} rows with event dates "
        f"outside the daily partitions ({DAILY.start:%Y-%m-%d} to tomorrow), which no refined partition holds: "
        f"{listed}. Set `partition.start` in the {table.fact} contract to include them."
    )
    return {"dates_outside_partitions": dg.JsonMetadataValue({d: rows[d] for d in outside})}
