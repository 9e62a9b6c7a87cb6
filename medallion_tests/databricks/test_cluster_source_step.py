"""The source step on a cluster (the `databricks` engine, here the stand-in's Sail cluster over its Unity
Catalog): landing listed and parsed by Spark, raw appended by name, raw's ledger read and written by Spark,
trusted and quarantine promoted from raw read back by name; and no driver-side route to table or landing data
(delta-rs, DuckDB, boto3, a pyarrow file system) used on the way."""

import ast
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import write_raw
from medallion_platform.zones.source_step import SourceStep
from medallion_platform.zones.trusted import write_promotion
from medallion_tests.databricks.test_native_writer import _landed, _table_rows
from medallion_tests.helpers import event, jsonl, land

pytestmark = [pytest.mark.databricks, pytest.mark.spark]

ORDER_TABLES = ("order_events", "order_events_quarantine")

TABLES = [("raw", "order_events"), ("raw", "order_events_rejected"), *(("trusted", n) for n in ORDER_TABLES)]
CLUSTER_MODULES = ["zones/raw_cluster.py", "zones/raw_spark_parse.py"]
DRIVER_DATA_LIBRARIES = ("deltalake", "duckdb", "boto3", "botocore", "pyarrow.fs", "pyarrow.dataset", "s3fs")


def test_the_cluster_side_modules_import_no_driver_side_data_library():
    """raw's cluster path imports none of the libraries a driver would read table or landing data with."""
    import medallion_platform

    root = Path(medallion_platform.__file__).parent
    found = {}
    for module in CLUSTER_MODULES:
        tree = ast.parse((root / module).read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        bad = [n for n in names if n.startswith(DRIVER_DATA_LIBRARIES)]
        if bad:
            found[module] = bad
    assert found == {}


@contextmanager
def driver_data_untouched() -> Iterator[list[str]]:
    """Within the block, every driver-side route to table or landing data raises in this thread: opening or
    writing a table with delta-rs, a DuckDB connection (the project's shared one included), a boto3 client, a
    pyarrow file system (the project's `filesystem_for`, `pyarrow.dataset`). Other threads (the in-process
    stand-in's warehouse, which runs delta-rs as Databricks' warehouse runs Delta) are left alone. Yields the
    routes used, so a use the code caught and swallowed is reported too. No route is let through: even Sail's
    `partition_order` divergence is worked around by Spark SQL on the cluster."""
    import boto3
    import boto3.session
    import deltalake
    import duckdb
    import pyarrow.dataset

    import medallion_platform.engine.embedded as embedded
    import medallion_platform.ingestion.landing as landing
    import medallion_platform.lake.delta_io as delta_io
    import medallion_platform.lake.storage as storage

    me = threading.get_ident()
    used: list[str] = []
    targets: list[tuple[Any, str]] = [
        (deltalake.DeltaTable, "__init__"),
        (deltalake, "write_deltalake"),
        (delta_io, "write_deltalake"),
        (delta_io, "create_table_with_add_actions"),
        (deltalake.DeltaTable, "create"),
        (duckdb, "connect"),
        (embedded, "shared_connection"),
        (boto3, "client"),
        (boto3, "resource"),
        (boto3.session.Session, "client"),
        (boto3.session.Session, "resource"),
        (storage, "filesystem_for"),
        (landing, "filesystem_for"),
        (pyarrow.dataset, "dataset"),
    ]

    def guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == me:
                used.append(name)
                raise AssertionError(f"{name} used on the driver in the cluster path")
            return original(*args, **kwargs)

        return guarded

    saved = [(owner, attr, getattr(owner, attr)) for owner, attr in targets]
    for owner, attr, original in saved:
        setattr(owner, attr, guard(f"{getattr(owner, '__name__', owner)}.{attr}", original))
    try:
        yield used
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


@pytest.fixture
def cluster_env(local_databricks, monkeypatch, engine: DatabricksEngine, lake: Lakehouse) -> Iterator[None]:
    """The catalog's client as a driver has it (the stand-in's host and token in the environment), and no
    `order_events` table in the writer tests' catalog before or after the test (the catalog outlives a lake)."""
    for key, value in local_databricks.environ().items():
        if key.startswith("DATABRICKS_"):
            monkeypatch.setenv(key, value)

    def drop() -> None:
        for zone, name in [*TABLES, ("trusted", "order_events_quality")]:
            engine.spark.sql(f"DROP TABLE IF EXISTS {lake.settings.table_name(zone, name)}")

    drop()
    yield
    drop()


def _hostile(settings: Settings) -> None:
    """A good object, a gzip that does not decompress and an object outside the dated layout."""
    _landed(settings)
    land(settings, "order_events", "2026/11/02/09/batch-2", jsonl(event(7), event(8, quantity=3)))
    land(settings, "order_events", "2026/11/02/09/broken.gz", b"\x1f\x8bnot gzip at all")
    land(settings, "order_events", "stray-object", jsonl(event(9)))


def _embedded_run(tmp_path: Path, contract) -> Lakehouse:
    from medallion_platform.engine import EmbeddedEngine
    from medallion_platform.zones.flow import ingest_and_promote

    embedded_lake = Lakehouse(Settings.from_env({}, data_dir=tmp_path / "embedded"))
    _hostile(embedded_lake.settings)
    local = EmbeddedEngine()
    try:
        ingest_and_promote(embedded_lake, local, contract)
    finally:
        local.close()
    return embedded_lake


def _rejections(lake: Lakehouse) -> list[tuple[str, str]]:
    rows = lake.rejected("order_events").read()
    return sorted((r["source_file"], r["reason"]) for r in rows.to_pylist()) if rows is not None else []


def test_raw_on_a_cluster_is_spark_end_to_end_and_equals_the_embedded_raw(
    lake: Lakehouse, engine: DatabricksEngine, contracts, cluster_env, tmp_path: Path
):
    """Survey, parse, raw's append, the rejections and the ingest log, with no driver-side data route; then
    trusted and quarantine from raw read back by name: every table equals the embedded run's, and a second
    run finds nothing new."""
    contract = contracts["order_events"]
    _hostile(lake.settings)
    with driver_data_untouched() as used, SourceStep(lake, contract) as step:
        plan = step.plan_raw(engine=engine)
        assert plan.cluster is engine and plan.batch is not None
        assert not hasattr(plan.batch, "connection")  # not staged in the driver's DuckDB
        raw = write_raw(lake, plan)
        promoted = write_promotion(lake, contract, step.plan_promotion(engine))
    assert used == []
    assert (raw.rows, len(raw.files), raw.malformed, raw.newly_rejected) == (7, 2, 1, 2)
    assert promoted.reconciled and not promoted.built_from_batch

    embedded_lake = _embedded_run(tmp_path, contract)
    for key in (["raw", "order_events"], ["trusted", "order_events"], ["trusted", "order_events_quarantine"]):
        assert _table_rows(lake.for_key(key)) == _table_rows(embedded_lake.for_key(key)), key
    assert _rejections(lake) == _rejections(embedded_lake)
    logged = lake.ingest_log("order_events").read().select(["source_file", "rows", "batch_seq"])
    expected = embedded_lake.ingest_log("order_events").read().select(["source_file", "rows", "batch_seq"])
    assert sorted(logged.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)

    with driver_data_untouched() as used, SourceStep(lake, contract) as step:
        again = step.plan_raw(engine=engine)
        write_raw(lake, again)
        assert write_promotion(lake, contract, step.plan_promotion(engine)).skipped
    assert used == []
    assert again.nothing_new and again.survey.already_ingested == 2 and again.newly_rejected == 0
    assert _table_rows(lake.raw("order_events")) == _table_rows(embedded_lake.raw("order_events"))


def test_the_guard_catches_the_driver_side_path(lake: Lakehouse, engine: DatabricksEngine, contracts, cluster_env):
    """The same step without the cluster engine (the driver's survey and DuckDB parse) trips the guard."""
    _landed(lake.settings)
    with (
        pytest.raises(AssertionError, match="used on the driver"),
        driver_data_untouched() as used,
        SourceStep(lake, contracts["order_events"]) as step,
    ):
        step.plan_raw()
    assert used


# A driver on the cluster (its own process, a Spark Connect session to the stand-in's Sail server) running the
# whole source step, killed with SIGKILL at a point named by argv[2]: right after raw's MERGE committed (before
# the ingest log's append), or right after quarantine's data commit (before its app transaction is recorded).
DRIVER = """
import json, os, signal, sys
os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
from pyspark.sql.connect.session import SparkSession
from medallion_platform.contracts import load_contracts
from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.write import writers
from medallion_platform.zones import source_step
from medallion_platform.zones.flow import ingest_and_promote

config = json.loads(sys.argv[1])
spark = SparkSession.builder.remote(config.pop("remote")).create()
spark.conf.set("spark.sql.session.timeZone", "UTC")

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

owner, name = {"raw": (source_step, "log_write"), "quarantine": (writers, "record_transactions")}[sys.argv[2]]
setattr(owner, name, die)
lake = Lakehouse(Settings.from_env({}, **config))
ingest_and_promote(lake, DatabricksEngine(spark), load_contracts()["order_events"])
print("not killed")
"""


@pytest.mark.parametrize("killed_after", ["raw", "quarantine"])
def test_a_driver_killed_mid_step_reruns_without_duplicates_or_gaps(
    lake: Lakehouse, engine: DatabricksEngine, contracts, cluster_env, local_databricks, tmp_path: Path, killed_after
):
    """A real kill of the driver process on the cluster path, after raw's MERGE (the ingest log not written) or
    after quarantine's commit (its app transaction not recorded); the rerun leaves raw, the ingest log,
    quarantine and trusted equal to the embedded run's: no duplicate, no gap."""
    import json
    import os
    import signal
    import subprocess
    import sys

    contract = contracts["order_events"]
    _hostile(lake.settings)
    settings = lake.settings
    config = {
        "remote": local_databricks.engine.remote,
        "data_dir": str(settings.data_dir),
        "env": "databricks",
        "catalog_kind": "unity",
        "catalog_name": settings.catalog_name,
        "catalog_storage_root": str(settings.catalog_storage_root),
        "databricks_warehouse_id": settings.databricks_warehouse_id,
    }
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(config), killed_after],
        env=environ,
        capture_output=True,
        timeout=300,
    )
    assert driver.returncode == -signal.SIGKILL, driver.stderr.decode()[-3000:]
    raw_rows = _table_rows(lake.raw("order_events"))
    assert len(raw_rows) == 7  # raw committed before the kill
    if killed_after == "raw":
        assert lake.ingest_log("order_events").read() is None  # the kill came before the log's append
    else:
        assert lake.quarantine("order_events").read().num_rows > 0  # committed, its batch not recorded

    with SourceStep(lake, contract) as step:
        rerun = write_raw(lake, step.plan_raw(engine=engine))
        promoted = write_promotion(lake, contract, step.plan_promotion(engine))
    assert rerun.rows == 0 and promoted.reconciled

    embedded_lake = _embedded_run(tmp_path, contract)
    for key in (["raw", "order_events"], ["trusted", "order_events"], ["trusted", "order_events_quarantine"]):
        assert _table_rows(lake.for_key(key)) == _table_rows(embedded_lake.for_key(key)), key
    logged = lake.ingest_log("order_events").read().select(["source_file", "rows", "batch_seq"])
    expected = embedded_lake.ingest_log("order_events").read().select(["source_file", "rows", "batch_seq"])
    assert sorted(logged.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)
