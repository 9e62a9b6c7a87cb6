"""The quarantine replay job: `zones/replay.py` as a Dagster job (launch it from the UI with the dataset in the
run config), what `medallion quarantine replay` runs."""

import datetime as dt

import dagster as dg

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.keys import trusted_key
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.lake.lock import lake_lock
from medallion_platform.zones.replay import replay_quarantine

__all__ = ["quarantine_replay_job"]


class ReplayConfig(dg.Config):
    dataset: str
    """A dataset of the contracts."""
    rule: str | None = None
    """Only rows quarantined for this rule."""
    since: str | None = None
    """Only rows landed on or after this date (YYYY-MM-DD)."""


@dg.op(
    out={},
    description="Validates a dataset's quarantined rows again against the current contract and promotes those "
    "that pass through the same dedup and MERGE as fresh data; fails when the ledger does not close.",
)
def replay_quarantined_rows(
    context: dg.OpExecutionContext, config: ReplayConfig, lakehouse: LakehouseResource, engine: EngineResource
):
    contracts = load_contracts()
    if config.dataset not in contracts:
        raise dg.Failure(f"no dataset {config.dataset!r}: the contracts name {', '.join(sorted(contracts))}")
    lake = lakehouse.lake()
    since = dt.date.fromisoformat(config.since) if config.since else None
    with lake_lock(lake.settings.data_dir, context.log.info, holder="quarantine replay"), engine.session() as session:
        result = replay_quarantine(lake, session, contracts[config.dataset], rule=config.rule, since=since)
    for line in result.summary():
        context.log.info(line)
    metadata = {k: v for k, v in result.as_metadata().items() if isinstance(v, (int, str, bool)) and v is not None}
    yield dg.AssetObservation(asset_key=trusted_key(config.dataset), metadata=metadata)
    if not result.reconciled:
        raise dg.Failure(f"the replay of {config.dataset} does not reconcile", metadata=metadata)


@dg.job(description="Quarantine replay: quarantined rows validated again, those that pass promoted to trusted.")
def quarantine_replay_job():
    replay_quarantined_rows()
