"""The history assets: `trusted/<dataset>_history` for each contract with `history` (`zones/history.py`).

Unpartitioned and eager: it follows its source's trusted table (any landing date of a stream source) and
takes every raw batch it has not taken yet, so one run catches up whatever the source steps wrote.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.defs.assets.common import KINDS, column_schema, freshness
from medallion_platform.defs.assets.refined import follows_its_inputs
from medallion_platform.defs.checks.history import history_check_results, history_check_specs
from medallion_platform.defs.keys import history_key, is_partitioned, trusted_key
from medallion_platform.defs.launcher import StepLauncherParam
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.lake.schema import history_schema
from medallion_platform.write.spec import Merge, TableWrite
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.history import history_keys, plan_history

__all__ = ["build_history_asset"]

DESCRIPTIONS = {
    "valid_from": "when this version began",
    "valid_to": "when the next version (or the delete) began; null while current",
    "is_current": "the key's newest version",
    "is_deleted": "the key was deleted from valid_from on",
}


def build_history_asset(contract: Contract) -> dg.AssetsDefinition:
    """`trusted/<dataset>_history`: every version of each key (slowly changing dimension type 2)."""
    key, source = history_key(contract.name), trusted_key(contract.name)
    descriptions = {c.name: c.description for c in contract.columns} | DESCRIPTIONS
    tags = {"medallion/pii": "true"} if contract.pii else {}

    @dg.asset(
        key=key,
        group_name="trusted",
        description=f"Every version of each {contract.name} key with when it held: slowly changing dimension "
        f"type 2, built from {contract.history.built_from if contract.history else ''}. {contract.description}",
        owners=[contract.owner],
        kinds=KINDS,
        tags=tags,
        deps=[source],
        check_specs=history_check_specs(key),
        automation_condition=follows_its_inputs(source) if is_partitioned(contract) else dg.AutomationCondition.eager(),
        freshness_policy=freshness(contract),
        metadata={"dagster/column_schema": column_schema(history_schema(contract), descriptions)},
        code_version="1",
        pool=f"medallion_{contract.name}",  # one writer per source: the source step and its history
    )
    def history_asset(
        context: dg.AssetExecutionContext,
        lakehouse: LakehouseResource,
        engine: EngineResource,
        step_launcher: StepLauncherParam,
    ) -> Iterator[Any]:
        lake = lakehouse.lake()
        with engine.session() as session:
            write = plan_history(lake, session, contract) or TableWrite(
                engine=session, frame=None, spec=Merge(keys=history_keys(contract)), schema=history_schema(contract)
            )
            write.entry = source_entries(contract, lake.settings.platform_principal)["history"]
            yield dg.MaterializeResult(value=write, metadata={"new_batches": int(write.frame is not None)})
            # after the IO manager's write (Dagster hands the value over at the yield), on the same engine
            for result in history_check_results(lake.history(contract.name), contract, key, session):
                if dg.AssetCheckKey(key, str(result.check_name)) in context.selected_asset_check_keys:
                    yield result

    return history_asset
