"""Masks and row filters from the contract on Unity Catalog (the strict stand-in): registration creates the SQL
functions, sets the column masks and the row filter, and `tables.get` shows them; a second registration changes
nothing; the SQL warehouse enforces them for each reader who queries with their own token, and `medallion sql` over
Unity Catalog applies what Unity Catalog holds, so every reader sees what the local catalog shows them
(`medallion_tests/catalog/access_cases.py`); a contract without `access:` drops them again."""

import dataclasses

import pytest
from databricks.sdk import WorkspaceClient
from deltalake import write_deltalake
from medallion_devtools.standins.databricks import LocalDatabricks

from medallion_platform.catalog.unity import UnityCatalog
from medallion_platform.contracts import load_contracts
from medallion_platform.lake.schema import trusted_schema
from medallion_platform.settings import Settings
from medallion_platform.zones.entries import source_entries
from medallion_tests.catalog.access_cases import EXPECTED, QUERY, ROWS, customers_table, seen_by
from medallion_tests.databricks.helpers import (
    PLATFORM_MANAGED_STORAGE,
    let_the_platform_create_catalogs,
    warehouse_rows,
)

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(180)]

CATALOG = "governed"


def test_masks_and_row_filters_are_registered_read_back_and_applied(tmp_path, strict_databricks: LocalDatabricks):
    settings = Settings.from_env(
        {"MEDALLION_CATALOG": CATALOG},
        data_dir=tmp_path,
        env="databricks",
        catalog_kind="unity",
        databricks_warehouse_id=strict_databricks.warehouse_id,
        catalog_storage_root=f"{PLATFORM_MANAGED_STORAGE}/{CATALOG}",
    )
    strict_databricks.create_external_location("governed-trusted", settings.zone_roots["trusted"])  # as Pulumi does
    let_the_platform_create_catalogs(strict_databricks, settings.platform_principal)
    w = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.token, auth_type="pat")
    contract = load_contracts()["customers"]
    write_deltalake(settings.table_uri("trusted", "customers"), customers_table(contract))
    entry = source_entries(contract, settings.platform_principal)["trusted"]
    catalog = UnityCatalog(settings, client=w)
    catalog.register("trusted", "customers", schema=trusted_schema(contract), entry=entry)

    info = w.tables.get(f"{CATALOG}.trusted.customers")
    masks = {c.name: c.mask.function_name for c in info.columns or [] if c.mask}
    assert masks == {
        "name": f"{CATALOG}.trusted.customers__mask_string",
        "email": f"{CATALOG}.trusted.customers__mask_string",
    }
    assert info.row_filter is not None
    assert info.row_filter.function_name == f"{CATALOG}.trusted.customers__row_filter"
    assert info.row_filter.input_column_names == ["country"]
    function = w.functions.get(f"{CATALOG}.trusted.customers__row_filter")
    assert "is_account_group_member('analysts-uk') AND val IN ('GB')" in (function.routine_definition or "")
    assert [p.name for p in function.input_params.parameters] == ["val"]

    mark = len(strict_databricks.requests)
    catalog.register("trusted", "customers", schema=trusted_schema(contract), entry=entry)
    statements = [
        r.body["statement"]
        for r in strict_databricks.requests[mark:]
        if r.path == "/api/2.0/sql/statements/" and r.body
    ]
    assert not [s for s in statements if "FUNCTION" in s or "MASK" in s or "ROW FILTER" in s], statements

    for (reader, groups), expected in EXPECTED.items():
        as_reader = settings.model_copy(update={"principal": reader, "principal_groups": groups})
        assert seen_by(UnityCatalog(as_reader, client=w)) == expected, reader

    # On the warehouse, with each reader's own token: Unity Catalog applies the masks and the filter itself.
    admin = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    readable = (f"CATALOG {CATALOG}", f"SCHEMA {CATALOG}.trusted", f"TABLE {CATALOG}.trusted.customers")
    for privilege, securable in zip(("USE CATALOG", "USE SCHEMA", "SELECT"), readable, strict=True):
        warehouse_rows(admin, strict_databricks, f"GRANT {privilege} ON {securable} TO `account users`")
    for (reader, _), expected in EXPECTED.items():
        platform = reader == settings.platform_principal
        token = strict_databricks.token if platform else strict_databricks.token_for(reader)
        reader_client = WorkspaceClient(host=strict_databricks.host, token=token, auth_type="pat")
        assert warehouse_rows(reader_client, strict_databricks, QUERY.format(catalog=CATALOG)) == expected, reader

    ungoverned = dataclasses.replace(entry, access=None)
    catalog.register("trusted", "customers", schema=trusted_schema(contract), entry=ungoverned)
    info = w.tables.get(f"{CATALOG}.trusted.customers")
    assert not [c for c in info.columns or [] if c.mask] and info.row_filter is None
    assert seen_by(UnityCatalog(settings.model_copy(update={"principal": "nobody"}), client=w)) == ROWS
