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
from medallion_tests.helpers import event, jsonl, land
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


def _quality(lake: Lakehouse, dataset: str) -> dict[str, dict[tuple[str, str | None], int]]:
    """Each recorded batch's figures (read by delta-rs, outside any guard)."""
    table = lake.quality(dataset).read()
    figures: dict[str, dict[tuple[str, str | None], int]] = {}
    for r in [] if table is None else table.to_pylist():
        figures.setdefault(r["batch"], {})[(r["figure"], r["rule"])] = r["value"]
    return figures


CUSTOMERS = "customer_id,name,email,country,segment,updated_at\n"
KILLED = {
    "order_events": [
        ("2026/11/02/09/batch-1", jsonl(event(1), event(2, quantity=0), event(3))),
        ("2026/11/02/10/batch-2", jsonl(event(3), event(4), event(5, currency="JPY"))),  # event 3 again
    ],
    "customers": [  # a MERGE: the second export updates one customer and repeats the other
        (
            "2026/11/01/c.csv",
            CUSTOMERS + "cus-000001,Ana,a@example.com,DE,smb,2026-11-01T00:00:00Z\n"
            "cus-000002,Bo,b@example.com,DE,smb,2026-11-01T00:00:00Z\n",
        ),
        (
            "2026/11/02/c.csv",
            CUSTOMERS + "cus-000001,Ana,a@example.com,DE,enterprise,2026-11-02T00:00:00Z\n"
            "cus-000002,Bo,b@example.com,DE,smb,2026-11-01T00:00:00Z\n",
        ),
    ],
}


@pytest.mark.parametrize("dataset", sorted(KILLED))
def test_a_cluster_run_killed_before_the_quality_append_leaves_its_figures_to_the_next_run(
    lake: Lakehouse, engine: DatabricksEngine, contracts, monkeypatch, tmp_path, dataset: str
):
    """The driver dies after trusted's commit and its ledger row, before the batch's quality append: the next
    source step on the cluster appends the figures from trusted's ledger, once, equal to an unbroken run's."""
    import medallion_platform.zones.trusted as trusted
    from medallion_platform.engine import EmbeddedEngine
    from medallion_platform.settings import Settings
    from medallion_platform.zones.flow import ingest_and_promote

    contract = contracts[dataset]
    (first_key, first), (second_key, second) = KILLED[dataset]
    land(lake.settings, dataset, first_key, first)
    ingest_and_promote(lake, engine, contract)
    land(lake.settings, dataset, second_key, second)

    def killed(*args, **kwargs):
        raise SystemExit("killed after trusted's commit")

    with monkeypatch.context() as patched:
        patched.setattr(trusted, "record_quality", killed)
        with pytest.raises(SystemExit):
            ingest_and_promote(lake, engine, contract)
    assert sorted(_quality(lake, dataset)) == ["0"]  # the kill lost the second batch's append

    with driver_data_untouched() as used:
        _, rerun = ingest_and_promote(lake, engine, contract)
        assert rerun.skipped  # nothing left to promote, yet the batch's figures are appended
        ingest_and_promote(lake, engine, contract)  # once only
    assert used == []

    unbroken = Lakehouse(Settings.from_env({}, data_dir=tmp_path / "unbroken"))
    local = EmbeddedEngine()
    try:
        for key, body in KILLED[dataset]:
            land(unbroken.settings, dataset, key, body)
            ingest_and_promote(unbroken, local, contract)
    finally:
        local.close()
    expected = _quality(unbroken, dataset)
    assert sorted(expected) == ["0", "1"]
    assert _quality(lake, dataset) == expected
