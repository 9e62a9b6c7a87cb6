"""Dagster assets built from the contracts (raw, trusted + quarantine) and the refined modules.

Asset keys are `[zone, name]` and groups are the zones. Trusted `order_events` and its raw table
are partitioned by landing date; date-partitioned refined tables by event date.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow as pa

from medallion_platform.automation.partitions import DAILY
from medallion_platform.catalog import TableEntry
from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import parse_duration
from medallion_platform.engine.base import Frame
from medallion_platform.io_manager import PARTITION_COLUMN, persist
from medallion_platform.lake.delta_io import WriteResult
from medallion_platform.lake.schema import quarantine_schema, raw_schema, trusted_schema
from medallion_platform.lake.writes import Append, TableWrite
from medallion_platform.resources import EngineResource, LakehouseResource
from medallion_platform.zones.checks import contract_check_results, contract_check_specs
from medallion_platform.zones.keys import TOUCHED_DATES, is_partitioned, source_keys, touched_dates_metadata
from medallion_platform.zones.raw import log_batch, nothing_new, raw_write, stage_raw
from medallion_platform.zones.refined import RefinedTable
from medallion_platform.zones.refined.base import PARTITION, plan_refresh
from medallion_platform.zones.trusted import PromoteResult, plan_promotion

__all__ = ["build_refined_asset", "build_source_asset", "source_entries"]

KINDS = {"delta", "duckdb"}

StepLauncherParam = dg.ResourceParam[object]
"""The `step_launcher` resource: Databricks' step launcher in the databricks environment, else None."""


def _column_schema(schema: pa.Schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name)) for f in schema]
    )


def _freshness(contract: Contract) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=parse_duration(contract.freshness.fail_after),
        warn_window=parse_duration(contract.freshness.warn_after),
    )


def _partition_keys(context: Any) -> list[str] | None:
    return list(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else None


def source_entries(contract: Contract, platform_principal: str) -> dict[str, TableEntry]:
    """The catalog metadata of a source's raw, trusted and quarantine tables. The platform's own principal
    owns raw (nobody else reads it); the contract's owner owns trusted and its quarantine."""
    described = {c.name: c.description for c in contract.columns if c.description}
    pii = tuple(contract.pii)
    partition = (contract.partition.column,) if contract.partition else ()
    return {
        "raw": TableEntry(
            description=f"Raw {contract.name} as it landed (every value as text). {contract.description}",
            owner=platform_principal,
            pii=pii,
            partition_by=("_landing_date",),
            column_descriptions=described,
        ),
        "trusted": TableEntry(
            description=contract.description,
            owner=contract.owner,
            pii=pii,
            partition_by=partition,
            column_descriptions=described,
        ),
        "quarantine": TableEntry(
            description=f"Rows of raw {contract.name} that failed a contract rule, with the rule and reason.",
            owner=contract.owner,
            pii=pii,
        ),
    }


def build_source_asset(contract: Contract) -> dg.AssetsDefinition:
    """`raw/<dataset>`, `trusted/<dataset>` and `trusted/<dataset>_quarantine` of one source.

    One step with three assets (subsettable): run together, the new landing files are parsed once,
    committed to raw and promoted to trusted from the batch in hand; run alone, raw ingests and
    trusted promotes whatever raw holds that it has not taken.
    """
    raw_key, key, quarantine_key = source_keys(contract.name)
    partitioned = is_partitioned(contract)
    descriptions = {c.name: c.description for c in contract.columns}
    tags = {"medallion/pii": "true"} if contract.pii else {}
    freshness = _freshness(contract)

    specs = [
        dg.AssetSpec(
            raw_key,
            group_name="raw",
            description=f"Raw {contract.name} as it landed under {contract.source.landing_prefix}. "
            f"{contract.description}",
            owners=[contract.owner],
            kinds=KINDS,
            freshness_policy=freshness,
            metadata={"dagster/column_schema": _column_schema(raw_schema(contract), descriptions)},
            tags={**tags, "medallion/source_kind": contract.source.kind},
            skippable=True,
        ),
        dg.AssetSpec(
            key,
            deps=[raw_key],
            group_name="trusted",
            description=f"{contract.description} Typed, validated and deduplicated per its contract.",
            owners=[contract.owner],
            kinds=KINDS,
            freshness_policy=freshness,
            automation_condition=dg.AutomationCondition.eager(),
            metadata={
                "dagster/column_schema": _column_schema(trusted_schema(contract), descriptions),
                "primary_key": ",".join(contract.primary_key),
                "pii_columns": ",".join(contract.pii) or "none",
            },
            tags=tags,
            skippable=True,
        ),
        dg.AssetSpec(
            quarantine_key,
            deps=[raw_key],
            group_name="trusted",
            description=f"Rows of raw {contract.name} that failed a contract rule, with the rule and reason.",
            owners=[contract.owner],
            kinds=KINDS,
            automation_condition=dg.AutomationCondition.eager(),
            metadata={"dagster/column_schema": _column_schema(quarantine_schema(contract))},
            tags=tags,
            skippable=True,
        ),
    ]

    @dg.multi_asset(
        # skippable outputs of type TableWrite, persisted by the Delta IO manager
        outs={
            spec.key.to_python_identifier(): dg.AssetOut(spec=spec, dagster_type=TableWrite, is_required=False)
            for spec in specs
        },
        check_specs=contract_check_specs(contract, key),
        partitions_def=DAILY if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        can_subset=True,
        name=f"source_{contract.name}",
        pool=f"medallion_{contract.name}",
    )
    def source_asset(
        context: dg.AssetExecutionContext,
        lakehouse: LakehouseResource,
        engine: EngineResource,
        step_launcher: StepLauncherParam,  # runs the step on Databricks in the databricks environment
    ):
        from medallion_platform.engine.embedded import shared_connection  # raw batches parse in DuckDB

        lake = lakehouse.lake()
        selected = context.selected_asset_keys
        want_raw, want_trusted = raw_key in selected, bool({key, quarantine_key} & selected)
        dates = _partition_keys(context)
        catalog = lakehouse.catalog()
        entries = source_entries(contract, lake.settings.platform_principal)
        with engine.session() as session:
            batch = stage_raw(lake, contract, shared_connection(), landing_dates=dates) if want_raw else None
            try:
                if want_raw:
                    if batch is None:  # nothing new landed: the write records the table as it stands
                        raw_result = nothing_new(lake, contract, dates)
                        raw_out = TableWrite(session, None, Append(), raw_schema(contract))
                    else:
                        raw_out = raw_write(batch)
                    raw_out.entry = entries["raw"]
                    yield dg.MaterializeResult(
                        asset_key=raw_key,
                        value=raw_out,
                        metadata={
                            "new_files": len(batch.files) if batch else 0,
                            "already_ingested_files": batch.already_ingested if batch else raw_result.already_ingested,
                            "malformed_records": batch.malformed() if batch else 0,
                            "batch_id": batch.batch_id if batch else "none",
                        },
                    )
                    if batch is not None:  # committed by the IO manager: log the files it took
                        raw_result = log_batch(lake, batch, raw_out.written())
                    for stray in raw_result.unrecognised:
                        context.log.warning(
                            f"{stray} is not in the landing layout landing/{contract.name}/YYYY/MM/DD/..."
                        )
                    context.log.info(
                        f"raw/{contract.name}: {raw_result.rows} new rows from {len(raw_result.files)} files, "
                        f"{raw_result.already_ingested} already ingested, {raw_result.malformed} malformed"
                    )
                if not want_trusted:
                    return
                plan = plan_promotion(lake, session, contract, landing_dates=dates, batch=batch)
                if plan is None:
                    promoted = PromoteResult(contract.name, 0, 0, 0, 0, 0, skipped=True)
                    q_out = TableWrite(session, None, Append(), quarantine_schema(contract))
                    t_out = TableWrite(session, None, Append(), trusted_schema(contract))
                else:
                    q_out, t_out = plan.quarantine, plan.trusted
                q_out.entry, t_out.entry = entries["quarantine"], entries["trusted"]
                # Quarantine commits first, trusted second (a crash between them is repaired by the next run).
                q_figures = {"new_rows": plan.planned_quarantined if plan else 0}
                if quarantine_key in selected:
                    yield dg.MaterializeResult(asset_key=quarantine_key, value=q_out, metadata=q_figures)
                else:
                    persist(lake, catalog, quarantine_key, q_out)

                def reconciliation(written: WriteResult) -> dict[str, object]:
                    result = promoted if plan is None else plan.result()
                    meta = result.as_metadata()
                    return {
                        **{k: v for k, v in meta.items() if isinstance(v, int | bool)},
                        "quarantine_by_rule": meta["quarantine_by_rule"],
                    }

                t_out.figures = reconciliation
                touched = plan.touched if plan else []
                if key in selected:
                    yield dg.MaterializeResult(
                        asset_key=key, value=t_out, metadata={TOUCHED_DATES: touched_dates_metadata(touched)}
                    )
                else:
                    persist(lake, catalog, key, t_out)
                promoted = promoted if plan is None else plan.result()
            finally:
                if batch is not None:
                    batch.drop()
        if not promoted.reconciled:
            context.log.error(f"reconciliation failed for trusted/{contract.name}: {promoted.as_metadata()}")
        wanted = context.selected_asset_check_keys
        for result in contract_check_results(
            lake.trusted(contract.name),
            contract,
            key,
            reconciled=promoted.reconciled,
            reconciliation=promoted.as_metadata(),
            partitions=promoted.touched_partitions if partitioned else None,
        ):
            if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
                yield result

    return source_asset


def build_refined_asset(table: RefinedTable) -> dg.AssetsDefinition:
    """`refined/<table>`: partition overwrite of the event dates in the run, or a full rewrite.

    Its trusted inputs come from the Delta IO manager as DataFrames; `order_events` is read only
    for the event dates being built.
    """
    ins = {
        name: dg.AssetIn(
            key=["trusted", name],
            metadata={PARTITION_COLUMN: PARTITION} if name == "order_events" and table.partitioned else None,
        )
        for name in table.inputs
    }

    @dg.asset(
        key=["refined", table.name],
        group_name="refined",
        description=table.description,
        owners=[table.owner],
        kinds=KINDS,
        ins=ins,
        partitions_def=DAILY if table.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if table.partitioned else None,
        automation_condition=None if table.partitioned else dg.AutomationCondition.eager(),
        metadata={"dagster/column_schema": _column_schema(table.schema)},
        code_version="1",
        pool=f"medallion_refined_{table.name}",  # one writer per refined table (sensor, UI, materialize)
    )
    def refined_asset(
        context: dg.AssetExecutionContext,
        lakehouse: LakehouseResource,
        engine: EngineResource,
        step_launcher: StepLauncherParam,  # runs the step on Databricks in the databricks environment
        **inputs: Frame,
    ) -> Iterator[dg.MaterializeResult]:
        lake = lakehouse.lake()
        dates = _partition_keys(context) if table.partitioned else None
        with engine.session() as session:
            plan = plan_refresh(lake, session, table, dates, inputs)
            plan.write.entry = TableEntry(
                description=table.description,
                owner=table.owner,
                partition_by=(PARTITION,) if table.partitioned else (),
            )
            yield dg.MaterializeResult(
                value=plan.write, metadata={"refresh": plan.mode, "dates": ",".join(dates) if dates else "all"}
            )

    return refined_asset
