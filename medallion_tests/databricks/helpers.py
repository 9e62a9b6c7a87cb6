"""Helpers of the Databricks tests."""

import json
import subprocess
import sys
import warnings

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.catalog import PermissionsChange, Privilege, TableOperation
from databricks.sdk.service.sql import StatementResponse, StatementState
from deltalake import DeltaTable
from medallion_devtools.standins.databricks import LocalDatabricks

# delta-rs 1.6.6's `uc://` open deadlocks inside delta-rs now and then (upstream delta-io/delta-rs#3113 says so of
# its own tests; here about two opens in three on 2 cores, and every one on a loaded CI machine): both Unity Catalog
# calls are answered, then its nested `block_on` (catalog-unity's `execute_uc_future`) never returns and no S3 request
# follows. So each attempt runs in a child process that is killed after a bounded wait, and when every attempt hung,
# the client's last step (catalog-unity's `parse_url_opts`: the table's location opened with the credentials Unity
# Catalog vends for READ_WRITE, else READ, mapped as its `From<AwsTempCredentials>` maps them) is done here by
# delta-rs in this process, with a warning. Either way the rows come from the stand-in's answers.
UC_READ = """
import json, sys
from deltalake import DeltaTable
uri, options = json.loads(sys.stdin.read())
rows = DeltaTable(uri, storage_options=options).to_pyarrow_table().to_pylist()
print(json.dumps(rows, default=str))
"""
UC_READ_ATTEMPTS, UC_READ_SECONDS = 3, 10.0


def read_through_unity_catalog(uri: str, options: dict[str, str]) -> list[dict[str, object]]:
    """The rows delta-rs' own Unity Catalog client reads at `uri` (`uc://<catalog>.<schema>.<table>`), as JSON
    values, sorted (in a child process; see UC_READ)."""
    for _ in range(UC_READ_ATTEMPTS):
        try:
            child = subprocess.run(
                [sys.executable, "-c", UC_READ],
                input=json.dumps([uri, options]),
                capture_output=True,
                text=True,
                timeout=UC_READ_SECONDS,
            )
        except subprocess.TimeoutExpired:
            continue
        if child.returncode < 0:  # killed by a signal: delta-rs aborted in native code (the same flakiness)
            continue
        assert child.returncode == 0, child.stderr  # a Python error (a rejected response) fails at once
        return sorted(json.loads(child.stdout), key=lambda row: json.dumps(row, sort_keys=True))
    warnings.warn(
        f"delta-rs' uc:// open hung in all {UC_READ_ATTEMPTS} attempts (delta-rs#3113); its last step ran here",
        stacklevel=2,
    )
    return as_json_rows(_open_as_delta_rs_would(uri.removeprefix("uc://"), options).to_pyarrow_table())


def _open_as_delta_rs_would(name: str, options: dict[str, str]) -> DeltaTable:
    """What catalog-unity's `parse_url_opts` opens for `name` after its two Unity Catalog calls."""
    w = WorkspaceClient(host=options["databricks_workspace_url"], token=options["databricks_access_token"])
    table = w.tables.get(name)
    assert table.table_id is not None and table.storage_location is not None
    try:
        vended = w.temporary_table_credentials.generate_temporary_table_credentials(
            operation=TableOperation.READ_WRITE, table_id=table.table_id
        )
    except DatabricksError:
        vended = w.temporary_table_credentials.generate_temporary_table_credentials(
            operation=TableOperation.READ, table_id=table.table_id
        )
    aws = vended.aws_temp_credentials
    assert aws is not None and aws.access_key_id and aws.secret_access_key
    storage = {**options, "AWS_ACCESS_KEY_ID": aws.access_key_id, "AWS_SECRET_ACCESS_KEY": aws.secret_access_key}
    if aws.session_token:
        storage["AWS_SESSION_TOKEN"] = aws.session_token
    if aws.access_point:
        storage["AWS_ENDPOINT_URL"] = aws.access_point
    return DeltaTable(table.storage_location, storage_options=storage)


def as_json_rows(table: object) -> list[dict[str, object]]:
    """`table`'s rows as `read_through_unity_catalog` returns them: JSON values, sorted."""
    rows = json.loads(json.dumps(table.to_pylist(), default=str))  # type: ignore[attr-defined]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


PLATFORM_MANAGED_STORAGE = "s3://medallion-managed"
"""Where the strict stand-in's tests let the platform create catalogs of its own (see below)."""


def let_the_platform_create_catalogs(dbx: LocalDatabricks, principal: str, *, allowed: bool = True) -> None:
    """What an account that lets the platform create its own catalogs holds (the Pulumi program creates the catalog
    instead): an external location over `PLATFORM_MANAGED_STORAGE` on which `principal` has CREATE MANAGED STORAGE
    (revoked again with `allowed=False`). Idempotent: the strict stand-in is shared by the test run."""
    name = "platform-managed-storage"
    if dbx.unity.locations.find(name) is None:
        dbx.create_external_location(name, PLATFORM_MANAGED_STORAGE)
    admin = WorkspaceClient(host=dbx.host, token=dbx.admin_token, auth_type="pat")
    privilege = [Privilege.CREATE_MANAGED_STORAGE]
    change = (
        PermissionsChange(principal=principal, add=privilege)
        if allowed
        else PermissionsChange(principal=principal, remove=privilege)
    )
    admin.grants.update("external_location", name, changes=[change])


def run_statement(w: WorkspaceClient, dbx: LocalDatabricks, statement: str) -> StatementResponse:
    """`statement` on the stand-in's SQL warehouse (the Statement Execution API), as `w`'s principal."""
    return w.statement_execution.execute_statement(
        statement=statement, warehouse_id=dbx.warehouse_id, wait_timeout="30s"
    )


def warehouse_rows(w: WorkspaceClient, dbx: LocalDatabricks, statement: str) -> list[tuple]:
    """The rows of `statement`, which must succeed (`run_statement`)."""
    response = run_statement(w, dbx, statement)
    assert response.status is not None and response.status.state == StatementState.SUCCEEDED, response.status
    return [tuple(row) for row in (response.result.data_array if response.result else None) or []]
