"""The whole medallion with MEDALLION_ENV=databricks: every step runs on the local Databricks stand-in
through the real dagster-databricks step launcher, on the cluster's Spark session, and every table
holds the same rows as the embedded run of the same landing files."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.automation.materialize import MaterializeReport, materialize_all, medallion_asset_job
from medallion_platform.databricks.standin import LocalDatabricks
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.io_manager import table_for_key
from medallion_platform.settings import Settings

pytestmark = [pytest.mark.databricks, pytest.mark.spark, pytest.mark.slow]

SPEC = SampleSpec(orders=160, customers=30, products=10, days=3)
TABLES = [
    ("raw", "order_events"),
    ("raw", "customers"),
    ("trusted", "order_events"),
    ("trusted", "order_events_quarantine"),
    ("trusted", "customers"),
    ("trusted", "products"),
    ("refined", "daily_revenue"),
    ("refined", "product_performance"),
    ("refined", "customer_lifetime"),
]
NOTEBOOK_KEY = dg.AssetKey(["refined", "daily_revenue_notebook"])
# Set per run: when and in which batch a row was ingested, not what it holds.
RUN_COLUMNS = {"_ingested_at", "_batch_id"}


def _rows(settings: Settings, zone: str, name: str) -> list[tuple]:
    table = table_for_key(settings, dg.AssetKey([zone, name])).read()
    assert table is not None, f"{zone}/{name} was not written"
    columns = [c for c in table.column_names if c not in RUN_COLUMNS]
    return sorted(tuple(str(v) for v in row.values()) for row in table.select(columns).to_pylist())


def _lake(root: Path, **overrides: object) -> Settings:
    settings = Settings.from_env({}, data_dir=root, **overrides)
    generate_sample_data(Path(settings.landing_root), SPEC)
    (root / ".dagster").mkdir()
    return settings


@pytest.fixture(scope="module")
def runs(
    local_databricks: LocalDatabricks, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Settings, MaterializeReport, dg.DagsterInstance]]:
    """The same landing files materialized embedded, and on the stand-in."""
    embedded = _lake(tmp_path_factory.mktemp("embedded"))
    with dg.instance_for_test(temp_dir=str(embedded.data_dir / ".dagster")) as instance:
        assert materialize_all(embedded, instance=instance).success
    remote = _lake(tmp_path_factory.mktemp("on_databricks"), env="databricks")
    environ = {
        "MEDALLION_ENV": "databricks",
        "MEDALLION_DATA_DIR": str(remote.data_dir),
        "DATABRICKS_HOST": local_databricks.host,
        "DATABRICKS_TOKEN": local_databricks.token,
        "MEDALLION_DATABRICKS_CLUSTER_ID": local_databricks.cluster_id,
        "MEDALLION_DATABRICKS_POLL_SECONDS": "0.5",
        "MEDALLION_CATALOG_KIND": "embedded",
    }
    saved = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)
    try:
        with dg.instance_for_test(temp_dir=str(remote.data_dir / ".dagster")) as instance:
            report = materialize_all(remote, instance=instance)
            # and the notebook-built table, through Pipes (fast polling: the defaults are 5 s and 10 s)
            notebooks = {"notebooks": {"config": {"poll_interval_seconds": 0.3, "message_interval_seconds": 0.5}}}
            with dg.execute_job(
                dg.reconstructable(medallion_asset_job),
                instance=instance,
                asset_selection=[NOTEBOOK_KEY],
                run_config={"resources": notebooks, "execution": {"config": {"in_process": {}}}},
                raise_on_error=False,
            ) as notebook_run:
                report.runs.append(("notebook", notebook_run.success))
            yield embedded, remote, report, instance
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_every_step_ran_on_the_cluster_and_succeeded(runs, local_databricks: LocalDatabricks):
    _, _, report, instance = runs
    assert report.runs and report.success, report.runs
    submits = [r for r in local_databricks.requests if r.path == "/api/2.2/jobs/runs/submit"]
    # three source steps and three refined steps, each submitted as a Databricks run, and the notebook
    tasks = [r.body["tasks"][0] for r in submits]  # type: ignore[index]
    assert sum("spark_python_task" in t for t in tasks) == 6, tasks
    assert [t["notebook_task"]["notebook_path"] for t in tasks if "notebook_task" in t] == [
        "/Shared/medallion/refined_table"
    ]
    # each step's events say where it ran: the Databricks run page, as the UI shows it
    urls = set()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is not None and event.is_engine_event and event.engine_event_data.metadata:
                url = event.engine_event_data.metadata.get("databricks_run_url")
                if url is not None:
                    urls.add(str(url.value))
    assert len(urls) == 6 and all(u.startswith(local_databricks.host) for u in urls), urls
    for record in instance.fetch_materializations(dg.AssetKey(["trusted", "order_events"]), limit=10).records:
        metadata = record.asset_materialization.metadata
        assert metadata["reconciled"].value is True
        assert metadata["rows_inserted"].value > 0


@pytest.mark.parametrize(("zone", "name"), TABLES)
def test_every_table_holds_the_embedded_runs_rows(runs, zone: str, name: str):
    embedded, remote, report, _ = runs
    assert report.success, report.runs
    assert _rows(remote, zone, name) == _rows(embedded, zone, name)


def test_the_notebook_builds_daily_revenue_with_the_same_rows_through_pipes(runs):
    _, remote, report, instance = runs
    assert report.success, report.runs
    (record,) = instance.fetch_materializations(NOTEBOOK_KEY, limit=10).records
    metadata = record.asset_materialization.metadata
    assert metadata["rows_written"].value == len(_rows(remote, "refined", "daily_revenue")) > 0
    assert metadata["delta_version"].value == 0
    assert str(metadata["Databricks Job Run URL"].value).startswith("http://127.0.0.1:")
    assert _rows(remote, "refined", "daily_revenue_notebook") == _rows(remote, "refined", "daily_revenue")
