"""The source assets built from the contracts: one step per source with raw, trusted and quarantine.

Asset keys are `[zone, name]` and groups are the zones. Stream sources are partitioned by landing date
(`defs/partitions.py`). A step asked to materialize an asset materializes it, also when it finds nothing
new (new rows 0, the table's current Delta version and row count), so backfills, automation conditions and
freshness see the asset as up to date. The refined assets are `refined.py`.
"""

from collections.abc import Generator, Iterator, Mapping
from typing import Any

import dagster as dg
import pyarrow as pa

from medallion_platform.catalog import TableEntry
from medallion_platform.contracts import Contract
from medallion_platform.defs.assets.common import COLUMN_LINEAGE, KINDS, column_lineage, column_schema, freshness
from medallion_platform.defs.assets.common import partition_keys as _partition_keys  # the name the step body uses
from medallion_platform.defs.checks.quality import quality_check_results, quality_check_specs
from medallion_platform.defs.checks.trusted import contract_check_results, contract_check_specs
from medallion_platform.defs.keys import (
    TOUCHED_DATES,
    is_partitioned,
    source_keys,
    touched_dates_metadata,
    trusted_key,
)
from medallion_platform.defs.launcher import StepLauncherParam
from medallion_platform.defs.partitions import DAILY
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.engine.base import Engine
from medallion_platform.lake.lakehouse import REJECTED_SUFFIX, Lakehouse
from medallion_platform.lake.schema import quarantine_schema, raw_schema, trusted_schema
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, TableWrite
from medallion_platform.write.writers import table_columns
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.lineage import trusted_lineage
from medallion_platform.zones.quality import contract_rules, record_quality
from medallion_platform.zones.raw import REJECTED_SCHEMA
from medallion_platform.zones.source_step import RawPlan, SourceStep
from medallion_platform.zones.trusted import PromoteResult, Promotion, batch_figures, stamp_figures

__all__ = ["build_source_asset", "source_specs"]


def source_specs(contract: Contract) -> list[dg.AssetSpec]:
    """The raw, trusted and quarantine asset specs of one source (all skippable: a run may write none)."""
    raw_key, key, quarantine_key = source_keys(contract.name)
    descriptions = {c.name: c.description for c in contract.columns}
    tags = {"medallion/pii": "true"} if contract.pii else {}
    policy = freshness(contract)
    common: dict[str, Any] = {"owners": [contract.owner], "kinds": KINDS, "tags": tags, "skippable": True}
    return [
        dg.AssetSpec(
            raw_key,
            group_name="raw",
            description=f"Raw {contract.name} as it landed under {contract.source.landing_prefix}. "
            f"{contract.description}",
            freshness_policy=policy,
            metadata={"dagster/column_schema": column_schema(raw_schema(contract), descriptions)},
            **{**common, "tags": {**tags, "medallion/source_kind": contract.source.kind}},
        ),
        dg.AssetSpec(
            key,
            deps=[raw_key],
            group_name="trusted",
            description=f"{contract.description} Typed, validated and deduplicated per its contract.",
            freshness_policy=policy,
            automation_condition=dg.AutomationCondition.eager(),
            metadata={
                "dagster/column_schema": column_schema(trusted_schema(contract), descriptions),
                "primary_key": ",".join(contract.primary_key),
                "pii_columns": ",".join(contract.pii) or "none",
            },
            **common,
        ),
        dg.AssetSpec(
            quarantine_key,
            deps=[raw_key],
            group_name="trusted",
            description=f"Rows of raw {contract.name} that failed a contract rule, with the rule and reason.",
            automation_condition=dg.AutomationCondition.eager(),
            metadata={"dagster/column_schema": column_schema(quarantine_schema(contract))},
            **common,
        ),
    ]


def build_source_asset(contract: Contract) -> dg.AssetsDefinition:
    """`raw/<dataset>`, `trusted/<dataset>` and `trusted/<dataset>_quarantine` of one source.

    One step with three assets (subsettable): run together, the new landing files are parsed once,
    committed to raw and promoted to trusted from the batch in hand; run alone, raw ingests and
    trusted promotes whatever raw holds that it has not taken.
    """
    partitioned = is_partitioned(contract)

    @dg.multi_asset(
        # skippable outputs of type TableWrite, persisted by the Delta IO manager
        outs={
            spec.key.to_python_identifier(): dg.AssetOut(spec=spec, dagster_type=TableWrite, is_required=False)
            for spec in source_specs(contract)
        },
        check_specs=[
            *contract_check_specs(contract, trusted_key(contract.name)),
            *quality_check_specs(contract, trusted_key(contract.name)),
        ],
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
        yield from _run_source_step(context, lakehouse, engine, contract)

    return source_asset


SourceEvents = Generator[dg.MaterializeResult, None, Any]


def _run_source_step(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource, engine: EngineResource, contract: Contract
) -> Iterator[Any]:
    """Raw (if selected) from the new landing files, then trusted + quarantine, then the trusted checks:
    the plan of `zones/source_step.py`, turned into events (the IO manager writes what they carry)."""
    lake = lakehouse.lake()
    raw_key, key, quarantine_key = source_keys(contract.name)
    selected = context.selected_asset_keys
    entries = source_entries(contract, lake.settings.platform_principal)
    promoted: PromoteResult | None = None
    rejected = 0
    with (
        engine.session() as session,
        SourceStep(lake, contract, landing_dates=_partition_keys(context), log=context.log) as step,
    ):
        if raw_key in selected:
            raw_plan = step.plan_raw(engine=session)
            rejected = raw_plan.newly_rejected
            yield from _raw_events(context, lakehouse, contract, raw_plan, entries, session)
        if {key, quarantine_key} & selected:
            promotion = _Promotion(context, lake, lakehouse, contract, session, entries)
            promoted = yield from promotion.events(step.plan_promotion(session), rejected_objects=rejected)
        if promoted is not None and not promoted.skipped:  # a batch was promoted: its figures join the quality table
            figures = batch_figures(promoted, rejected_objects=rejected, landing_dates=_partition_keys(context))
            record_quality(lake, contract, figures, engine=session)
        if promoted is not None:  # on the engine that wrote trusted (on a cluster: its Spark, by name)
            yield from _trusted_checks(context, lake, contract, promoted, session)


def _raw_events(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    contract: Contract,
    plan: RawPlan,
    entries: Mapping[str, TableEntry],
    session: Engine,
) -> SourceEvents:
    """The raw materialization of a new batch (then its files are logged), or of the table as it stands
    (`new_files` 0) when nothing new landed.

    Rejected landing objects are recorded first, listed in the metadata and queryable as
    `<catalog>.raw.<dataset>_rejected`.
    """
    raw_key = source_keys(plan.dataset)[0]
    if plan.rejections is not None:
        plan.rejections.apply()
    metadata: dict[str, Any] = {
        **plan.figures(),
        "newly_rejected_objects": plan.newly_rejected,
        "rejected_objects": dg.JsonMetadataValue(plan.rejected_figures()),
    }
    if plan.nothing_new:
        as_it_stands = _as_it_stands(plan.cluster or _driver_engine(), raw_schema(contract))
        yield dg.MaterializeResult(asset_key=raw_key, value=as_it_stands, metadata=metadata)
    elif plan.write is not None:
        plan.write.entry = entries["raw"]
        yield dg.MaterializeResult(asset_key=raw_key, value=plan.write, metadata=metadata)
        plan.log_write().apply()  # committed by the IO manager: log the files it took
    result = plan.result()
    if plan.rejected:
        rejected_table = lakehouse.lake().rejected(plan.dataset)
        lakehouse.catalog().register(
            "raw",
            f"{plan.dataset}{REJECTED_SUFFIX}",
            schema=REJECTED_SCHEMA,
            entry=entries["rejected"],
            columns=None if plan.cluster is None else table_columns(plan.cluster, rejected_table),
        )
    context.log.info(
        f"raw/{plan.dataset}: {result.rows} new rows from {len(result.files)} files, "
        f"{result.already_ingested} already ingested, {result.malformed} malformed, "
        f"{len(result.rejected)} objects rejected ({result.newly_rejected} new)"
    )


def _driver_engine() -> Engine:
    from medallion_platform.engine.embedded import EmbeddedEngine  # raw is written from the driver's DuckDB

    return EmbeddedEngine()


def _as_it_stands(engine: Engine, schema: pa.Schema) -> TableWrite:
    """A write of nothing: the IO manager records the table as it stands (Delta version, row count)."""
    return TableWrite(engine=engine, frame=None, spec=Append(), schema=schema)


class _Promotion:
    """Trusted + quarantine of one step: their writes (quarantine first), or the tables as they stand when
    nothing is pending."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        lake: Lakehouse,
        lakehouse: LakehouseResource,
        contract: Contract,
        session: Engine,
        entries: Mapping[str, TableEntry],
    ) -> None:
        self.context, self.lake, self.contract, self.session, self.entries = context, lake, contract, session, entries
        self.catalog = lakehouse.catalog()
        _, self.key, self.quarantine_key = source_keys(contract.name)

    def events(self, plan: Promotion | None, *, rejected_objects: int = 0) -> SourceEvents:
        """Yields what the selected assets record and returns the promotion's figures."""
        selected = self.context.selected_asset_keys
        if plan is None:  # nothing pending: both tables as they stand, and a reconciliation of 0 = 0
            nothing = PromoteResult(dataset=self.contract.name, skipped=True)
            schemas = {self.quarantine_key: quarantine_schema(self.contract), self.key: trusted_schema(self.contract)}
            for key, schema in schemas.items():
                if key in selected:
                    out = _as_it_stands(self.session, schema)
                    if key == self.key:
                        out.figures = lambda _written: _reconciliation_figures(self.contract, nothing)
                    yield dg.MaterializeResult(
                        asset_key=key, value=out, metadata={"new_rows": 0, "pending_raw_batches": 0}
                    )
            return nothing
        plan.quarantine.entry, plan.trusted.entry = self.entries["quarantine"], self.entries["trusted"]
        plan.trusted.figures = lambda _written: _reconciliation_figures(self.contract, plan.result())
        # Quarantine commits first, trusted second (a crash between them is repaired by the next run).
        yield from self._write(self.quarantine_key, plan.quarantine, {"new_rows": plan.planned_quarantined})
        lineage = column_lineage(trusted_lineage(self.contract), lambda _raw: source_keys(self.contract.name)[0])
        trusted_meta = {TOUCHED_DATES: touched_dates_metadata(plan.touched), COLUMN_LINEAGE: lineage}
        stamp_figures(plan, rejected_objects=rejected_objects, landing_dates=_partition_keys(self.context))
        yield from self._write(self.key, plan.trusted, trusted_meta)
        return plan.result()

    def _write(self, key: dg.AssetKey, out: TableWrite, metadata: dict[str, Any]) -> SourceEvents:
        if key in self.context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, value=out, metadata=metadata)
        else:  # not selected, but trusted and its quarantine are written together
            persist(self.lake, key.path, out, catalog=self.catalog)


def _reconciliation_figures(contract: Contract, result: PromoteResult) -> dict[str, object]:
    """The promotion's figures as numeric metadata (the UI plots each over time), every rule's quarantined
    rows included (zeros too, so each plot is continuous)."""
    meta = result.as_metadata()
    by_rule = {f"quarantined_{r}": int(result.quarantine_by_rule.get(r, 0)) for r in contract_rules(contract)}
    return {
        **{k: v for k, v in meta.items() if isinstance(v, int | bool)},
        **by_rule,
        "quarantine_by_rule": meta["quarantine_by_rule"],
    }


def _trusted_checks(
    context: dg.AssetExecutionContext, lake: Lakehouse, contract: Contract, promoted: PromoteResult, engine: Engine
) -> Iterator[dg.AssetCheckResult]:
    key = trusted_key(contract.name)
    if not promoted.reconciled:
        context.log.error(f"reconciliation failed for trusted/{contract.name}: {promoted.as_metadata()}")
    wanted = context.selected_asset_check_keys
    for result in contract_check_results(
        lake.trusted(contract.name),
        contract,
        key,
        reconciled=promoted.reconciled,
        reconciliation=promoted.as_metadata(),
        partitions=promoted.touched_partitions if is_partitioned(contract) else None,
        engine=engine,
    ):
        if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
            yield result
    for result in quality_check_results(lake, contract, key, engine):
        if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
            yield result
