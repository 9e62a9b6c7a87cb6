"""Unity Catalog registration on a metastore as a new account has it (the strict stand-in: no root storage): the
catalog is created with its managed location, and PII tags are set only when they differ (read back first)."""

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from deltalake import write_deltalake
from medallion_devtools.standins.databricks import LocalDatabricks

from medallion_platform.catalog import CatalogError, TableEntry
from medallion_platform.catalog.unity import UnityCatalog
from medallion_platform.settings import Settings
from medallion_tests.databricks.helpers import PLATFORM_MANAGED_STORAGE, let_the_platform_create_catalogs

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]

PEOPLE = pa.table({"id": pa.array([1, 2], pa.int64()), "email": pa.array(["a@x", "b@x"], pa.string())})


def _settings(tmp_path, dbx: LocalDatabricks, catalog: str, **overrides: object) -> Settings:
    return Settings.from_env(
        {"MEDALLION_CATALOG": catalog},
        data_dir=tmp_path,
        env="databricks",
        catalog_kind="unity",
        databricks_warehouse_id=dbx.warehouse_id,
        **overrides,
    )


def _client(dbx: LocalDatabricks) -> WorkspaceClient:
    return WorkspaceClient(host=dbx.host, token=dbx.token, auth_type="pat")


def test_the_catalog_is_created_with_its_managed_location(tmp_path, strict_databricks: LocalDatabricks):
    w = _client(strict_databricks)
    without = UnityCatalog(_settings(tmp_path, strict_databricks, "no_root"), client=w)
    with pytest.raises(CatalogError, match=r"no_root: .*storage location.*MEDALLION_CATALOG_STORAGE_ROOT"):
        without.ensure_schema("trusted")
    settings = _settings(tmp_path, strict_databricks, "with_root")
    root = f"{PLATFORM_MANAGED_STORAGE}/with_root"
    settings = settings.model_copy(update={"catalog_storage_root": root})
    # CREATE MANAGED STORAGE on the external location that holds the managed location is what the platform lacks
    let_the_platform_create_catalogs(strict_databricks, settings.platform_principal, allowed=False)
    with pytest.raises(CatalogError, match=r"with_root: User does not have CREATE MANAGED STORAGE on External Loc"):
        UnityCatalog(settings, client=w).ensure_schema("trusted")
    let_the_platform_create_catalogs(strict_databricks, settings.platform_principal)
    UnityCatalog(settings, client=w).ensure_schema("trusted")
    assert w.catalogs.get("with_root").storage_root == root


def test_pii_tags_are_set_once_and_read_back_before_every_later_registration(
    tmp_path, strict_databricks: LocalDatabricks
):
    settings = _settings(tmp_path, strict_databricks, "tagged")
    settings = settings.model_copy(update={"catalog_storage_root": f"{PLATFORM_MANAGED_STORAGE}/tagged"})
    let_the_platform_create_catalogs(strict_databricks, settings.platform_principal)
    write_deltalake(settings.table_uri("trusted", "people"), PEOPLE)
    strict_databricks.create_external_location("tagged-trusted", settings.zone_roots["trusted"])  # as Pulumi does
    catalog = UnityCatalog(settings, client=_client(strict_databricks))
    entry = TableEntry(description="People.", owner=settings.platform_principal, pii=("email",))
    mark = len(strict_databricks.requests)
    catalog.register("trusted", "people", schema=PEOPLE.schema, entry=entry)
    catalog.register("trusted", "people", schema=PEOPLE.schema, entry=entry)
    statements = [
        r.body["statement"]
        for r in strict_databricks.requests[mark:]
        if r.path == "/api/2.0/sql/statements/" and r.body
    ]
    assert len([s for s in statements if "SET TAGS" in s]) == 1, statements
    assert catalog.column_tags("tagged.trusted.people", "email") == {"pii": "true"}
