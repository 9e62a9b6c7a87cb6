"""History (SCD type 2) on a cluster (the `databricks` engine, here the stand-in's Sail cluster over its Unity
Catalog): the raw batches it has not taken read by name, its app transactions from the table's ledger, the
stored versions by name, the MERGE and the blocking checks all on the cluster's Spark, with no driver-side
route to table data (delta-rs, DuckDB, boto3, a pyarrow file system); both sample histories (changes and
nightly snapshots) equal the embedded run's, delivery after delivery."""

from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.defs.checks.history import history_check_results
from medallion_platform.engine import EmbeddedEngine
from medallion_platform.engine.base import Engine
from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.history import refresh_history
from medallion_tests.databricks.test_cluster_source_step import cluster_env, driver_data_untouched  # noqa: F401
from medallion_tests.databricks.test_native_writer import _table_rows
from medallion_tests.helpers import jsonl, land
from medallion_tests.zones.test_changes import CUSTOMERS_HEADER, STREAM, _customer

pytestmark = [pytest.mark.databricks, pytest.mark.spark, pytest.mark.usefixtures("cluster_env")]

# payments (changes): out of order across two deliveries, the second re-delivering one change; customers
# (snapshots): two nights, the second changing one customer's segment, adding one and dropping one
DELIVERIES: list[dict[str, tuple[str, str | bytes]]] = [  # per delivery, each source's landing key and object
    {
        "payments": ("2026/11/01/10/firehose-000", jsonl(*STREAM[5:], STREAM[0])),
        "customers": (
            "2026/11/01/customers.csv",
            CUSTOMERS_HEADER
            + _customer(1, "consumer", "2026-10-01T08:00:00Z")
            + _customer(2, "smb", "2026-10-02T08:00:00Z"),
        ),
    },
    {
        "payments": ("2026/11/01/10/firehose-001", jsonl(*STREAM[1:5], STREAM[6])),
        "customers": (
            "2026/11/02/customers.csv",
            CUSTOMERS_HEADER
            + _customer(1, "smb", "2026-11-01T12:00:00Z")
            + _customer(3, "enterprise", "2026-11-01T13:00:00Z"),
        ),
    },
]
SOURCES = ("payments", "customers")


def _deliver(lake: Lakehouse, engine: Engine, contracts, delivery, *, guarded: bool) -> dict[str, dict[str, bool]]:
    """Lands one delivery, runs both source steps and then both histories and their checks (inside the guard
    when `guarded`); each history's check verdicts."""
    for name, (key, body) in delivery.items():
        land(lake.settings, name, key, body)
    for name in SOURCES:
        ingest_and_promote(lake, engine, contracts[name])
    verdicts = {}

    def histories() -> None:
        for name in SOURCES:
            refresh_history(lake, engine, contracts[name])
            key = dg.AssetKey(["trusted", f"{name}_history"])
            checks = history_check_results(lake.history(name), contracts[name], key, engine)
            verdicts[name] = {str(c.check_name): c.passed for c in checks}

    if not guarded:
        histories()
        return verdicts
    with driver_data_untouched() as used:
        histories()
    assert used == []
    return verdicts


def test_history_on_a_cluster_reads_and_writes_through_spark_and_equals_the_embedded_history(
    lake: Lakehouse, engine: DatabricksEngine, contracts, tmp_path: Path
):
    embedded = Lakehouse(Settings.from_env({}, data_dir=tmp_path / "embedded"))
    local = EmbeddedEngine()
    try:
        for n, delivery in enumerate(DELIVERIES):
            on_cluster = _deliver(lake, engine, contracts, delivery, guarded=True)
            assert on_cluster == {
                name: {"one_current_version": True, "versions_do_not_overlap": True} for name in SOURCES
            }, on_cluster
            _deliver(embedded, local, contracts, delivery, guarded=False)
            for name in SOURCES:
                rows = _table_rows(lake.history(name))
                assert rows == _table_rows(embedded.history(name)), (n, name)
    finally:
        local.close()
    assert len(_table_rows(lake.history("payments"))) == len(
        STREAM
    )  # one version per change; the repeated one adds none
    segments = {(r[0], r[4]) for r in _table_rows(lake.history("customers"))}
    assert {("cus-000001", "consumer"), ("cus-000001", "smb"), ("cus-000003", "enterprise")} <= segments

    # nothing new: the history takes nothing and stays as it is
    before = {name: _table_rows(lake.history(name)) for name in SOURCES}
    with driver_data_untouched() as used:
        assert all(refresh_history(lake, engine, contracts[name]) is None for name in SOURCES)
    assert used == []
    assert {name: _table_rows(lake.history(name)) for name in SOURCES} == before


def test_the_cluster_history_checks_fail_on_a_second_current_version(
    lake: Lakehouse, engine: DatabricksEngine, contracts
):
    """A current version written twice (by Spark behind the platform's back) fails one_current_version and
    versions_do_not_overlap, evaluated on the cluster."""
    _deliver(lake, engine, contracts, DELIVERIES[0], guarded=False)
    name = lake.history("payments").name
    engine.spark.sql(f"INSERT INTO {name} SELECT * FROM {name} WHERE is_current AND payment_id = 'pay-00000004'")
    checks = history_check_results(lake.history("payments"), contracts["payments"], dg.AssetKey(["h"]), engine)
    assert {str(c.check_name): (c.passed, c.metadata["violations"].value) for c in checks} == {
        "one_current_version": (False, 1),
        "versions_do_not_overlap": (False, 1),
    }
