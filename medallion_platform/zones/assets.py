"""Dagster assets built from the contracts (raw, trusted + quarantine) and the refined modules.

Asset keys are `[zone, name]` and groups are the zones. Trusted `order_events` and its raw table
are partitioned by landing date; date-partitioned refined tables by event date.
"""

from collections.abc import Sequence
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
from medallion_platform.zones.raw import ingest_raw, raw_table
from medallion_platform.zones.refined import RefinedTable
from medallion_platform.zones.refined.base import build_refined, write_refined
from medallion_platform.zones.trusted import PromoteResult, promote, quarantine_table, trusted_table

__all__ = ["build_raw_asset", "build_refined_asset", "build_trusted_asset", "table_metadata"]

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


def build_raw_asset(contract: Contract) -> dg.AssetsDefinition:
    """`raw/<dataset>`: new landing files, appended once each."""
    streamed = contract.source.kind == "stream"
    descriptions = {c.name: c.description for c in contract.columns}

    @dg.asset(
        key=["raw", contract.name],
        group_name="raw",
        description=f"Raw {contract.name}, as it landed under {contract.source.landing_prefix}. {contract.description}",
        owners=[contract.owner],
        kinds=KINDS,
        partitions_def=DAILY if streamed else None,
        backfill_policy=dg.BackfillPolicy.single_run() if streamed else None,
        freshness_policy=_freshness(contract),
        metadata={"dagster/column_schema": _column_schema(raw_schema(contract), descriptions)},
        tags={"medallion/source_kind": contract.source.kind},
    )
    def raw_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
        settings = lakehouse.settings()
        results = [ingest_raw(settings, contract, landing_date=d) for d in (_partition_keys(context) or [None])]
        for result in results:
            for key in result.unrecognised:
                context.log.warning(f"{key} is not in the landing layout landing/{contract.name}/YYYY/MM/DD/…; skipped")
        lakehouse.catalog().register(
            "raw",
            contract.name,
            schema=raw_schema(contract),
            description=contract.description,
            owner=contract.owner,
            pii=contract.pii,
            partition_by=["_landing_date"],
        )
        return dg.MaterializeResult(
            metadata={
                **table_metadata(raw_table(settings, contract.name)),
                "new_rows": sum(r.rows for r in results),
                "new_files": sum(len(r.files) for r in results),
                "already_ingested_files": sum(r.already_ingested for r in results),
                "malformed_records": sum(r.malformed for r in results),
                "batch_ids": ", ".join(r.batch_id for r in results if r.batch_id) or "none",
            }
        )

    return raw_asset


def build_trusted_asset(contract: Contract) -> dg.AssetsDefinition:
    """`trusted/<dataset>` and `trusted/<dataset>_quarantine`, from the raw batches not yet promoted."""
    key = dg.AssetKey(["trusted", contract.name])
    quarantine_key = dg.AssetKey(["trusted", f"{contract.name}_quarantine"])
    partitioned = contract.source.kind == "stream"
    descriptions = {c.name: c.description for c in contract.columns}
    tags = {"medallion/pii": "true"} if contract.pii else {}

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                key,
                deps=[dg.AssetKey(["raw", contract.name])],
                group_name="trusted",
                description=f"{contract.description} Typed, validated and deduplicated per its contract.",
                owners=[contract.owner],
                kinds=KINDS,
                freshness_policy=_freshness(contract),
                automation_condition=dg.AutomationCondition.eager(),
                metadata={
                    "dagster/column_schema": _column_schema(trusted_schema(contract), descriptions),
                    "primary_key": ",".join(contract.primary_key),
                    "pii_columns": ",".join(contract.pii) or "none",
                },
                tags=tags,
            ),
            dg.AssetSpec(
                quarantine_key,
                deps=[dg.AssetKey(["raw", contract.name])],
                group_name="trusted",
                description=f"Rows of raw {contract.name} that failed a contract rule, with the rule and reason.",
                owners=[contract.owner],
                kinds=KINDS,
                automation_condition=dg.AutomationCondition.eager(),
                metadata={"dagster/column_schema": _column_schema(quarantine_schema(contract))},
                tags=tags,
            ),
        ],
        check_specs=contract_check_specs(contract, key),
        partitions_def=DAILY if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        name=f"trusted_{contract.name}",
    )
    def trusted_asset(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, engine: EngineResource):
        settings = lakehouse.settings()
        with engine.session() as session:
            results = [
                promote(settings, session, contract, landing_date=d) for d in (_partition_keys(context) or [None])
            ]
        total = _combine(contract.name, results)
        if not total.reconciled:
            context.log.error(f"reconciliation failed for trusted/{contract.name}: {total.as_metadata()}")
        catalog = lakehouse.catalog()
        partition_by = [contract.partition.column] if contract.partition else []
        catalog.register(
            "trusted",
            contract.name,
            schema=trusted_schema(contract),
            description=contract.description,
            owner=contract.owner,
            pii=contract.pii,
            partition_by=partition_by,
        )
        catalog.register(
            "trusted",
            f"{contract.name}_quarantine",
            schema=quarantine_schema(contract),
            description=f"Quarantined rows of {contract.name}",
            owner=contract.owner,
            pii=contract.pii,
        )
        trusted, quarantine = trusted_table(settings, contract.name), quarantine_table(settings, contract.name)
        meta = total.as_metadata()
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                **table_metadata(trusted),
                **{k: v for k, v in meta.items() if isinstance(v, int | bool)},
                "quarantine_by_rule": meta["quarantine_by_rule"],
                "touched_partitions": ",".join(total.touched_partitions),
            },
        )
        yield dg.MaterializeResult(
            asset_key=quarantine_key, metadata={**table_metadata(quarantine), "new_rows": total.quarantined}
        )
        yield from contract_check_results(
            trusted,
            contract,
            key,
            reconciled=total.reconciled,
            reconciliation=meta,
            partitions=total.touched_partitions if partitioned else None,
        )

    return trusted_asset


def _combine(dataset: str, results: Sequence[PromoteResult]) -> PromoteResult:
    return PromoteResult(
        dataset=dataset,
        raw_rows=sum(r.raw_rows for r in results),
        inserted=sum(r.inserted for r in results),
        updated=sum(r.updated for r in results),
        duplicates=sum(r.duplicates for r in results),
        quarantined=sum(r.quarantined for r in results),
        batch_seqs=sorted({s for r in results for s in r.batch_seqs}),
        touched_partitions=sorted({p for r in results for p in r.touched_partitions}),
        quarantine_by_rule={
            rule: sum(r.quarantine_by_rule.get(rule, 0) for r in results)
            for rule in sorted({k for r in results for k in r.quarantine_by_rule})
        },
        trusted_version=results[-1].trusted_version if results else None,
        quarantine_version=results[-1].quarantine_version if results else None,
    )


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
            rows = build_refined(settings, session, table, dates)
        result = write_refined(settings, table, rows, dates)
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
                "rows_written": result.inserted,
                "dates": ",".join(dates) if dates else "all",
            }
        )

    return refined_asset
