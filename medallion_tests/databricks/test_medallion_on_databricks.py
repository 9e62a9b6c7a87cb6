"""The whole medallion with MEDALLION_ENV=databricks: every step runs on the local Databricks stand-in
through the real dagster-databricks step launcher, on the cluster's Spark session, and every table
holds the same rows as the embedded run of the same landing files."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.catalog import DataSourceFormat, TableType
from deltalake import DeltaTable, write_deltalake
from medallion_devtools.standins.databricks import STORAGE_CREDENTIAL, LocalDatabricks

from medallion_platform.catalog import CatalogError, TableEntry, build_catalog
from medallion_platform.catalog.account import PLATFORM_PRIVILEGES, provision
from medallion_platform.catalog.unity import UnityCatalog
from medallion_platform.definitions import medallion_asset_job
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.run.materialize import MaterializeReport, materialize_all
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
    ("refined", "segment_revenue"),
    ("trusted", "payments"),
    ("trusted", "payments_history"),
    ("trusted", "customers_history"),
]
NOTEBOOK_KEY = dg.AssetKey(["refined", "daily_revenue_notebook"])
# The notebook asset's compute, one run each after the steps (which run on the existing cluster)
NOTEBOOK_COMPUTE = {
    "a job cluster": {"MEDALLION_DATABRICKS_NODE_TYPE": "m6gd.large", "MEDALLION_DATABRICKS_WORKERS": "2"},
    "serverless": {"MEDALLION_DATABRICKS_NOTEBOOK_COMPUTE": "serverless"},
}
# Keys in the orchestrator's environment that must reach no cluster, no job and no staged file.
ORCHESTRATOR_AWS_KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIAORCHESTRATORONLY",
    "AWS_SECRET_ACCESS_KEY": "orchestrator-secret-key",
}
# Set per run: when and in which batch a row was ingested, not what it holds.
RUN_COLUMNS = {"_ingested_at", "_batch_id"}


def _rows(settings: Settings, zone: str, name: str) -> list[tuple]:
    table = Lakehouse(settings).for_key([zone, name]).read()
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
    strict_databricks: LocalDatabricks, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Settings, MaterializeReport, dg.DagsterInstance]]:
    """The same landing files materialized embedded, and on the stand-in."""
    embedded = _lake(tmp_path_factory.mktemp("embedded"))
    with dg.instance_for_test(temp_dir=str(embedded.data_dir / ".dagster")) as instance:
        assert materialize_all(embedded, instance=instance).success
    remote = _lake(
        tmp_path_factory.mktemp("on_databricks"),
        env="databricks",
        catalog_kind="unity",
        databricks_warehouse_id=strict_databricks.warehouse_id,
    )
    # what the Pulumi program registers on an account, registered by its admin: the zones' external locations (raw
    # read-only), the zone schemas, and the platform principal's grants; the token the run uses is that principal's
    admin = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    provision(admin, remote, credential_name=STORAGE_CREDENTIAL)
    environ = {
        **ORCHESTRATOR_AWS_KEYS,
        "MEDALLION_ENV": "databricks",
        "MEDALLION_DATA_DIR": str(remote.data_dir),
        "DATABRICKS_HOST": strict_databricks.host,
        "DATABRICKS_TOKEN": strict_databricks.token,
        "MEDALLION_DATABRICKS_CLUSTER_ID": strict_databricks.cluster_id,
        "MEDALLION_DATABRICKS_POLL_SECONDS": "0.5",
        "MEDALLION_DATABRICKS_WAREHOUSE_ID": strict_databricks.warehouse_id,
        "MEDALLION_DATABRICKS_VOLUME": strict_databricks.volume_paths[0],
    }
    saved = {k: os.environ.get(k) for k in [*environ, *(k for env in NOTEBOOK_COMPUTE.values() for k in env)]}
    os.environ.update(environ)
    try:
        with dg.instance_for_test(temp_dir=str(remote.data_dir / ".dagster")) as instance:
            report = materialize_all(remote, instance=instance)
            # and the notebook-built table, through Pipes (fast polling: the defaults are 5 s and 10 s): on a job
            # cluster of the steps' node type, then on serverless compute
            notebooks = {"notebooks": {"config": {"poll_interval_seconds": 0.3, "message_interval_seconds": 0.5}}}
            del os.environ["MEDALLION_DATABRICKS_CLUSTER_ID"]
            for compute, env in NOTEBOOK_COMPUTE.items():
                os.environ.update(env)
                with dg.execute_job(
                    dg.reconstructable(medallion_asset_job),
                    instance=instance,
                    asset_selection=[NOTEBOOK_KEY],
                    run_config={"resources": notebooks},
                    raise_on_error=False,
                ) as notebook_run:
                    report.runs.append((f"notebook on {compute}", notebook_run.success))
            yield embedded, remote, report, instance
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_every_step_ran_on_the_cluster_and_succeeded(runs, strict_databricks: LocalDatabricks):
    _, _, report, instance = runs
    assert report.runs and report.success, report.runs
    submits = [r for r in strict_databricks.requests if r.path == "/api/2.2/jobs/runs/submit"]
    # four source steps, two histories and four refined steps, each submitted as a Databricks run, and the notebook
    tasks = [r.body["tasks"][0] for r in submits]  # type: ignore[index]
    assert sum("spark_python_task" in t for t in tasks) == 10, tasks
    notebooks = [t for t in tasks if "notebook_task" in t]
    assert [t["notebook_task"]["notebook_path"] for t in notebooks] == ["/Shared/medallion/refined_table"] * 2
    # on a job cluster of the steps' nodes in standard access mode (a notebook needs only `spark`), then serverless
    job_cluster, serverless = notebooks
    assert {k: job_cluster["new_cluster"].get(k) for k in ("node_type_id", "num_workers", "data_security_mode")} == {
        "node_type_id": "m6gd.large",
        "num_workers": 2,
        "data_security_mode": "USER_ISOLATION",
    }
    assert not {"new_cluster", "existing_cluster_id", "libraries"} & set(serverless), serverless
    assert all("existing_cluster_id" in t for t in tasks if "spark_python_task" in t)
    # each step's events say where it ran: the Databricks run page, as the UI shows it
    urls = set()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is not None and event.is_engine_event and event.engine_event_data.metadata:
                url = event.engine_event_data.metadata.get("databricks_run_url")
                if url is not None:
                    urls.add(str(url.value))
    assert len(urls) == 10 and all(u.startswith(strict_databricks.host) for u in urls), urls
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
    # newest first: the job cluster built the table; serverless found it up to date and wrote nothing
    serverless, job_cluster = (
        {k: v.value for k, v in r.asset_materialization.metadata.items()}
        for r in instance.fetch_materializations(NOTEBOOK_KEY, limit=10).records
    )
    assert (job_cluster["refresh"], job_cluster["delta_version"]) == ("rebuild", 0)
    assert job_cluster["rows_written"] == len(_rows(remote, "refined", "daily_revenue")) > 0
    assert (serverless["refresh"], serverless["rows_written"], serverless["delta_version"]) == ("unchanged", 0, 0)
    for metadata in (job_cluster, serverless):
        assert str(metadata["Databricks Job Run URL"]).startswith("http://127.0.0.1:")
    assert _rows(remote, "refined", "daily_revenue_notebook") == _rows(remote, "refined", "daily_revenue")


EXPECTED_NAMES = {f"medallion.{zone}.{name}" for zone, name in TABLES} | {
    "medallion.trusted.customers_quarantine",
    "medallion.trusted.products_quarantine",
    "medallion.raw.products",
    "medallion.refined.daily_revenue_notebook",
    "medallion.trusted.order_events_quality",
    "medallion.trusted.customers_quality",
    "medallion.trusted.products_quality",
    "medallion.raw.payments",
    "medallion.trusted.payments_quarantine",
    "medallion.trusted.payments_quality",
}


def test_no_request_names_dbfs_or_carries_a_credential(runs, strict_databricks: LocalDatabricks):
    """Staging, the notebook's code and Pipes go through the volume; no token travels to a cluster (the drivers use
    their cluster's own identity): checked on every request the stand-in received, uploads included."""
    _, _, report, _ = runs
    assert report.success, report.runs
    requests = strict_databricks.requests
    uploads = [r for r in requests if r.method == "PUT" and r.path.startswith("/api/2.0/fs/files/Volumes/")]
    staged = {r.path.rsplit("/", 1)[-1] for r in uploads}
    assert {"databricks_step_main.py", "config.pkl", "step_run_ref.pkl", "code.zip", "context.json"} <= staged, staged
    tokens = [strict_databricks.token.encode(), b"dapi-cluster-"]  # the orchestrator's, any cluster's
    tokens += [v.encode() for v in ORCHESTRATOR_AWS_KEYS.values()]  # and the orchestrator's AWS keys
    dbfs_paths = (b"dbfs:/", b"/dbfs/", b"/api/2.0/dbfs")
    for request in requests:
        sent = request.path.encode() + repr(request.query).encode() + repr(request.body).encode()
        # staged data (the pickled config and step, Pipes' context), not code: the step's own main file and the
        # package mention DBFS and read DATABRICKS_TOKEN
        data = b"" if request.path.endswith((".py", ".zip")) else request.data
        assert not [p for p in dbfs_paths if p in sent + data], (request.method, request.path)
        assert b"DATABRICKS_TOKEN" not in sent + data, (request.method, request.path)
        assert not [t for t in tokens if t in sent + request.data], (request.method, request.path)


def _workspace(dbx: LocalDatabricks) -> WorkspaceClient:
    return WorkspaceClient(host=dbx.host, token=dbx.token, auth_type="pat")


def test_every_table_is_registered_in_unity_catalog_as_written(runs, strict_databricks: LocalDatabricks):
    _, remote, report, _ = runs
    assert report.success, report.runs
    w = _workspace(strict_databricks)
    catalog = UnityCatalog(remote, client=w)
    assert set(catalog.entries()) == EXPECTED_NAMES
    for name in EXPECTED_NAMES:
        _, zone, table = name.split(".")
        info = w.tables.get(name)
        assert info.table_type == TableType.EXTERNAL and info.data_source_format == DataSourceFormat.DELTA
        assert info.storage_location == remote.table_uri(zone, table)
        delta = Lakehouse(remote).for_key([zone, table]).table()
        assert [c.name for c in info.columns or []] == [f.name for f in pa.schema(delta.schema().to_arrow())]
        assert info.comment
    customers = w.tables.get("medallion.trusted.customers")
    assert customers.owner == "team:crm-data"
    assert w.tables.get("medallion.raw.customers").owner == remote.platform_principal
    assert {c.name: c.comment for c in customers.columns or []}["email"]
    tags = w.api_client.do(
        "GET", "/api/2.1/unity-catalog/entity-tag-assignments/columns/medallion.trusted.customers.email/tags"
    )
    assert {t["tag_key"]: t.get("tag_value") for t in tags["tag_assignments"]} == {"pii": "true"}
    # the contract's access: masks on its personal data and a row filter, on trusted and its quarantine
    for table in ("customers", "customers_quarantine"):
        info = w.tables.get(f"medallion.trusted.{table}")
        masked = {c.name: c.mask.function_name for c in info.columns or [] if c.mask}
        assert masked == dict.fromkeys(("name", "email"), f"medallion.trusted.{table}__mask_string")
        assert info.row_filter is not None and info.row_filter.input_column_names == ["country"]


def test_zone_grants_come_from_settings_and_raw_is_readable_only_by_the_platform(runs, strict_databricks):
    _, remote, _, _ = runs
    catalog = UnityCatalog(remote, client=_workspace(strict_databricks))
    platform = remote.platform_principal
    grants = {zone: catalog.grants(zone) for zone in ("raw", "trusted", "refined")}
    assert {zone: sorted(g.pop(platform)) for zone, g in grants.items()} == {
        zone: sorted(p) for zone, p in PLATFORM_PRIVILEGES.items()
    }
    assert grants["refined"] == {
        "analysts": ["SELECT", "USE_SCHEMA"],
        "data-engineers": ["SELECT", "USE_SCHEMA"],
    }
    assert grants["trusted"] == {"data-engineers": ["SELECT", "USE_SCHEMA"]}
    assert grants["raw"] == {}


def test_sql_resolves_names_through_unity_catalog(runs, strict_databricks):
    embedded, remote, _, _ = runs
    query = "SELECT count(*) AS n, sum(units) AS units FROM medallion.refined.daily_revenue"
    through_unity = UnityCatalog(remote, client=_workspace(strict_databricks)).sql(query).to_pylist()
    assert through_unity == build_catalog(embedded).sql(query).to_pylist()
    assert through_unity[0]["n"] > 0


def test_re_registration_is_idempotent_and_a_new_column_shows_after_the_sync(runs, strict_databricks):
    _, remote, _, _ = runs
    w = _workspace(strict_databricks)
    catalog = UnityCatalog(remote, client=w)
    entry = TableEntry(description="Products, typed.", owner="team:erp-data", pii=())
    schema = pa.schema(trusted_schema_of(remote, "products"))
    before = w.tables.get("medallion.trusted.products")
    mark = len(strict_databricks.requests)
    catalog.register("trusted", "products", schema=schema, entry=entry)
    catalog.register("trusted", "products", schema=schema, entry=entry)
    statements = [
        r.body["statement"] for r in strict_databricks.requests[mark:] if r.path == "/api/2.0/sql/statements/"
    ]
    assert not [s for s in statements if s.startswith(("CREATE", "MSCK"))], statements
    assert [c.name for c in w.tables.get("medallion.trusted.products").columns] == [c.name for c in before.columns]
    # the contract gains a nullable column, written by delta-rs: Unity Catalog learns it at the next registration
    uri = remote.table_uri("trusted", "products")
    extra = DeltaTable(uri).to_pyarrow_table().slice(0, 1)
    extra = extra.append_column("supplier", pa.array(["acme"], pa.string()))
    write_deltalake(uri, extra, mode="append", schema_mode="merge")
    assert "supplier" not in [c.name for c in w.tables.get("medallion.trusted.products").columns]
    catalog.register("trusted", "products", schema=extra.schema, entry=entry)
    assert [c.name for c in w.tables.get("medallion.trusted.products").columns][-1] == "supplier"


def test_a_missing_warehouse_or_an_unknown_principal_is_one_clear_error(runs, strict_databricks):
    _, remote, _, _ = runs
    w = _workspace(strict_databricks)
    entry = TableEntry(description="d", owner="team:erp-data")
    schema = pa.schema(trusted_schema_of(remote, "customers"))
    no_warehouse = UnityCatalog(remote.model_copy(update={"databricks_warehouse_id": None}), client=w)
    with pytest.raises(CatalogError, match=r"medallion\.trusted\.customers.*MEDALLION_DATABRICKS_WAREHOUSE_ID"):
        no_warehouse.register("trusted", "customers", schema=schema, entry=entry)
    wrong = UnityCatalog(remote.model_copy(update={"databricks_warehouse_id": "0000deadbeef"}), client=w)
    with pytest.raises(CatalogError, match="MEDALLION_DATABRICKS_WAREHOUSE_ID=0000deadbeef"):
        wrong.execute("COMMENT ON TABLE medallion.trusted.customers IS 'x'", subject="medallion.trusted.customers")
    denied = UnityCatalog(remote.model_copy(update={"grants": {"refined": {"nobody-we-know": ["SELECT"]}}}), client=w)
    with pytest.raises(CatalogError, match=r"medallion\.refined.*MEDALLION_GRANTS"):
        denied.apply_grants("refined")


def trusted_schema_of(settings: Settings, name: str) -> pa.Schema:
    delta = Lakehouse(settings).for_key(["trusted", name]).table()
    assert delta is not None
    return pa.schema(delta.schema().to_arrow())
