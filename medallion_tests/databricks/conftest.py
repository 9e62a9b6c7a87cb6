"""Local Databricks stand-ins per test session, with the SDK isolated from any `~/.databrickscfg`: a classic
workspace with DBFS root (`legacy=True`) for dagster-databricks' own DBFS launcher and Pipes DBFS channel, a strict
one (as a new account: no DBFS, a staging volume, its token the platform principal's with no more privileges than the
account grants it) for the platform, and for Unity Catalog tests, one whose tables may live on the session's local S3
(moto). The classic and the Unity Catalog ones are older workspaces: their user is a metastore admin, and one
external location covers the session's temporary folders (and S3)."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from medallion_devtools.local_aws import EMULATOR_CREDENTIALS, LocalAws
from medallion_devtools.standins.databricks import DEFAULT_CURRENT_USER, LocalDatabricks

from medallion_platform.engine.databricks import DatabricksEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.entries import governed_principals
from medallion_tests.catalog.access_cases import EXPECTED as READERS
from medallion_tests.catalog.access_cases import reader_groups
from medallion_tests.ingestion.aws import conftest as aws_fixtures

# The session's moto server (the AWS tests' fixture, shared rather than copied).
local_aws = aws_fixtures.local_aws

# The catalog the native writer's tests use on the stand-in's cluster engine, apart from the whole medallion's.
WRITER_TESTS_CATALOG = "medallion_writer_tests"

# Principals the Unity Catalog stand-in knows, besides its current user.
UNITY_PRINCIPALS = ("data-engineers", "analysts@example.com")

# The staging volume the strict stand-in's set-up creates, as the Pulumi registration creates it on an account.
STAGING_VOLUME = "medallion.platform.staging"

# The tiny package the step launcher zips and ships (`local_pipeline_package_path`); importable here too,
# so the jobs it defines are reconstructable on both sides.
REMOTE_CODE = Path(__file__).parent / "remote_code"


def _platform_principal() -> str:
    return Settings.from_env({}, data_dir=Path("/nonexistent")).platform_principal


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, **options: object) -> Iterator[LocalDatabricks]:
    isolated = {"DATABRICKS_CONFIG_FILE": str(tmp_path_factory.mktemp(f"no-databrickscfg-{name}") / "absent")}
    saved = {k: os.environ.get(k) for k in isolated}
    os.environ.update(isolated)
    sys.path.insert(0, str(REMOTE_CODE))
    dbx = LocalDatabricks(
        root=tmp_path_factory.mktemp(name),
        max_run_seconds=300,
        principals=governed_principals(Settings.from_env({}, data_dir=tmp_path_factory.getbasetemp()))
        | set(options.pop("principals", ())),  # type: ignore[call-overload]
        **options,  # type: ignore[arg-type]
        cluster_catalogs=("medallion", WRITER_TESTS_CATALOG),
    )
    try:
        yield dbx.start()
    finally:
        dbx.stop()
        sys.path.remove(str(REMOTE_CODE))
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="session")
def local_databricks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDatabricks]:
    """A classic workspace with DBFS root (`legacy=True`), serving for the whole run: the tests of
    dagster-databricks' DBFS step launcher and Pipes DBFS channel use it on purpose."""
    yield from _serve(
        tmp_path_factory,
        "databricks",
        legacy=True,
        metastore_admins=(DEFAULT_CURRENT_USER,),
        external_locations={"session": f"file://{tmp_path_factory.getbasetemp()}"},
    )


@pytest.fixture(scope="session")
def strict_databricks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDatabricks]:
    """A stand-in as strict as a new account (no DBFS root), with the platform's staging volume; its token is the
    platform principal's, which may create catalogs (an account that lets the platform create its own; the Pulumi
    program creates it instead) and nothing else until a test registers what the account grants
    (`catalog.account.provision`, as `strict_databricks.admin_token`)."""
    platform = _platform_principal()
    yield from _serve(
        tmp_path_factory,
        "databricks-strict",
        volumes=(STAGING_VOLUME,),
        current_user=platform,
        metastore_privileges={platform: ["CREATE_CATALOG"]},
        # The readers of the masks and row filters' test (test_unity_access.py), and their groups.
        principals={reader for reader, _ in READERS},
        groups=reader_groups(),
    )


@pytest.fixture
def workspace(local_databricks: LocalDatabricks) -> WorkspaceClient:
    """The real SDK client, pointed at the stand-in with a PAT."""
    return WorkspaceClient(host=local_databricks.host, token=local_databricks.token, auth_type="pat")


@pytest.fixture(scope="session")
def s3_storage_options(local_aws: LocalAws) -> dict[str, str]:
    """delta-rs storage options for the moto S3 server (plain HTTP on loopback)."""
    return {
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_REGION": local_aws.region,
        "AWS_ALLOW_HTTP": "true",
        **EMULATOR_CREDENTIALS,
    }


@pytest.fixture(scope="session")
def unity_databricks(
    tmp_path_factory: pytest.TempPathFactory, s3_storage_options: dict[str, str]
) -> Iterator[LocalDatabricks]:
    """A stand-in whose Unity Catalog reads (and vends credentials for) tables on the moto S3 server."""
    isolated = {"DATABRICKS_CONFIG_FILE": str(tmp_path_factory.mktemp("no-databrickscfg-uc") / "absent")}
    saved = {k: os.environ.get(k) for k in isolated}
    os.environ.update(isolated)
    dbx = LocalDatabricks(
        root=tmp_path_factory.mktemp("databricks-uc"),
        storage_options=s3_storage_options,
        principals=UNITY_PRINCIPALS,
        metastore_storage_root="s3://metastore-root",  # an older metastore, with root storage
        metastore_admins=(DEFAULT_CURRENT_USER,),
        external_locations={"session": f"file://{tmp_path_factory.getbasetemp()}", "s3": "s3://"},
        cluster_engine=False,  # runs no driver: one Sail server per test run (the other stand-in's)
    )
    try:
        yield dbx.start()
    finally:
        dbx.stop()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture
def unity_workspace(unity_databricks: LocalDatabricks) -> WorkspaceClient:
    """The real SDK client, pointed at the Unity Catalog stand-in."""
    return WorkspaceClient(host=unity_databricks.host, token=unity_databricks.token, auth_type="pat")


# The cluster engine and a lake on the stand-in's Unity Catalog, for the tests of what runs on a cluster.
@pytest.fixture(scope="module")
def engine(local_databricks: LocalDatabricks) -> Iterator[DatabricksEngine]:
    """A Spark Connect session to the stand-in's cluster engine, as a driver has; the process's classic PySpark
    works again afterwards (pyspark marks the whole process as Spark Connect while a remote session is open)."""
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    assert local_databricks.engine is not None
    marked = "SPARK_CONNECT_MODE_ENABLED" in os.environ
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # `pyspark.sql.functions` builds Connect columns while it is set
    # Connect's own builder, a new session: pyspark's refuses one while the run's classic session is up, and
    # getOrCreate would hand back another test's session to another server
    spark = RemoteSparkSession.builder.remote(local_databricks.engine.remote).create()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        yield DatabricksEngine(spark)
    finally:
        spark.stop()
        if not marked:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


@pytest.fixture
def lake(tmp_path: Path, local_databricks: LocalDatabricks) -> Lakehouse:
    """A lake whose catalog is the stand-in's Unity Catalog (the writer tests' catalog), in the test's folder. The
    catalog outlives a lake: the tables an earlier test registered (at its own folder) are dropped first."""
    client = WorkspaceClient(host=local_databricks.host, token=local_databricks.token, auth_type="pat")
    if WRITER_TESTS_CATALOG in {c.name for c in client.catalogs.list()}:
        for schema in client.schemas.list(catalog_name=WRITER_TESTS_CATALOG):
            for table in client.tables.list(catalog_name=WRITER_TESTS_CATALOG, schema_name=schema.name or ""):
                client.tables.delete(table.full_name or "")
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        env="databricks",
        catalog_kind="unity",
        catalog_name=WRITER_TESTS_CATALOG,
        # a new account's metastore has no root storage: the catalog names its managed location
        catalog_storage_root=str(tmp_path / "catalog-managed"),
        databricks_warehouse_id=local_databricks.warehouse_id,
    )
    return Lakehouse(settings)
