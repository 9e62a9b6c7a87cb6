"""The trusted table's blocking contract checks and its warning-level quality checks on a cluster (the
`databricks` engine, here the stand-in's Sail cluster): the same verdicts as DuckDB's over the same table, from
Spark's reading of it, with no driver-side route to table data (delta-rs, DuckDB, boto3, a pyarrow file system).
The tables are written beforehand by delta-rs, so the two engines judge the same files."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from medallion_platform.defs.checks.quality import quality_check_results
from medallion_platform.defs.checks.trusted import contract_check_results
from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import trusted_schema
from medallion_platform.zones.quality import BatchFigures, record_quality
from medallion_tests.databricks.test_cluster_source_step import cluster_env, driver_data_untouched  # noqa: F401
from medallion_tests.zones.test_checks import BREACHES, KEY, _row

pytestmark = [pytest.mark.databricks, pytest.mark.spark, pytest.mark.usefixtures("cluster_env")]


def _verdicts(results: list[dg.AssetCheckResult]) -> dict[str, tuple[bool, object]]:
    return {
        str(r.check_name): (r.passed, r.metadata["violations"].value if "violations" in r.metadata else None)
        for r in results
    }


def _on_the_cluster(check, engine: DatabricksEngine):
    """`check(engine)` inside the guard: nothing on the driver touches table data."""
    with driver_data_untouched() as used:
        results = check(engine)
    assert used == []
    return results


@pytest.mark.parametrize("breach", [*sorted(BREACHES), "none"])
def test_each_contract_check_gives_duckdbs_verdict_on_the_cluster(
    lake: Lakehouse, engine: DatabricksEngine, contracts, breach: str
):
    contract = contracts["order_events"]
    rows = BREACHES.get(breach, [_row(1), _row(2)])
    other_date = _row(9, event_date=dt.date(2026, 11, 2), quantity=0)  # outside the scope checked
    schema = pa.schema([f.with_nullable(True) for f in trusted_schema(contract)])
    table = lake.trusted(contract.name)
    table.append(pa.Table.from_pylist([*rows, other_date], schema=schema), partition_by=["event_date"])

    def check(engine=None):
        return contract_check_results(
            table, contract, KEY, reconciled=True, reconciliation={}, partitions=["2026-11-01"], engine=engine
        )

    on_cluster = _verdicts(_on_the_cluster(check, engine))
    assert on_cluster == _verdicts(check())  # DuckDB over the same files
    failed = {name: bad for name, (passed, bad) in on_cluster.items() if not passed}
    assert failed == ({} if breach == "none" else {breach: 1})


def test_the_quality_checks_give_the_embedded_verdicts_on_the_cluster(
    lake: Lakehouse, engine: DatabricksEngine, contracts
):
    """Six ordinary batches and one where 30 % of the rows fail `allowed`: only that rate warns, on both."""
    contract = contracts["order_events"]
    start = dt.datetime(2026, 11, 2, 1, tzinfo=dt.UTC)
    for n in range(7):
        spike = 30 if n == 6 else 0
        figures = BatchFigures(
            batch=str(n),
            landing_dates="2026-11-02",
            landed=100,
            inserted=98 - spike,
            updated=0,
            in_batch_duplicates=0,
            redeliveries=0,
            late=0,
            quarantined=2 + spike,
            rejected_objects=0,
            quarantine_by_rule={"min": 2, "allowed": spike},
            last_seq=n,
        )
        record_quality(lake, contract, figures, now=start + dt.timedelta(hours=n))

    def check(engine=None):
        return quality_check_results(lake, contract, KEY, engine)

    def verdicts(results):
        return {str(r.check_name): (r.passed, r.metadata["value"].value) for r in results}

    on_cluster = verdicts(_on_the_cluster(check, engine))
    assert on_cluster == verdicts(check())
    assert {name for name, (passed, _) in on_cluster.items() if not passed} == {"quarantine_rate_allowed"}
    assert on_cluster["quarantine_rate_allowed"] == (False, 0.3)
