"""A new Unity Catalog account's rules, each broken once on the strict stand-in and refused as Databricks refuses it
(PERMISSION_DENIED, naming the securable and the privilege), judged by databricks-sdk's own calls and by Medallion's
Unity Catalog client, whose error names the table. The account holds what `catalog.account.provision` registers (what
the Pulumi program registers), and the client's token is the platform principal's."""

import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, PermissionDenied
from databricks.sdk.service.catalog import PermissionsChange, Privilege, TableOperation
from databricks.sdk.service.sql import StatementState
from deltalake import write_deltalake
from medallion_devtools.standins.databricks import STORAGE_CREDENTIAL, LocalDatabricks

from medallion_platform.catalog import CatalogError, TableEntry
from medallion_platform.catalog.account import provision
from medallion_platform.catalog.unity import UnityCatalog
from medallion_platform.settings import Settings
from medallion_tests.databricks.helpers import run_statement

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]

PEOPLE = pa.table({"id": pa.array([1, 2], pa.int64()), "email": pa.array(["a@x", "b@x"], pa.string())})


def _client(dbx: LocalDatabricks, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=dbx.host, token=token, auth_type="pat")


@pytest.fixture
def account(tmp_path: Path, strict_databricks: LocalDatabricks) -> tuple[Settings, WorkspaceClient, WorkspaceClient]:
    """A catalog of its own, registered as the Pulumi program registers it; the platform's and the admin's clients."""
    settings = Settings.from_env(
        {"MEDALLION_CATALOG": f"rules_{uuid.uuid4().hex[:8]}"},
        data_dir=tmp_path,
        env="databricks",
        catalog_kind="unity",
        databricks_warehouse_id=strict_databricks.warehouse_id,
        catalog_storage_root=f"file://{tmp_path}/managed",
    )
    admin = _client(strict_databricks, strict_databricks.admin_token)
    provision(admin, settings, credential_name=STORAGE_CREDENTIAL)
    for zone in ("raw", "trusted"):
        write_deltalake(settings.table_uri(zone, "people"), PEOPLE)
    return settings, _client(strict_databricks, strict_databricks.token), admin


def _revoke(admin: WorkspaceClient, kind: str, name: str, principal: str, privilege: Privilege) -> None:
    admin.grants.update(kind, name, changes=[PermissionsChange(principal=principal, remove=[privilege])])


def _sql(w: WorkspaceClient, dbx: LocalDatabricks, statement: str) -> tuple[StatementState | None, str]:
    response = run_statement(w, dbx, statement)
    assert response.status is not None
    error = response.status.error
    return response.status.state, (error.message or "") if error is not None else ""


def test_the_platform_registers_what_it_was_granted_and_a_missing_privilege_names_table_and_privilege(account):
    settings, platform, admin = account
    catalog = UnityCatalog(settings, client=platform)
    entry = TableEntry(description="People.", owner="data-engineers")
    catalog.register("raw", "people", schema=PEOPLE.schema, entry=entry)  # granted: registers
    schema = f"{settings.catalog_name}.trusted"
    _revoke(admin, "schema", schema, settings.platform_principal, Privilege.CREATE_TABLE)
    with pytest.raises(CatalogError, match=rf"{schema}\.people: .*CREATE TABLE on Schema '{schema}'"):
        catalog.register("trusted", "people", schema=PEOPLE.schema, entry=entry)


def test_tags_after_the_ownership_moved_need_apply_tag(account):
    settings, platform, admin = account
    catalog = UnityCatalog(settings, client=platform)
    name = f"{settings.catalog_name}.trusted.people"
    catalog.register("trusted", "people", schema=PEOPLE.schema, entry=TableEntry(description="P.", owner="analysts"))
    assert platform.tables.get(name).owner == "analysts"
    tagged = TableEntry(description="P.", owner="analysts", pii=("email",))
    _revoke(admin, "schema", f"{settings.catalog_name}.trusted", settings.platform_principal, Privilege.APPLY_TAG)
    with pytest.raises(CatalogError, match=rf"{name} column email .*APPLY TAG on Table '{name}'"):
        catalog.register("trusted", "people", schema=PEOPLE.schema, entry=tagged)
    grant = PermissionsChange(principal=settings.platform_principal, add=[Privilege.APPLY_TAG])
    admin.grants.update("schema", f"{settings.catalog_name}.trusted", changes=[grant])
    catalog.register("trusted", "people", schema=PEOPLE.schema, entry=tagged)  # as the account grants it
    assert catalog.column_tags(name, "email") == {"pii": "true"}


def test_only_owners_grant_only_admins_create_locations_and_catalogs_stay_closed(account, strict_databricks):
    settings, platform, _ = account
    catalog = settings.catalog_name
    change = PermissionsChange(principal="analysts", add=[Privilege.SELECT])
    with pytest.raises(PermissionDenied, match=rf"not an owner of Schema '{catalog}\.raw'"):
        platform.grants.update("schema", f"{catalog}.raw", changes=[change])
    with pytest.raises(PermissionDenied, match="CREATE EXTERNAL LOCATION on Metastore"):
        platform.external_locations.create(name="mine", url="s3://anywhere/", credential_name=STORAGE_CREDENTIAL)
    with pytest.raises(PermissionDenied, match=rf"CREATE SCHEMA on Catalog '{catalog}'"):
        platform.schemas.create(name="extra", catalog_name=catalog)
    state, message = _sql(platform, strict_databricks, f"GRANT SELECT ON SCHEMA {catalog}.raw TO `analysts`")
    assert state == StatementState.FAILED and "not an owner of Schema" in message


def test_a_table_lies_in_an_external_location_the_caller_may_use(account, strict_databricks, tmp_path):
    settings, platform, admin = account
    outside = tmp_path / "elsewhere" / "people"
    write_deltalake(str(outside), PEOPLE)
    table = f"{settings.catalog_name}.trusted.stray"
    state, message = _sql(platform, strict_databricks, f"CREATE TABLE {table} USING DELTA LOCATION '{outside}'")
    assert state == StatementState.FAILED and f"No external location covers the path '{outside}'" in message
    location = f"{settings.catalog_name}-trusted"
    change = PermissionsChange(principal=settings.platform_principal, remove=[Privilege.CREATE_EXTERNAL_TABLE])
    admin.grants.update("external_location", location, changes=[change])
    inside = settings.table_uri("trusted", "people")
    state, message = _sql(platform, strict_databricks, f"CREATE TABLE {table} USING DELTA LOCATION '{inside}'")
    assert state == StatementState.FAILED and f"CREATE EXTERNAL TABLE on External Location '{location}'" in message


def test_credentials_are_vended_only_with_external_use_schema_and_never_to_write_raw(account):
    settings, platform, admin = account
    catalog = UnityCatalog(settings, client=platform)
    catalog.register(
        "raw", "people", schema=PEOPLE.schema, entry=TableEntry(description="P.", owner="medallion-platform")
    )
    table_id = platform.tables.get(f"{settings.catalog_name}.raw.people").table_id
    vend = platform.temporary_table_credentials.generate_temporary_table_credentials
    with pytest.raises(PermissionDenied, match=rf"EXTERNAL USE SCHEMA on Schema '{settings.catalog_name}\.raw'"):
        vend(operation=TableOperation.READ, table_id=table_id)  # the owner, but no EXTERNAL USE SCHEMA
    grant = {"changes": [{"principal": settings.platform_principal, "add": ["EXTERNAL_USE_SCHEMA"]}]}
    path = f"/api/2.1/unity-catalog/permissions/schema/{settings.catalog_name}.raw"
    admin.api_client.do("PATCH", path, body=grant)  # EXTERNAL_USE_SCHEMA: not in databricks-sdk 0.60's enum
    with pytest.raises(DatabricksError, match=r"read-only External Location"):
        vend(operation=TableOperation.READ_WRITE, table_id=table_id)
