"""The stand-in's Unity Catalog, through the real clients: databricks-sdk 0.60 for catalogs, schemas, tables,
grants and SQL statements, and delta-rs' own `uc://` client, which reads a table registered here from the moto
S3 server with the temporary credentials the stand-in vends (the independent judge of the response shapes)."""

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, ResourceConflict
from databricks.sdk.service.catalog import (
    ColumnTypeName,
    DataSourceFormat,
    PermissionsChange,
    Privilege,
    TableOperation,
    TableType,
    VolumeType,
)
from databricks.sdk.service.sql import StatementState
from deltalake import DeltaTable, write_deltalake
from medallion_devtools.local_aws import LocalAws
from medallion_devtools.standins.databricks import LocalDatabricks
from medallion_devtools.standins.databricks.sql import Grant, SetTags, SqlError, parse_statement

from medallion_tests.databricks.helpers import as_json_rows, read_through_unity_catalog, run_statement, warehouse_rows

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]

ORDERS = pa.table(
    {
        "order_id": pa.array([1, 2, 3], pa.int64()),
        "customer": pa.array(["ana", "bo", "cy"], pa.string()),
        "amount": pa.array([decimal.Decimal("9.99"), decimal.Decimal("120.00"), None], pa.decimal128(10, 2)),
        "quantity": pa.array([1, 5, 2], pa.int32()),
        "weight": pa.array([0.5, 1.25, 2.0], pa.float64()),
        "paid": pa.array([True, False, True]),
        "order_date": pa.array([dt.date(2024, 5, 1), dt.date(2024, 5, 1), dt.date(2024, 5, 2)]),
        "created_at": pa.array([dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)] * 3, pa.timestamp("us", tz="UTC")),
    }
)
# Delta type of each column → the Databricks `type_name` and `type_text` Unity Catalog reports for it.
EXPECTED_TYPES = {
    "order_id": (ColumnTypeName.LONG, "bigint"),
    "customer": (ColumnTypeName.STRING, "string"),
    "amount": (ColumnTypeName.DECIMAL, "decimal(10,2)"),
    "quantity": (ColumnTypeName.INT, "int"),
    "weight": (ColumnTypeName.DOUBLE, "double"),
    "paid": (ColumnTypeName.BOOLEAN, "boolean"),
    "order_date": (ColumnTypeName.DATE, "date"),
    "created_at": (ColumnTypeName.TIMESTAMP, "timestamp"),
}


UC_CLIENT = "deltalake-catalog-unity"


def _error(call: Callable[[], object]) -> DatabricksError:
    with pytest.raises(DatabricksError) as caught:
        call()
    return caught.value


def _failure(w: WorkspaceClient, dbx: LocalDatabricks, statement: str) -> tuple[str, str]:
    response = run_statement(w, dbx, statement)
    assert response.status is not None and response.status.state == StatementState.FAILED
    error = response.status.error
    assert error is not None and error.error_code is not None and error.message is not None
    return error.error_code.value, error.message


def _schema(w: WorkspaceClient) -> tuple[str, str]:
    """A fresh catalog (unique name: the stand-in serves the whole session) with a `silver` schema."""
    catalog = f"cat_{uuid.uuid4().hex[:8]}"
    w.catalogs.create(name=catalog, comment="test catalog")
    w.schemas.create(name="silver", catalog_name=catalog)
    return catalog, f"{catalog}.silver"


def test_catalogs_and_schemas_are_created_read_listed_and_deleted(unity_workspace: WorkspaceClient):
    w = unity_workspace
    catalog = f"Cat_{uuid.uuid4().hex[:8]}"  # names are case-insensitive and kept in lower case
    created = w.catalogs.create(name=catalog, comment="bronze to gold")
    assert (created.name, created.comment, created.owner) == (
        catalog.lower(),
        "bronze to gold",
        "standin-user@example.com",
    )
    assert w.catalogs.get(catalog).full_name == catalog.lower()
    assert catalog.lower() in {c.name for c in w.catalogs.list()}
    w.schemas.create(name="bronze", catalog_name=catalog, comment="raw")
    w.schemas.create(name="silver", catalog_name=catalog)
    bronze = w.schemas.get(f"{catalog}.bronze")
    assert (bronze.full_name, bronze.catalog_name, bronze.comment) == (
        f"{catalog.lower()}.bronze",
        catalog.lower(),
        "raw",
    )
    assert [s.name for s in w.schemas.list(catalog_name=catalog)] == ["bronze", "silver"]
    updated = w.schemas.update(f"{catalog}.bronze", comment="landed", owner="data-engineers")
    assert (updated.comment, updated.owner) == ("landed", "data-engineers")

    again = _error(lambda: w.catalogs.create(name=catalog))
    assert isinstance(again, ResourceConflict) and again.error_code == "CATALOG_ALREADY_EXISTS"
    missing = _error(lambda: w.schemas.get(f"{catalog}.gold"))
    assert isinstance(missing, NotFound) and missing.error_code == "SCHEMA_DOES_NOT_EXIST"
    assert _error(lambda: w.catalogs.delete(catalog)).error_code == "CATALOG_NOT_EMPTY"
    w.schemas.delete(f"{catalog}.bronze")
    w.catalogs.delete(catalog, force=True)
    assert _error(lambda: w.catalogs.get(catalog)).error_code == "CATALOG_DOES_NOT_EXIST"


def test_create_table_registers_an_external_delta_table_with_the_columns_of_its_log(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    catalog, schema = _schema(w)
    location = str(tmp_path / "orders")
    write_deltalake(location, ORDERS, partition_by=["order_date"])
    warehouse_rows(
        w, dbx, f"create table `{catalog}`.silver.`orders` Using Delta LOCATION '{location}/' -- the log is read"
    )

    table = w.tables.get(f"{schema}.orders")
    assert (table.table_type, table.data_source_format) == (TableType.EXTERNAL, DataSourceFormat.DELTA)
    assert (table.full_name, table.storage_location) == (f"{schema}.orders", location)
    assert table.table_id is not None and uuid.UUID(table.table_id)
    assert table.columns is not None
    delta_fields = DeltaTable(location).schema().fields
    assert [c.name for c in table.columns] == [f.name for f in delta_fields]
    assert [c.nullable for c in table.columns] == [f.nullable for f in delta_fields]
    assert [c.position for c in table.columns] == list(range(len(delta_fields)))
    assert {c.name: (c.type_name, c.type_text) for c in table.columns} == EXPECTED_TYPES
    amount = next(c for c in table.columns if c.name == "amount")
    assert (amount.type_precision, amount.type_scale) == (10, 2)
    assert {c.name: c.partition_index for c in table.columns if c.partition_index is not None} == {"order_date": 0}
    assert table.properties is not None and table.properties["delta.lastUpdateVersion"] == "0"
    assert w.tables.exists(f"{schema}.orders").table_exists
    assert not w.tables.exists(f"{schema}.nothing").table_exists
    assert [t.name for t in w.tables.list(catalog_name=catalog, schema_name="silver")] == ["orders"]

    warehouse_rows(w, dbx, f"CREATE TABLE IF NOT EXISTS {schema}.orders USING DELTA LOCATION '{location}'")
    code, message = _failure(w, dbx, f"CREATE TABLE {schema}.orders USING DELTA LOCATION '{location}'")
    assert code == "BAD_REQUEST" and message.startswith("[TABLE_OR_VIEW_ALREADY_EXISTS]")
    (tmp_path / "not-delta").mkdir()
    code, message = _failure(w, dbx, f"CREATE TABLE {schema}.other USING DELTA LOCATION '{tmp_path / 'not-delta'}'")
    assert message.startswith("[DELTA_CREATE_EXTERNAL_TABLE_WITHOUT_TXN_LOG]")
    w.tables.delete(f"{schema}.orders")
    assert not w.tables.exists(f"{schema}.orders").table_exists
    assert DeltaTable(location).to_pyarrow_table().num_rows == 3  # an EXTERNAL table's files stay


def test_comments_tags_owner_and_grants_set_by_sql_and_api_read_back(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    catalog, schema = _schema(w)
    name = f"{schema}.orders"
    write_deltalake(str(tmp_path / "orders"), ORDERS)
    warehouse_rows(w, dbx, f"CREATE TABLE {name} USING DELTA LOCATION '{tmp_path / 'orders'}'")
    warehouse_rows(w, dbx, f"COMMENT ON TABLE {name} IS 'Orders; it''s the customer''s view'")
    warehouse_rows(w, dbx, f"ALTER TABLE {name} ALTER COLUMN Customer COMMENT 'Who ordered'")
    warehouse_rows(w, dbx, f"ALTER TABLE {name} SET TAGS ('domain' = 'sales', 'zone' = 'silver')")
    warehouse_rows(w, dbx, f"ALTER TABLE {name} ALTER COLUMN customer SET TAGS ('pii' = 'true')")
    warehouse_rows(w, dbx, f"ALTER TABLE {name} OWNER TO `data-engineers`")
    warehouse_rows(w, dbx, f"GRANT SELECT, MODIFY ON TABLE {name} TO `analysts@example.com`")
    warehouse_rows(w, dbx, f"GRANT USE CATALOG ON CATALOG {catalog} TO `analysts@example.com`")
    warehouse_rows(w, dbx, f"GRANT USE SCHEMA ON SCHEMA {schema} TO `analysts@example.com`")

    table = w.tables.get(name)
    assert (table.comment, table.owner) == ("Orders; it's the customer's view", "data-engineers")
    assert table.columns is not None
    assert {c.name: c.comment for c in table.columns if c.comment} == {"customer": "Who ordered"}
    tags = w.api_client.do("GET", f"/api/2.1/unity-catalog/entity-tag-assignments/tables/{name}/tags")
    assert isinstance(tags, dict)
    assert {t["tag_key"]: t["tag_value"] for t in tags["tag_assignments"]} == {"domain": "sales", "zone": "silver"}
    column_tag = w.api_client.do(
        "GET", f"/api/2.1/unity-catalog/entity-tag-assignments/columns/{name}.customer/tags/pii"
    )
    assert column_tag == {
        "entity_type": "columns",
        "entity_name": f"{name}.customer",
        "tag_key": "pii",
        "tag_value": "true",
    }

    grants = w.grants.get("table", name).privilege_assignments or []
    assert [(g.principal, g.privileges) for g in grants] == [
        ("analysts@example.com", [Privilege.MODIFY, Privilege.SELECT])
    ]
    w.grants.update(
        "table", name, changes=[PermissionsChange(principal="analysts@example.com", remove=[Privilege.MODIFY])]
    )
    w.grants.update(
        "table", name, changes=[PermissionsChange(principal="data-engineers", add=[Privilege.ALL_PRIVILEGES])]
    )
    grants = w.grants.get("table", name).privilege_assignments or []
    assert {g.principal: g.privileges for g in grants} == {
        "analysts@example.com": [Privilege.SELECT],
        "data-engineers": [Privilege.ALL_PRIVILEGES],
    }
    effective = w.grants.get_effective("table", name, principal="analysts@example.com").privilege_assignments or []
    assert [(p.privilege, p.inherited_from_name) for p in effective[0].privileges or []] == [
        (Privilege.SELECT, None),
        (Privilege.USE_SCHEMA, schema),
        (Privilege.USE_CATALOG, catalog),
    ]
    w.tables.update(name, owner="analysts@example.com")
    assert w.tables.get(name).owner == "analysts@example.com"


def test_sync_metadata_shows_a_column_added_by_another_engine_and_not_before(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    _, schema = _schema(w)
    location = str(tmp_path / "orders")
    write_deltalake(location, ORDERS)
    warehouse_rows(w, dbx, f"CREATE TABLE {schema}.orders USING DELTA LOCATION '{location}'")
    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN customer COMMENT 'Who ordered'")
    later = ORDERS.slice(0, 1).append_column("channel", pa.array(["web"], pa.string()))
    write_deltalake(location, later, mode="append", schema_mode="merge")
    assert "channel" in [f.name for f in DeltaTable(location).schema().fields]

    before = w.tables.get(f"{schema}.orders").columns or []
    assert "channel" not in [c.name for c in before]  # stored at CREATE, not re-read at every get
    warehouse_rows(w, dbx, f"MSCK REPAIR TABLE {schema}.orders SYNC METADATA")
    after = w.tables.get(f"{schema}.orders")
    channel = next(c for c in after.columns or [] if c.name == "channel")
    assert (channel.type_name, channel.nullable, channel.position) == (ColumnTypeName.STRING, True, len(before))
    assert after.properties is not None and after.properties["delta.lastUpdateVersion"] == "1"
    assert {c.name: c.comment for c in after.columns or [] if c.comment} == {"customer": "Who ordered"}


def test_errors_are_databricks_shaped(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    catalog, schema = _schema(w)
    write_deltalake(str(tmp_path / "t"), ORDERS)
    warehouse_rows(w, dbx, f"CREATE TABLE {schema}.t USING DELTA LOCATION '{tmp_path / 't'}'")
    warehouse = w.warehouses.get(dbx.warehouse_id)
    assert warehouse.state is not None and warehouse.state.value == "RUNNING"
    no_warehouse = _error(
        lambda: w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="0000000000000000")
    )
    assert isinstance(no_warehouse, NotFound) and no_warehouse.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(lambda: w.warehouses.get("0000000000000000")).error_code == "RESOURCE_DOES_NOT_EXIST"

    unknown = _error(
        lambda: w.grants.update(
            "table", f"{schema}.t", changes=[PermissionsChange(principal="nobody", add=[Privilege.SELECT])]
        )
    )
    assert isinstance(unknown, NotFound) and unknown.error_code == "PRINCIPAL_DOES_NOT_EXIST"
    assert str(unknown) == "Could not find principal with name nobody"
    for change in ({"principal": "analysts@example.com", "add": ["READ_EVERYTHING"]}, {"principal": "", "add": []}):
        bad = _error(
            lambda change=change: w.api_client.do(
                "PATCH", f"/api/2.1/unity-catalog/permissions/table/{schema}.t", body={"changes": [change]}
            )
        )
        assert bad.error_code == "INVALID_PARAMETER_VALUE"
    not_for_tables = _error(
        lambda: w.grants.update(
            "table",
            f"{schema}.t",
            changes=[PermissionsChange(principal="data-engineers", add=[Privilege.USE_CATALOG])],
        )
    )
    assert not_for_tables.error_code == "INVALID_PARAMETER_VALUE" and "not applicable" in str(not_for_tables)
    assert _error(lambda: w.tables.update(f"{schema}.t", owner="nobody")).error_code == "PRINCIPAL_DOES_NOT_EXIST"
    assert _error(lambda: w.tables.get(f"{schema}.nothing")).error_code == "TABLE_DOES_NOT_EXIST"

    code, message = _failure(w, dbx, f"DROP TABLE {schema}.t")
    assert code == "BAD_REQUEST" and message.startswith("[UNSUPPORTED_STATEMENT]") and "CREATE TABLE" in message
    code, message = _failure(w, dbx, f"CREATE TABLE {catalog}.gold.t USING DELTA LOCATION '{tmp_path / 't'}'")
    assert message.startswith(f"[SCHEMA_NOT_FOUND] The schema `{catalog}`.`gold` cannot be found.")
    code, message = _failure(w, dbx, f"GRANT SELECT ON TABLE {schema}.t TO `nobody`")
    assert message == "[PRINCIPAL_DOES_NOT_EXIST] Could not find principal with name nobody"
    assert _failure(w, dbx, f"ALTER TABLE {schema}.t SET TAGS ('a' = )")[1].startswith("[PARSE_SYNTAX_ERROR]")
    assert _failure(w, dbx, f"COMMENT ON TABLE {schema}.missing IS 'x'")[1].startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    failed = run_statement(w, dbx, "SELECT 1")
    assert failed.statement_id is not None
    assert w.statement_execution.get_statement(failed.statement_id).status == failed.status


def test_the_sql_subset_parses_quoting_and_multi_word_privileges():
    grant = parse_statement("grant use schema, ALL PRIVILEGES on Schema `my.cat`.`s``x` to `account users`;")
    assert grant == Grant(("USE_SCHEMA", "ALL_PRIVILEGES"), "schema", ("my.cat", "s`x"), "account users")
    tags = parse_statement(r"ALTER TABLE t ALTER COLUMN c SET TAGS ('k' = 'a''b\'c', 'flag')", catalog="m", schema="s")
    assert tags == SetTags(("m", "s", "t"), "c", {"k": "a'b'c", "flag": None})
    with pytest.raises(SqlError, match=r"^\[UNQUALIFIED_TABLE_NAME\]"):
        parse_statement("MSCK REPAIR TABLE s.t SYNC METADATA")


def test_delta_rs_reads_a_registered_s3_table_through_its_own_unity_catalog_client(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, local_aws: LocalAws, s3_storage_options
):
    w, dbx = unity_workspace, unity_databricks
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    local_aws.client("s3").create_bucket(Bucket=bucket)
    location = f"s3://{bucket}/silver/orders"
    write_deltalake(location, ORDERS, storage_options=s3_storage_options, partition_by=["order_date"])
    _, schema = _schema(w)
    warehouse_rows(w, dbx, f"CREATE TABLE {schema}.orders USING DELTA LOCATION '{location}'")
    table = w.tables.get(f"{schema}.orders")
    assert table.storage_location == location and table.table_id is not None
    assert [c.name for c in table.columns or []] == ORDERS.column_names
    # credential vending needs EXTERNAL USE SCHEMA, which not even a metastore admin has until it is granted
    refused = _error(
        lambda: w.temporary_table_credentials.generate_temporary_table_credentials(
            operation=TableOperation.READ, table_id=table.table_id
        )
    )
    assert refused.error_code == "PERMISSION_DENIED" and "EXTERNAL USE SCHEMA" in str(refused)
    grant = {"changes": [{"principal": "standin-user@example.com", "add": ["EXTERNAL_USE_SCHEMA"]}]}
    w.api_client.do(
        "PATCH", f"/api/2.1/unity-catalog/permissions/schema/{schema}", body=grant
    )  # not in SDK 0.60's enum

    sent_before = len(dbx.requests)
    through_uc = read_through_unity_catalog(
        f"uc://{schema}.orders",
        {
            "databricks_workspace_url": dbx.host,
            "databricks_access_token": dbx.token,
            "unity_allow_http_url": "true",
            "AWS_ALLOW_HTTP": "true",  # the vended endpoint (moto) is plain HTTP; no keys: those come from UC
        },
    )
    direct = DeltaTable(location, storage_options=s3_storage_options).to_pyarrow_table()
    assert len(through_uc) == 3
    assert through_uc == as_json_rows(direct)
    by_delta_rs = [(r.method, r.path, r.status) for r in dbx.requests[sent_before:] if UC_CLIENT in r.user_agent]
    assert ("GET", f"/api/2.1/unity-catalog/tables/{schema}.orders", 200) in by_delta_rs
    assert ("POST", "/api/2.1/unity-catalog/temporary-table-credentials", 200) in by_delta_rs
    assert {status for _, _, status in by_delta_rs} == {200}

    vended = w.temporary_table_credentials.generate_temporary_table_credentials(
        operation=TableOperation.READ, table_id=table.table_id
    )
    assert vended.url == location and vended.aws_temp_credentials is not None
    assert vended.aws_temp_credentials.access_point == local_aws.endpoint_url
    assert vended.expiration_time is not None and vended.expiration_time > dt.datetime.now().timestamp() * 1000


HIDE = "CASE WHEN is_account_group_member('pii-readers') THEN v ELSE '***' END"


def _orders_and_a_mask(w: WorkspaceClient, dbx: LocalDatabricks, folder: Path) -> tuple[str, str]:
    """A new catalog and schema holding ORDERS as `orders` and the mask function `hide` (HIDE); their names."""
    catalog, schema = _schema(w)
    location = str(folder / "orders")
    write_deltalake(location, ORDERS)
    warehouse_rows(w, dbx, f"CREATE TABLE {schema}.orders USING DELTA LOCATION '{location}'")
    warehouse_rows(w, dbx, f"CREATE FUNCTION {schema}.hide(v STRING) RETURNS STRING RETURN {HIDE};")
    return catalog, schema


def test_functions_masks_and_row_filters_are_recorded_and_shown_as_the_api_shows_them(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    catalog, schema = _orders_and_a_mask(w, dbx, tmp_path)
    mask = HIDE
    warehouse_rows(
        w, dbx, f"CREATE FUNCTION {schema}.paid_only(p BOOLEAN) RETURNS BOOLEAN RETURN p OR current_user() = 'x'"
    )
    function = w.functions.get(f"{schema}.hide")
    assert (function.full_name, function.routine_definition, function.full_data_type) == (
        f"{schema}.hide",
        mask,
        "string",
    )
    assert [(p.name, p.type_text, p.type_name) for p in function.input_params.parameters] == [
        ("v", "string", ColumnTypeName.STRING)
    ]
    assert [f.name for f in w.functions.list(catalog_name=catalog, schema_name="silver")] == ["hide", "paid_only"]

    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN customer SET MASK {schema}.hide")
    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders SET ROW FILTER {schema}.paid_only ON (paid)")
    info = w.tables.get(f"{schema}.orders")
    masked = {c.name: (c.mask.function_name, c.mask.using_column_names) for c in info.columns or [] if c.mask}
    assert masked == {"customer": (f"{schema}.hide", [])}
    assert info.row_filter is not None
    assert (info.row_filter.function_name, info.row_filter.input_column_names) == (f"{schema}.paid_only", ["paid"])

    # as strict as Databricks: the function must exist, take the column's type and return the right type
    assert _failure(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN customer SET MASK {schema}.gone")[1].startswith(
        "[ROUTINE_NOT_FOUND]"
    )
    assert (
        "[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE]"
        in _failure(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN order_id SET MASK {schema}.hide")[1]
    )
    assert (
        "[DATATYPE_MISMATCH.UNEXPECTED_RETURN_TYPE]"
        in _failure(w, dbx, f"ALTER TABLE {schema}.orders SET ROW FILTER {schema}.hide ON (customer)")[1]
    )
    assert (
        "[WRONG_NUM_ARGS"
        in _failure(w, dbx, f"ALTER TABLE {schema}.orders SET ROW FILTER {schema}.paid_only ON (paid, paid)")[1]
    )
    assert (
        "[ROUTINE_ALREADY_EXISTS]"
        in _failure(w, dbx, f"CREATE FUNCTION {schema}.hide(v STRING) RETURNS STRING RETURN v")[1]
    )
    warehouse_rows(w, dbx, f"CREATE OR REPLACE FUNCTION {schema}.hide(v STRING) RETURNS STRING RETURN v")
    assert w.functions.get(f"{schema}.hide").routine_definition == "v"

    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN customer DROP MASK")
    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders DROP ROW FILTER")
    info = w.tables.get(f"{schema}.orders")
    assert not [c for c in info.columns or [] if c.mask] and info.row_filter is None
    warehouse_rows(w, dbx, f"DROP FUNCTION {schema}.hide")
    assert _error(lambda: w.functions.get(f"{schema}.hide")).error_code == "FUNCTION_DOES_NOT_EXIST"
    warehouse_rows(w, dbx, f"DROP FUNCTION IF EXISTS {schema}.hide")


def test_a_query_needs_select_and_reads_through_the_row_filter_and_the_masks_as_its_caller(
    unity_databricks: LocalDatabricks, unity_workspace: WorkspaceClient, tmp_path: Path
):
    w, dbx = unity_workspace, unity_databricks
    catalog, schema = _orders_and_a_mask(w, dbx, tmp_path)
    mine = "p OR current_user() = 'analysts@example.com'"
    warehouse_rows(w, dbx, f"CREATE FUNCTION {schema}.mine(p BOOLEAN) RETURNS BOOLEAN RETURN {mine}")
    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders ALTER COLUMN customer SET MASK {schema}.hide")
    warehouse_rows(w, dbx, f"ALTER TABLE {schema}.orders SET ROW FILTER {schema}.mine ON (paid)")
    analyst = WorkspaceClient(host=dbx.host, token=dbx.token_for("analysts@example.com"), auth_type="pat")
    query = "WITH o AS (SELECT * FROM silver.orders) SELECT order_id, customer, amount, paid, order_date FROM o"

    code, message = _failure(analyst, dbx, f"SELECT order_id FROM {schema}.orders")
    assert (code, message.split(":")[0]) == ("BAD_REQUEST", "[INSUFFICIENT_PERMISSIONS] Insufficient privileges")
    for privilege, securable in (("USE CATALOG", f"CATALOG {catalog}"), ("USE SCHEMA", f"SCHEMA {schema}")):
        warehouse_rows(w, dbx, f"GRANT {privilege} ON {securable} TO `analysts@example.com`")
    assert "SELECT" in _failure(analyst, dbx, f"SELECT order_id FROM {schema}.orders")[1]
    warehouse_rows(w, dbx, f"GRANT SELECT ON TABLE {schema}.orders TO `analysts@example.com`")

    seen = analyst.statement_execution.execute_statement(
        statement=f"{query} ORDER BY order_id", warehouse_id=dbx.warehouse_id, catalog=catalog
    )
    assert seen.status is not None and seen.status.state == StatementState.SUCCEEDED, seen.status
    assert seen.result is not None and seen.manifest is not None and seen.manifest.schema is not None
    assert seen.result.data_array == [  # the filter lets the analyst see every row; the mask hides the customer
        ["1", "***", "9.99", "true", "2024-05-01"],
        ["2", "***", "120.00", "false", "2024-05-01"],
        ["3", "***", None, "true", "2024-05-02"],
    ]
    assert [(c.name, c.type_name and c.type_name.value, c.type_text) for c in seen.manifest.schema.columns or []] == [
        ("order_id", "LONG", "BIGINT"),
        ("customer", "STRING", "STRING"),
        ("amount", "DECIMAL", "DECIMAL(10,2)"),
        ("paid", "BOOLEAN", "BOOLEAN"),
        ("order_date", "DATE", "DATE"),
    ]
    # For anyone else (a metastore admin too) the filter keeps only the paid orders.
    assert warehouse_rows(w, dbx, f"{query.replace('silver.orders', f'{schema}.orders')} ORDER BY order_id") == [
        ("1", "***", "9.99", "true", "2024-05-01"),
        ("3", "***", None, "true", "2024-05-02"),
    ]
    as_admin = w.statement_execution.execute_statement(
        statement=f"{query} ORDER BY order_id", warehouse_id=dbx.warehouse_id, catalog=catalog, row_limit=1
    )
    assert as_admin.result is not None and as_admin.result.data_array == [["1", "***", "9.99", "true", "2024-05-01"]]
    assert as_admin.manifest is not None and as_admin.manifest.truncated is True


def test_a_grant_to_a_group_or_to_account_users_reaches_its_members_and_no_one_else(tmp_path: Path):
    """Account groups as Unity Catalog applies them: a member acts with its groups' grants and ownership, a
    non-member is refused with Databricks' error until the grant goes to `account users`."""
    groups = {"data-engineers": ["ana@example.com"]}
    with LocalDatabricks(
        root=tmp_path / "dbx",
        groups=groups,
        principals=["ben@example.com"],
        metastore_admins=("standin-user@example.com",),
        external_locations={"managed": f"file://{tmp_path}/managed"},
        cluster_engine=False,
    ) as dbx:

        def client(token: str) -> WorkspaceClient:
            return WorkspaceClient(host=dbx.host, token=token, auth_type="pat")

        admin, ana, ben = (
            client(t) for t in (dbx.token, dbx.token_for("ana@example.com"), dbx.token_for("ben@example.com"))
        )
        admin.catalogs.create("sales", storage_root=f"file://{tmp_path}/managed/sales")
        admin.schemas.create("orders", "sales")

        def grant(kind: str, name: str, principal: str, *privileges: Privilege) -> None:
            admin.grants.update(kind, name, changes=[PermissionsChange(principal=principal, add=list(privileges))])

        grant("catalog", "sales", "data-engineers", Privilege.USE_CATALOG)
        grant("schema", "sales.orders", "data-engineers", Privilege.USE_SCHEMA)
        assert ana.schemas.get("sales.orders").full_name == "sales.orders"
        with pytest.raises(DatabricksError) as refused:
            ben.schemas.get("sales.orders")
        assert refused.value.error_code == "PERMISSION_DENIED"
        assert "User does not have USE CATALOG on Catalog 'sales'." in str(refused.value)

        grant("catalog", "sales", "account users", Privilege.USE_CATALOG)
        grant("schema", "sales.orders", "account users", Privilege.USE_SCHEMA)
        assert ben.schemas.get("sales.orders").full_name == "sales.orders"

        admin.schemas.update("sales.orders", owner="data-engineers")  # owned by the group: its members may alter it
        assert ana.schemas.update("sales.orders", comment="Orders").comment == "Orders"
        with pytest.raises(DatabricksError) as refused:
            ben.schemas.update("sales.orders", comment="not mine")
        assert "User is not an owner of Schema 'sales.orders'." in str(refused.value)
        with pytest.raises(ValueError, match="a group has no token"):
            dbx.token_for("data-engineers")


def test_managed_and_external_volume_locations_need_a_covering_external_location_and_its_privilege(tmp_path: Path):
    """A catalog's or schema's managed location lies in an external location on which the caller holds CREATE
    MANAGED STORAGE, an external volume's in one with CREATE EXTERNAL VOLUME; a metastore admin still needs the
    external location. Each refused with Databricks' error, then allowed once what was missing is there."""
    lake = f"file://{tmp_path}/lake"
    with LocalDatabricks(
        root=tmp_path / "dbx",
        principals=["ben@example.com"],
        metastore_admins=("standin-user@example.com",),
        metastore_privileges={"ben@example.com": ["CREATE_CATALOG"]},
        external_locations={"lake": lake},
        cluster_engine=False,
    ) as dbx:
        admin = WorkspaceClient(host=dbx.host, token=dbx.token, auth_type="pat")
        ben = WorkspaceClient(host=dbx.host, token=dbx.token_for("ben@example.com"), auth_type="pat")

        def grant(*privileges: Privilege) -> None:
            change = PermissionsChange(principal="ben@example.com", add=list(privileges))
            admin.grants.update("external_location", "lake", changes=[change])

        outside = _error(lambda: admin.catalogs.create("nowhere", storage_root=f"file://{tmp_path}/elsewhere/x"))
        assert outside.error_code == "PERMISSION_DENIED" and "No external location covers the path" in str(outside)
        refused = _error(lambda: ben.catalogs.create("sales", storage_root=f"{lake}/sales"))
        assert refused.error_code == "PERMISSION_DENIED"
        assert "User does not have CREATE MANAGED STORAGE on External Location 'lake'." in str(refused)
        assert "sales" not in {c.name for c in admin.catalogs.list()}

        grant(Privilege.CREATE_MANAGED_STORAGE)
        assert ben.catalogs.create("sales", storage_root=f"{lake}/sales").storage_root == f"{lake}/sales"
        outside = _error(lambda: ben.schemas.create("eu", "sales", storage_root=f"file://{tmp_path}/elsewhere/eu"))
        assert "No external location covers the path" in str(outside)
        assert ben.schemas.create("eu", "sales", storage_root=f"{lake}/sales/eu").storage_root == f"{lake}/sales/eu"

        def external_volume() -> object:
            return ben.volumes.create("sales", "eu", "drops", VolumeType.EXTERNAL, storage_location=f"{lake}/drops")

        refused = _error(external_volume)
        assert "User does not have CREATE EXTERNAL VOLUME on External Location 'lake'." in str(refused)
        grant(Privilege.CREATE_EXTERNAL_VOLUME)
        external_volume()
        assert admin.volumes.read("sales.eu.drops").storage_location == f"{lake}/drops"
