"""Dagster assets built from the contracts (raw, trusted + quarantine) and the refined modules.

Asset keys are `[zone, name]` and groups are the zones. Stream sources (raw and trusted) are partitioned
by landing date; date-partitioned refined tables by event date, each event date depending on the
fact's landing dates D .. D+3 (`automation/partitions.py`). A step asked to materialize an asset
materializes it, also when it finds nothing new (new rows 0, the table's current Delta version and row
count), so backfills, automation conditions and freshness see the asset as up to date.
"""

import warnings
from collections.abc import Generator, Iterator, Mapping
from typing import Any

import dagster as dg
import pyarrow as pa

from medallion_platform.automation.partitions import DAILY, EVENT_DATE_MAPPING, partition_dates
from medallion_platform.catalog import TableEntry
from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.contracts.model import parse_duration
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.io_manager import persist
from medallion_platform.lake.lakehouse import REJECTED_SUFFIX, Lakehouse
from medallion_platform.lake.schema import quarantine_schema, raw_schema, trusted_schema
from medallion_platform.lake.writes import Append, TableWrite
from medallion_platform.resources import EngineResource, LakehouseResource
from medallion_platform.zones.checks import contract_check_results, contract_check_specs
from medallion_platform.zones.keys import (
    TOUCHED_DATES,
    is_partitioned,
    refined_key,
    source_keys,
    touched_dates_metadata,
    trusted_key,
)
from medallion_platform.zones.raw import REJECTED_SCHEMA
from medallion_platform.zones.refined import RefinedTable
from medallion_platform.zones.refined.base import PARTITION, fact_rows_by_date, plan_refresh
from medallion_platform.zones.refined.checks import refined_check_results, refined_check_specs
from medallion_platform.zones.source_step import RawPlan, SourceStep
from medallion_platform.zones.trusted import PromoteResult, Promotion

__all__ = ["build_refined_asset", "build_source_asset", "source_entries"]

KINDS = {"delta", "duckdb"}

StepLauncherParam = dg.ResourceParam[object]
"""The `step_launcher` resource: Databricks' step launcher in the databricks environment, else None."""

_BACKFILL_POLICY_BETA = r"Parameter `backfill_policy` of function `asset` is currently in beta"
"""Dagster 1.13 warns on every definitions load (each run and code server) about a parameter we rely on."""


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
        "rejected": TableEntry(
            description=f"Landing objects of {contract.name} raw could not take (unreadable, outside the layout), "
            "each with the reason, recorded once per content.",
            owner=platform_principal,
        ),
    }


def source_specs(contract: Contract) -> list[dg.AssetSpec]:
    """The raw, trusted and quarantine asset specs of one source (all skippable: a run may write none)."""
    raw_key, key, quarantine_key = source_keys(contract.name)
    descriptions = {c.name: c.description for c in contract.columns}
    tags = {"medallion/pii": "true"} if contract.pii else {}
    freshness = _freshness(contract)
    common: dict[str, Any] = {"owners": [contract.owner], "kinds": KINDS, "tags": tags, "skippable": True}
    return [
        dg.AssetSpec(
            raw_key,
            group_name="raw",
            description=f"Raw {contract.name} as it landed under {contract.source.landing_prefix}. "
            f"{contract.description}",
            freshness_policy=freshness,
            metadata={"dagster/column_schema": _column_schema(raw_schema(contract), descriptions)},
            **{**common, "tags": {**tags, "medallion/source_kind": contract.source.kind}},
        ),
        dg.AssetSpec(
            key,
            deps=[raw_key],
            group_name="trusted",
            description=f"{contract.description} Typed, validated and deduplicated per its contract.",
            freshness_policy=freshness,
            automation_condition=dg.AutomationCondition.eager(),
            metadata={
                "dagster/column_schema": _column_schema(trusted_schema(contract), descriptions),
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
            metadata={"dagster/column_schema": _column_schema(quarantine_schema(contract))},
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
        check_specs=contract_check_specs(contract, trusted_key(contract.name)),
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
    with (
        engine.session() as session,
        SourceStep(lake, contract, landing_dates=_partition_keys(context), log=context.log) as step,
    ):
        if raw_key in selected:
            yield from _raw_events(context, lakehouse, step.plan_raw(), entries)
        if {key, quarantine_key} & selected:
            promoted = yield from _Promotion(context, lake, lakehouse, contract, session, entries).events(
                step.plan_promotion(session)
            )
    if promoted is not None:
        yield from _trusted_checks(context, lake, contract, promoted)


def _raw_events(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    plan: RawPlan,
    entries: Mapping[str, TableEntry],
) -> SourceEvents:
    """The raw materialization of a new batch (then its files are logged), or of the table as it stands
    (`new_files` 0) when nothing new landed.

    Rejected landing objects are recorded first, listed in the metadata and queryable as
    `<catalog>.raw.<dataset>_rejected`.
    """
    raw_key = source_keys(plan.dataset)[0]
    if plan.rejections is not None:
        plan.rejections.apply()
    metadata: dict[str, Any] = {**plan.figures(), "rejected_objects": dg.JsonMetadataValue(plan.rejected_figures())}
    if plan.nothing_new:
        from medallion_platform.engine.embedded import EmbeddedEngine  # raw is written from the driver's DuckDB

        as_it_stands = _as_it_stands(EmbeddedEngine(), raw_schema(load_contracts()[plan.dataset]))
        yield dg.MaterializeResult(asset_key=raw_key, value=as_it_stands, metadata=metadata)
    elif plan.write is not None:
        plan.write.entry = entries["raw"]
        yield dg.MaterializeResult(asset_key=raw_key, value=plan.write, metadata=metadata)
        plan.log_write().apply()  # committed by the IO manager: log the files it took
    result = plan.result()
    if plan.rejected:
        lakehouse.catalog().register(
            "raw", f"{plan.dataset}{REJECTED_SUFFIX}", schema=REJECTED_SCHEMA, entry=entries["rejected"]
        )
    context.log.info(
        f"raw/{plan.dataset}: {result.rows} new rows from {len(result.files)} files, "
        f"{result.already_ingested} already ingested, {result.malformed} malformed, "
        f"{len(result.rejected)} objects rejected ({result.newly_rejected} new)"
    )


def _as_it_stands(engine: Any, schema: pa.Schema) -> TableWrite:
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

    def events(self, plan: Promotion | None) -> SourceEvents:
        """Yields what the selected assets record and returns the promotion's figures."""
        selected = self.context.selected_asset_keys
        if plan is None:  # nothing pending: both tables as they stand, and a reconciliation of 0 = 0
            nothing = PromoteResult(dataset=self.contract.name, skipped=True)
            schemas = {self.quarantine_key: quarantine_schema(self.contract), self.key: trusted_schema(self.contract)}
            for key, schema in schemas.items():
                if key in selected:
                    out = _as_it_stands(self.session, schema)
                    if key == self.key:
                        out.figures = lambda _written: _reconciliation_figures(nothing)
                    yield dg.MaterializeResult(
                        asset_key=key, value=out, metadata={"new_rows": 0, "pending_raw_batches": 0}
                    )
            return nothing
        plan.quarantine.entry, plan.trusted.entry = self.entries["quarantine"], self.entries["trusted"]
        plan.trusted.figures = lambda _written: _reconciliation_figures(plan.result())
        # Quarantine commits first, trusted second (a crash between them is repaired by the next run).
        yield from self._write(self.quarantine_key, plan.quarantine, {"new_rows": plan.planned_quarantined})
        yield from self._write(self.key, plan.trusted, {TOUCHED_DATES: touched_dates_metadata(plan.touched)})
        return plan.result()

    def _write(self, key: dg.AssetKey, out: TableWrite, metadata: dict[str, Any]) -> SourceEvents:
        if key in self.context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key, value=out, metadata=metadata)
        else:  # not selected, but trusted and its quarantine are written together
            persist(self.lake, self.catalog, key, out)


def _reconciliation_figures(result: PromoteResult) -> dict[str, object]:
    meta = result.as_metadata()
    return {
        **{k: v for k, v in meta.items() if isinstance(v, int | bool)},
        "quarantine_by_rule": meta["quarantine_by_rule"],
    }


def _trusted_checks(
    context: dg.AssetExecutionContext, lake: Lakehouse, contract: Contract, promoted: PromoteResult
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
    ):
        if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
            yield result


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
            freshness_policy=_freshness(load_contracts()[table.fact]),
            metadata={"dagster/column_schema": _column_schema(table.schema, dict(table.columns))},
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
    context: dg.AssetExecutionContext, lake: Lakehouse, engine: EngineResource, table: RefinedTable, inputs: dict
) -> Iterator[Any]:
    """The refresh of one refined table (a materialization, also when unchanged), then its checks."""
    key = refined_key(table.name)
    dates = _partition_keys(context) if table.partitioned else None
    with engine.session() as session:
        plan = plan_refresh(lake, session, table, dates, inputs)
        metadata: dict[str, Any] = {"refresh": plan.mode, "dates": ",".join(dates) if dates else "all"}
        if table.partitioned:
            metadata |= _dates_outside_partitions(context, lake, table)
        plan.write.entry = TableEntry(
            description=table.description,
            owner=table.owner,
            partition_by=(PARTITION,) if table.partitioned else (),
            column_descriptions=table.columns,
        )
        # `unchanged` writes nothing: the materialization records the table as it stands
        yield dg.MaterializeResult(value=plan.write, metadata=metadata)
    wanted = context.selected_asset_check_keys
    for result in refined_check_results(lake, table, key, dates):
        if dg.AssetCheckKey(key, str(result.check_name)) in wanted:
            yield result


def _dates_outside_partitions(context: Any, lake: Lakehouse, table: RefinedTable) -> dict[str, Any]:
    """Event dates of the fact that no partition holds (before the first day, after tomorrow): warned
    about by date and row count, and recorded, never dropped in silence or turned into a partition key."""
    rows = fact_rows_by_date(lake, table)
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
