"""The source step outside a Dagster run: `zones/source_step.py`'s plan, written in order.

`ingest_and_promote` is the whole step (raw, then trusted + quarantine from the batch in hand) and
`ingest_raw` its raw half; the benchmark times the same calls phase by phase. Inside a Dagster run
the source asset writes the same plan through the IO manager (`defs/assets/source.py`); both write
through `write/persist.py::persist()`, so every table written is registered.
"""

import datetime as dt
import logging
from collections.abc import Sequence

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.persist import persist
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.raw import RawIngestResult
from medallion_platform.zones.source_step import RawPlan, SourceStep
from medallion_platform.zones.trusted import PromoteResult, write_promotion

__all__ = ["ingest_and_promote", "ingest_raw", "write_raw"]


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
    with SourceStep(lake, contract, landing_dates=landing_dates, log=log) as step:
        raw_plan = step.plan_raw(engine=engine)
        raw = write_raw(lake, raw_plan)
        promotion = step.plan_promotion(engine)
        return raw, write_promotion(
            lake, contract, promotion, rejected_objects=raw_plan.newly_rejected, landing_dates=landing_dates
        )


def ingest_raw(
    lake: Lakehouse,
    contract: Contract,
    *,
    landing_dates: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> RawIngestResult:
    """Appends every landing file of `contract` (optionally of some landing dates) not yet in raw."""
    with SourceStep(lake, contract, landing_dates=landing_dates) as step:
        return write_raw(lake, step.plan_raw(now=now))


def write_raw(lake: Lakehouse, plan: RawPlan) -> RawIngestResult:
    """Writes raw's plan in order (new rejections, the batch, then its ingest-log rows); what raw took."""
    if plan.rejections is not None:
        plan.rejections.apply()
    if plan.write is not None and plan.batch is not None:
        plan.write.entry = source_entries(plan.batch.contract, lake.settings.platform_principal)["raw"]
        persist(lake, ("raw", plan.dataset), plan.write)
        plan.log_write().apply()
    return plan.result()
