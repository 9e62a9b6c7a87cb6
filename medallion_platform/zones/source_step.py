"""One landing -> trusted step of a source, planned once: every caller runs this plan.

The Dagster source asset (raw, trusted and quarantine in one step: `medallion materialize`, the
sensors, the UI), `zones/flow.py` (the tests and tools) and the benchmark take the same path:

1. `SourceStep.plan_raw` surveys the landing prefix once (`raw_ledger.survey_landing`), parses the
   new objects into one DuckDB table (`raw_stage.stage_batch`) — on a cluster (the `databricks` engine) the
   survey, the parse and raw's writes are Spark's instead (`zones/raw_cluster.py`) — and plans raw's writes: the
   rejections (objects rejected for the first time, written first), the batch's append, and the
   ingest-log rows (written after the append, from what it committed). Nothing new is a field of
   the plan (`RawPlan.nothing_new`), decided by that one survey.
2. `SourceStep.plan_promotion` plans quarantine then trusted (`trusted.plan_promotion`): from the
   batch in hand when nothing older is pending, else read back from raw (so it runs after raw's
   write); on a cluster always read back from raw by name.

The plans hold write specs (`TableWrite`, `LedgerAppend`) and figures, no Dagster types; the caller
writes them in the order given and turns their results into what it reports (events, a result).
"""

import datetime as dt
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

import duckdb

from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.ingestion.landing import RejectedObject
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.spec import TableWrite
from medallion_platform.write.table_state import cluster_of
from medallion_platform.zones.evolution import gate
from medallion_platform.zones.quality import recover_quality
from medallion_platform.zones.raw import (
    LedgerAppend,
    RawBatch,
    RawIngestResult,
    batch_result,
    log_write,
    raw_write,
    rejections_write,
)
from medallion_platform.zones.raw_ledger import Survey, survey_landing
from medallion_platform.zones.raw_stage import stage_batch
from medallion_platform.zones.trusted import Promotion, plan_promotion

if TYPE_CHECKING:  # pyspark, imported where a step runs on a cluster
    from medallion_platform.engine.databricks import DatabricksEngine
    from medallion_platform.zones.raw_cluster import SparkRawBatch

__all__ = ["RawPlan", "SourceStep"]

_log = logging.getLogger(__name__)


@dataclass
class RawPlan:
    """What one step does to raw, from one survey of the landing prefix.

    Write `rejections` (if any) first, then `write` (if any), then `log_write()`; `result()` then
    says what raw took.
    """

    lake: Lakehouse
    dataset: str
    survey: Survey
    batch: "RawBatch | SparkRawBatch | None"
    """The new objects parsed into DuckDB, or on the cluster; None when nothing new was readable."""
    rejected: list[RejectedObject]
    """Every landing object raw does not take (this run's and earlier ones still in place)."""
    newly_rejected: int
    rejections: LedgerAppend | None
    """The rows recording the objects rejected for the first time (None: none)."""
    write: TableWrite | None
    """The batch's append to raw (None: nothing new)."""
    cluster: "DatabricksEngine | None" = None
    """The cluster engine the batch was parsed on and raw's ledger is written by (None: the driver)."""

    @property
    def nothing_new(self) -> bool:
        """True when the landing prefix held nothing raw can take that it has not taken."""
        return self.batch is None

    def log_write(self) -> LedgerAppend:
        """The ingest-log rows of the batch, once `write` has been committed."""
        if self.batch is None or self.write is None:
            raise RuntimeError(f"raw/{self.dataset}: nothing new was staged, so there is nothing to log")
        self.write.written()  # raises if raw's write has not happened yet
        return log_write(self.lake, self.batch, self.cluster)

    def result(self) -> RawIngestResult:
        """What raw took in this step (after its writes), or what it holds when nothing was new."""
        if self.batch is None or self.write is None:
            return RawIngestResult(
                dataset=self.dataset,
                already_ingested=self.survey.already_ingested,
                rejected=self.rejected,
                version=self.survey.raw_version,
            )
        return batch_result(self.batch, self.write.written())

    def figures(self) -> dict[str, int | str]:
        """The raw asset's figures: files taken, already ingested, malformed records, the batch (or
        raw's version when nothing was new)."""
        if self.batch is None:
            version = self.survey.raw_version
            return {
                "new_files": 0,
                "already_ingested_files": self.survey.already_ingested,
                **({"delta_version": version} if version is not None else {}),
            }
        return {
            "new_files": len(self.batch.files),
            "already_ingested_files": self.batch.already_ingested,
            "malformed_records": self.batch.malformed(),
            "batch_id": self.batch.batch_id,
        }

    def rejected_figures(self) -> list[dict[str, str]]:
        """Every rejected landing object raw does not take: key, reason, detail."""
        return [{"key": r.key, "reason": r.reason, "detail": r.detail} for r in self.rejected]


class SourceStep:
    """Raw, then trusted + quarantine, of one source for some landing dates (or all): plans each in turn.

    A context manager: leaving it drops the staged batch.
    """

    def __init__(
        self,
        lake: Lakehouse,
        contract: Contract,
        *,
        landing_dates: Sequence[str] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.lake, self.contract = lake, contract
        self.landing_dates = list(landing_dates) if landing_dates else None
        self.log = log or _log
        self.raw: RawPlan | None = None
        self._trusted = lake.trusted(contract.name)
        self._open = ExitStack()  # trusted's log, opened by the gate and read again by the promotion's plan

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def plan_raw(
        self,
        connection: duckdb.DuckDBPyConnection | None = None,
        *,
        now: dt.datetime | None = None,
        engine: Engine | None = None,
    ) -> RawPlan:
        """Surveys the landing prefix once, parses the new objects and plans raw's writes. Rejections are named
        on the step's log.

        On a cluster (`engine` the `databricks` engine) the survey, the parse and raw's writes are Spark's
        (`zones/raw_cluster.py`); elsewhere the objects are parsed into DuckDB (`connection`, default the
        process's embedded connection)."""
        lake, contract = self.lake, self.contract
        ingested_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        cluster = cluster_of(engine)
        if cluster is None:  # on a cluster trusted's log is Spark's to read: the gate runs where delta-rs may
            self._open.enter_context(self._trusted.opened())
            gate(lake, contract, trusted=self._trusted)  # before raw takes a batch under a contract trusted cannot take
        batch: RawBatch | SparkRawBatch | None = None
        unreadable: list[RejectedObject] = []
        if cluster is not None:
            from medallion_platform.zones.raw_cluster import cluster_survey, stage_on_cluster

            survey = cluster_survey(cluster, lake, contract, self.landing_dates)
            if survey.new:
                batch, unreadable = stage_on_cluster(
                    cluster, lake, contract, survey.new, seq=survey.last_seq + 1, ingested_at=ingested_at
                )
        else:
            if connection is None:
                from medallion_platform.engine.embedded import shared_connection  # raw batches parse in DuckDB

                connection = shared_connection()
            survey = survey_landing(lake, contract, self.landing_dates)
            if survey.new:
                batch, unreadable = stage_batch(
                    lake, contract, connection, survey.new, seq=survey.last_seq + 1, ingested_at=ingested_at
                )
        newly_rejected = [*survey.newly_rejected, *unreadable]
        for item in newly_rejected:
            self.log.warning(f"raw/{contract.name}: rejected landing object {item.describe()}; the other objects go on")
        rejected = sorted([*survey.rejected, *unreadable], key=lambda r: r.key)
        if batch is not None:
            batch.already_ingested = survey.already_ingested
            batch.rejected, batch.newly_rejected = rejected, len(newly_rejected)
        self.raw = RawPlan(
            lake=lake,
            dataset=contract.name,
            survey=survey,
            batch=batch,
            rejected=rejected,
            newly_rejected=len(newly_rejected),
            rejections=rejections_write(lake, contract.name, newly_rejected, ingested_at, cluster),
            write=None if batch is None else raw_write(batch, cluster),
            cluster=cluster,
        )
        return self.raw

    def plan_promotion(self, engine: Engine) -> Promotion | None:
        """Quarantine and trusted's writes for the raw batches trusted has not taken (None: none), from
        the batch in hand when raw's write is done and nothing older is pending. Call after raw's writes."""
        batch = None if self.raw is None else self.raw.batch
        recover_quality(self.lake, self.contract, trusted=self._trusted, engine=engine)  # a killed run's first
        return plan_promotion(
            self.lake, engine, self.contract, landing_dates=self.landing_dates, batch=batch, trusted=self._trusted
        )

    def close(self) -> None:
        """Drops the staged batch (DuckDB frees its memory and spill files) and trusted's opened log."""
        self._open.close()
        if self.raw is not None and self.raw.batch is not None:
            self.raw.batch.drop()
