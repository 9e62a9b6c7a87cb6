"""Raw and trusted in one pass: parse the new landing files once, commit them to raw, and build
trusted from the batch in hand (no read-back), each table in one commit."""

import logging
from collections.abc import Sequence

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.raw import RawIngestResult, commit_raw, nothing_new, stage_raw
from medallion_platform.zones.trusted import PromoteResult, promote

__all__ = ["ingest_and_promote"]


def ingest_and_promote(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    log: logging.Logger | None = None,
) -> tuple[RawIngestResult, PromoteResult]:
    """New landing files -> raw -> trusted + quarantine (older raw batches still pending are taken too).

    Landing objects raw cannot take are recorded in `raw/<dataset>_rejected` and named on `log`.
    """
    from medallion_platform.engine.embedded import shared_connection

    dates = list(landing_dates) if landing_dates else None
    batch = stage_raw(lake, contract, shared_connection(), landing_dates=dates, log=log)
    if batch is None:
        return nothing_new(lake, contract, dates), promote(lake, engine, contract, landing_dates=dates)
    try:
        raw_result = commit_raw(lake, batch)
        return raw_result, promote(lake, engine, contract, landing_dates=dates, batch=batch)
    finally:
        batch.drop()
