"""Dagster assets built from the contracts (raw, trusted + quarantine) and the refined modules.

Asset keys are `[zone, name]` and groups are the zones. Trusted `order_events` and its raw table
are partitioned by landing date; date-partitioned refined tables by event date.
"""

from typing import Any

import dagster as dg
import pyarrow as pa

from medallion_platform.automation.partitions import DAILY
from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import parse_duration
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.schema import quarantine_schema, raw_schema, trusted_schema
from medallion_platform.resources import EngineResource, LakehouseResource
from medallion_platform.zones.checks import contract_check_results, contract_check_specs
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.raw import ingest_raw, raw_table
from medallion_platform.zones.refined import RefinedTable
from medallion_platform.zones.refined.base import refresh_refined
from medallion_platform.zones.trusted import promote, quarantine_table, trusted_table

__all__ = ["build_refined_asset", "build_source_asset", "table_metadata"]

KINDS = {"delta", "duckdb"}


def _column_schema(schema: pa.Schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name)) for f in schema]
    )


def table_metadata(table: DeltaTableIO, *, rows: int | None = None) -> dict[str, Any]:
    """Delta version, location and row count of a table."""
    delta = table.table()
    out: dict[str, Any] = {"dagster/uri": table.uri, "delta_version": -1 if delta is None else delta.version()}
    if delta is not None:
        out["dagster/row_count"] = rows if rows is not None else int(delta.count())
    return out


def _freshness(contract: Contract) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=parse_duration(contract.freshness.fail_after),
        warn_window=parse_duration(contract.freshness.warn_after),
    )


def _partition_keys(context: Any) -> list[str] | None:
    return list(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else None


def build_source_asset(contract: Contract) -> dg.AssetsDefinition:
    """`raw/<dataset>`, `trusted/<dataset>` and `trusted/<dataset>_quarantine` of one source.

    One step with three assets (subsettable): run together, the new landing files are parsed once,
    committed to raw and promoted to trusted from the batch in hand; run alone, raw ingests and
    trusted promotes whatever raw holds that it has not taken.
    """
    raw_key = dg.AssetKey(["raw", contract.name])
    key = dg.AssetKey(["trusted", contract.name])
    quarantine_key = dg.AssetKey(["trusted", f"{contract.name}_quarantine"])
    partitioned = contract.source.kind == "stream"
    descriptions = {c.name: c.description for c in contract.columns}
    tags = {"medallion/pii": "true"} if contract.pii else {}
    freshness = _freshness(contract)

    @dg.multi_asset(
        specs=[
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
        ],
        check_specs=contract_check_specs(contract, key),
        partitions_def=DAILY if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        can_subset=True,
        name=f"source_{contract.name}",
        pool=f"medallion_{contract.name}",
    )
    def source_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, engine: EngineResource):
        settings = lakehouse.settings()
        selected = context.selected_asset_keys
        want_raw, want_trusted = raw_key in selected, bool({key, quarantine_key} & selected)
        dates = _partition_keys(context)
        raw_result = promoted = None
        with engine.session() as session:
            if want_raw and want_trusted:
                raw_result, promoted = ingest_and_promote(settings, session, contract, landing_dates=dates)
            elif want_raw:
                raw_result = ingest_raw(settings, contract, landing_dates=dates)
            else:
                promoted = promote(settings, session, contract, landing_dates=dates)
        catalog = lakehouse.catalog()

        def register(zone: str, name: str, schema: pa.Schema, description: str, partition_by: list[str]) -> None:
            catalog.register(
                zone,
                name,
                schema=schema,
                description=description,
                owner=contract.owner,
                pii=contract.pii,
                partition_by=partition_by,
            )

        if raw_result is not None:
            for stray in raw_result.unrecognised:
                context.log.warning(f"{stray} is not in the landing layout landing/{contract.name}/YYYY/MM/DD/...")
            register("raw", contract.name, raw_schema(contract), contract.description, ["_landing_date"])
            yield dg.MaterializeResult(
                asset_key=raw_key,
                metadata={
                    **table_metadata(raw_table(settings, contract.name)),
                    "new_rows": raw_result.rows,
                    "new_files": len(raw_result.files),
                    "already_ingested_files": raw_result.already_ingested,
                    "malformed_records": raw_result.malformed,
                    "batch_id": raw_result.batch_id or "none",
                },
            )
        if promoted is None:
            return
        if not promoted.reconciled:
            context.log.error(f"reconciliation failed for trusted/{contract.name}: {promoted.as_metadata()}")
        partition_by = [contract.partition.column] if contract.partition else []
        register("trusted", contract.name, trusted_schema(contract), contract.description, partition_by)
        quarantine_name = f"{contract.name}_quarantine"
        register("trusted", quarantine_name, quarantine_schema(contract), f"Quarantined rows of {contract.name}", [])
        trusted, quarantine = trusted_table(settings, contract.name), quarantine_table(settings, contract.name)
        meta = promoted.as_metadata()
        if key in selected:
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    **table_metadata(trusted),
                    **{k: v for k, v in meta.items() if isinstance(v, int | bool)},
                    "quarantine_by_rule": meta["quarantine_by_rule"],
                    "touched_partitions": ",".join(promoted.touched_partitions),
                },
            )
        if quarantine_key in selected:
            yield dg.MaterializeResult(
                asset_key=quarantine_key, metadata={**table_metadata(quarantine), "new_rows": promoted.quarantined}
            )
        wanted = context.selected_asset_check_keys
        for result in contract_check_results(
            trusted,
            contract,
            key,
            reconciled=promoted.reconciled,
            reconciliation=meta,
            partitions=promoted.touched_partitions if partitioned else None,
        ):
            if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
                yield result

    return source_asset


def build_refined_asset(table: RefinedTable) -> dg.AssetsDefinition:
    """`refined/<table>`: partition overwrite of the event dates in the run, or a full rewrite."""
    deps = [dg.AssetKey(["trusted", name]) for name in table.inputs]

    @dg.asset(
        key=["refined", table.name],
        group_name="refined",
        description=table.description,
        owners=[table.owner],
        kinds=KINDS,
        deps=deps,
        partitions_def=DAILY if table.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if table.partitioned else None,
        automation_condition=None if table.partitioned else dg.AutomationCondition.eager(),
        metadata={"dagster/column_schema": _column_schema(table.schema)},
        code_version="1",
    )
    def refined_asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, engine: EngineResource
    ) -> dg.MaterializeResult:
        settings = lakehouse.settings()
        dates = _partition_keys(context) if table.partitioned else None
        with engine.session() as session:
            result = refresh_refined(settings, session, table, dates)
        lakehouse.catalog().register(
            "refined",
            table.name,
            schema=table.schema,
            description=table.description,
            owner=table.owner,
            partition_by=["event_date"] if table.partitioned else [],
        )
        target = DeltaTableIO(settings.table_uri("refined", table.name), storage_options=settings.storage_options)
        return dg.MaterializeResult(
            metadata={
                **table_metadata(target),
                "rows_written": result.rows,
                "refresh": result.mode,
                "dates": ",".join(dates) if dates else "all",
            }
        )

    return refined_asset
