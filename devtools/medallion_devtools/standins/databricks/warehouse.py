"""The stand-in's one SQL warehouse (always RUNNING) and the Statement Execution API 2.0 over it: statements
(`sql.py`) run at once against the Unity Catalog metastore, so every response is final: SUCCEEDED, or FAILED
with `status.error {error_code, message}` as Databricks reports a failed statement (HTTP 200).

Each statement runs as the caller's principal, with the privileges Databricks documents: CREATE TABLE needs CREATE
TABLE on the schema and CREATE EXTERNAL TABLE on the external location its LOCATION lies in; SYNC METADATA,
comments, OPTIMIZE and VACUUM need MODIFY; SET TAGS needs APPLY TAG; GRANT and SET OWNER need ownership (or
MANAGE). A refusal is `[INSUFFICIENT_PERMISSIONS] Insufficient privileges: …` (error code BAD_REQUEST).
A query needs SELECT on every table it reads and sees them through their row filters and column masks, for the
caller (`queries.py`).
"""

import json
import re
import threading
import uuid
from collections.abc import Callable

from medallion_devtools.standins.databricks.access import caller
from medallion_devtools.standins.databricks.delta_columns import NotADeltaTable
from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request, not_found, required
from medallion_devtools.standins.databricks.queries import TableRead, run_query
from medallion_devtools.standins.databricks.sql import (
    AlterColumnComment,
    Command,
    CommentOnTable,
    CreateFunction,
    CreateTable,
    DropFunction,
    Grant,
    Optimize,
    Query,
    SetMask,
    SetOwner,
    SetRowFilter,
    SetTags,
    SqlError,
    SyncMetadata,
    Vacuum,
    parse_statement,
    quote_name,
)
from medallion_devtools.standins.databricks.unity import FunctionEntry, TableEntry, UnityCatalog

__all__ = ["DEFAULT_WAREHOUSE_ID", "SqlWarehouse"]

DEFAULT_WAREHOUSE_ID = "5a7d1e0000000001"
_STATUS_CODES = {
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}
"""REST status → statement `error_code`, else BAD_REQUEST: a statement's error code is one of the API's
`ServiceErrorCode`s, which have no PERMISSION_DENIED (a refusal is told by its message's error class)."""
MIN_VACUUM_RETAIN_HOURS = 168.0  # Delta's retentionDurationCheck, which a warehouse statement cannot turn off


class SqlWarehouse:
    """`/api/2.0/sql/warehouses/{id}` and `/api/2.0/sql/statements/…`."""

    def __init__(self, unity: UnityCatalog, warehouse_id: str = DEFAULT_WAREHOUSE_ID) -> None:
        self.unity = unity
        self.warehouse_id = warehouse_id
        self._statements: dict[str, JsonObject] = {}
        self._lock = threading.Lock()

    def _check_warehouse(self, warehouse_id: str) -> None:
        if warehouse_id != self.warehouse_id:
            raise not_found(f"SQL warehouse {warehouse_id} does not exist.")

    def info(self, warehouse_id: str, host: str) -> JsonObject:
        """`GetWarehouseResponse` of the one warehouse."""
        self._check_warehouse(warehouse_id)
        hostname = host.removeprefix("http://")
        return {
            "id": self.warehouse_id,
            "name": "Stand-in SQL warehouse",
            "state": "RUNNING",
            "cluster_size": "2X-Small",
            "warehouse_type": "PRO",
            "enable_serverless_compute": True,
            "num_clusters": 1,
            "min_num_clusters": 1,
            "max_num_clusters": 1,
            "auto_stop_mins": 10,
            "num_active_sessions": 0,
            "creator_name": self.unity.current_user,
            "health": {"status": "HEALTHY"},
            "odbc_params": {
                "hostname": hostname,
                "path": f"/sql/1.0/warehouses/{self.warehouse_id}",
                "port": 443,
                "protocol": "https",
            },
        }

    def execute(self, body: JsonObject) -> JsonObject:
        """`POST /api/2.0/sql/statements/`: runs the statement and returns its final `StatementResponse`."""
        statement = required(body, "statement", str)
        self._check_warehouse(required(body, "warehouse_id", str))
        wait_timeout = body.get("wait_timeout", "10s")
        seconds = re.fullmatch(r"(\d+)s", str(wait_timeout))
        if seconds is None or not (int(seconds[1]) == 0 or 5 <= int(seconds[1]) <= 50):
            raise bad_request(f"wait_timeout must be 0s or between 5s and 50s, not {wait_timeout!r}.")
        if body.get("parameters"):
            raise bad_request("The stand-in does not bind statement parameters; put literals in the statement.")
        row_limit = body.get("row_limit")
        if row_limit is not None and (not isinstance(row_limit, int) or row_limit < 0):
            raise bad_request(f"row_limit must be a non-negative integer, not {row_limit!r}.")
        statement_id = str(uuid.uuid4())
        rows: _Result = ([], [])
        truncated = False
        try:
            parsed = parse_statement(statement, catalog=body.get("catalog"), schema=body.get("schema"))
            if isinstance(parsed, Query):
                rows, truncated = self._query(parsed, row_limit)
            else:
                rows = self._run(parsed)
            status: JsonObject = {"state": "SUCCEEDED"}
        except SqlError as exc:
            status = {"state": "FAILED", "error": {"error_code": exc.error_code, "message": exc.message}}
        except ApiError as exc:  # a check shared with the REST API (principals, privileges)
            status = {
                "state": "FAILED",
                "error": {"error_code": _STATUS_CODES.get(exc.status, "BAD_REQUEST"), "message": _sql_message(exc)},
            }
        response: JsonObject = {"statement_id": statement_id, "status": status}
        if status["state"] == "SUCCEEDED":
            columns, data = rows
            described = [{**column, "position": i} for i, column in enumerate(columns)]
            response["manifest"] = {
                "format": "JSON_ARRAY",
                "schema": {"column_count": len(columns), "columns": described},
                "total_chunk_count": 1 if data else 0,
                "total_row_count": len(data),
                "truncated": truncated,
            }
            response["result"] = {"row_count": len(data), "row_offset": 0, "chunk_index": 0}
            if data:
                response["result"]["data_array"] = data
        with self._lock:
            self._statements[statement_id] = response
        return response

    def get(self, statement_id: str) -> JsonObject:
        """`GET /api/2.0/sql/statements/{id}`."""
        with self._lock:
            found = self._statements.get(statement_id)
        if found is None:
            raise not_found(f"Statement {statement_id} does not exist.")
        return found

    def cancel(self, statement_id: str) -> JsonObject:
        """`POST …/{id}/cancel`: every statement has already finished, so nothing changes."""
        self.get(statement_id)
        return {}

    def _run(self, statement: Command) -> "_Result":
        """Runs `statement`; its result (columns, rows as JSON_ARRAY strings), empty for DDL."""
        uc = self.unity
        with uc.lock:
            if isinstance(statement, Optimize | Vacuum):
                return self._maintain(statement)
            if isinstance(statement, CreateTable):
                self._create_table(statement)
            elif isinstance(statement, CreateFunction):
                self._create_function(statement)
            elif isinstance(statement, DropFunction):
                if uc.find_function(".".join(statement.name)) is None:
                    _securable_for_sql(uc, "schema", statement.name[:2])
                    if not statement.if_exists:
                        raise _routine_not_found(statement.name)
                uc.drop_function(".".join(statement.name))
            elif isinstance(statement, Grant):
                kind, name = statement.securable_type, statement.name
                if len(name) != {"catalog": 1, "schema": 2, "table": 3}[kind]:
                    raise SqlError("INVALID_IDENTIFIER", f"{quote_name(name)} does not name a {kind}.", "42602")
                _securable_for_sql(uc, kind, name)
                uc.access.require_owner(kind, ".".join(name).lower())
                change = {"principal": statement.principal, "add": list(statement.privileges)}
                uc.grants.update(kind, ".".join(name).lower(), [change])
            else:
                table = _table_for_sql(uc, statement.name)
                if isinstance(statement, SetOwner):
                    uc.access.require_owner("table", table.full_name)
                else:
                    uc.access.require(
                        "table", table.full_name, "APPLY_TAG" if isinstance(statement, SetTags) else "MODIFY"
                    )
                if isinstance(statement, SyncMetadata):
                    _read_delta(lambda: uc.sync_table(table), statement.name, table.storage_location)
                elif isinstance(statement, CommentOnTable):
                    table.comment = statement.comment
                elif isinstance(statement, AlterColumnComment):
                    table.column_comments[_column(table, statement.column)] = statement.comment
                elif isinstance(statement, SetTags):
                    if statement.column is None:
                        uc.set_tags("tables", table.full_name, statement.tags)
                    else:
                        column = _column(table, statement.column)
                        uc.set_tags("columns", f"{table.full_name}.{column}", statement.tags)
                elif isinstance(statement, SetOwner):
                    uc.set_owner(table, statement.principal)
                elif isinstance(statement, SetMask):
                    self._set_mask(table, statement)
                elif isinstance(statement, SetRowFilter):
                    self._set_row_filter(table, statement)
                table.touch()
        return [], []

    def _query(self, query: Query, row_limit: int | None) -> tuple["_Result", bool]:
        """A query as its caller sees it: SELECT checked and each table's filter and masks taken under the
        metastore's lock, the query itself run outside it."""
        uc = self.unity
        reads = []
        with uc.lock:
            for name in query.tables:
                table = _table_for_sql(uc, name)
                uc.access.require("table", table.full_name, "SELECT")
                masks = {
                    column: (self._stored_function(mask["function_name"]), (column, *mask["using_column_names"]))
                    for column, mask in table.masks.items()
                }
                row_filter = None
                if table.row_filter:
                    function = self._stored_function(table.row_filter["function_name"])
                    row_filter = (function, tuple(table.row_filter["input_column_names"]))
                reads.append(TableRead(name, table.storage_location, masks, row_filter))
        return run_query(uc, query, reads, caller() or uc.current_user, row_limit)

    def _stored_function(self, full_name: str) -> FunctionEntry:
        function = self.unity.find_function(full_name)
        if function is None:  # dropped after the mask or filter was set
            raise _routine_not_found(tuple(full_name.split(".")))
        return function

    def _maintain(self, statement: "Optimize | Vacuum") -> "_Result":
        """OPTIMIZE (bin-packing compaction) and VACUUM, with delta-rs on the table's location. Results as
        Databricks gives them: OPTIMIZE a row `(path, metrics)`, VACUUM a row `(path)`."""
        from deltalake import DeltaTable

        table = _table_for_sql(self.unity, statement.name)
        self.unity.access.require("table", table.full_name, "MODIFY")
        location = table.storage_location
        delta = DeltaTable(location, storage_options=self.unity.storage_options or None)
        if isinstance(statement, Optimize):
            metrics = delta.optimize.compact()
            return [_described("path", "STRING"), _described("metrics", "STRUCT")], [[location, json.dumps(metrics)]]
        hours = MIN_VACUUM_RETAIN_HOURS if statement.retain_hours is None else statement.retain_hours
        if hours < MIN_VACUUM_RETAIN_HOURS:
            raise SqlError(
                "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT",
                "requirement failed: Are you sure you would like to vacuum files with such a low retention period? "
                f"The table's retention is {MIN_VACUUM_RETAIN_HOURS:g} hours.",
                "22023",
            )
        delta.vacuum(retention_hours=int(hours), dry_run=False, enforce_retention_duration=False)
        return [_described("path", "STRING")], [[location]]

    def _create_function(self, statement: CreateFunction) -> None:
        catalog, schema, name = statement.name
        _securable_for_sql(self.unity, "schema", (catalog, schema))
        if self.unity.find_function(".".join(statement.name)) is not None and not statement.or_replace:
            if statement.if_not_exists:
                return
            raise SqlError(
                "ROUTINE_ALREADY_EXISTS",
                f"Cannot create the function {quote_name(statement.name)} because it already exists. Choose a "
                "different name, drop or replace the existing function, or add the IF NOT EXISTS clause.",
                "42723",
            )
        self.unity.put_function(catalog, schema, name, statement.params, statement.returns, statement.body)

    def _function(self, name: tuple[str, str, str], columns: list[str], table: TableEntry) -> FunctionEntry:
        """The function a mask or a row filter names, checked against the columns it will be given."""
        function = self.unity.find_function(".".join(name))
        if function is None:
            _securable_for_sql(self.unity, "schema", name[:2])
            raise _routine_not_found(name)
        types = {c["name"]: str(c["type_text"]).lower() for c in table.columns}
        if len(function.params) != len(columns):
            raise SqlError(
                "WRONG_NUM_ARGS.WITHOUT_SUGGESTION",
                f"The {quote_name(name)} requires {len(function.params)} parameters but the actual number is "
                f"{len(columns)}.",
                "42605",
            )
        for (param, kind), column in zip(function.params, columns, strict=True):
            if kind.lower() != types[column]:
                raise SqlError(
                    "DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE",
                    f"Cannot resolve {quote_name(name)}: parameter `{param}` requires the {kind} type, however "
                    f"column `{column}` has the type {types[column].upper()}.",
                    "42K09",
                )
        return function

    def _set_mask(self, table: TableEntry, statement: SetMask) -> None:
        column = _column(table, statement.column)
        if statement.function is None:
            table.masks.pop(column, None)
            return
        using = [_column(table, c) for c in statement.using]
        function = self._function(statement.function, [column, *using], table)
        kind = next(str(c["type_text"]).lower() for c in table.columns if c["name"] == column)
        if function.returns.lower() != kind:
            raise SqlError(
                "DATATYPE_MISMATCH.UNEXPECTED_RETURN_TYPE",
                f"The column mask {quote_name(statement.function)} returns {function.returns}, but column "
                f"`{column}` has the type {kind.upper()}.",
                "42K09",
            )
        table.masks[column] = {"function_name": function.full_name, "using_column_names": using}

    def _set_row_filter(self, table: TableEntry, statement: SetRowFilter) -> None:
        if statement.function is None:
            table.row_filter = None
            return
        columns = [_column(table, c) for c in statement.columns]
        function = self._function(statement.function, columns, table)
        if function.returns.upper() != "BOOLEAN":
            raise SqlError(
                "DATATYPE_MISMATCH.UNEXPECTED_RETURN_TYPE",
                f"The row filter {quote_name(statement.function)} returns {function.returns}, not BOOLEAN.",
                "42K09",
            )
        table.row_filter = {"function_name": function.full_name, "input_column_names": columns}

    def _create_table(self, statement: CreateTable) -> None:
        uc, (catalog, schema, name) = self.unity, statement.name
        _securable_for_sql(self.unity, "schema", (catalog, schema))
        uc.access.require("schema", f"{catalog}.{schema}".lower(), "CREATE_TABLE")
        if uc.find_table(".".join(statement.name)) is not None:
            if statement.if_not_exists:
                return
            raise SqlError(
                "TABLE_OR_VIEW_ALREADY_EXISTS",
                f"Cannot create table or view {quote_name(statement.name)} because it already exists. Choose a "
                "different name, drop or replace the existing object, or add the IF NOT EXISTS clause.",
                "42P07",
            )
        uc.locations.require(statement.location, "CREATE_EXTERNAL_TABLE")
        _read_delta(lambda: uc.add_table(catalog, schema, name, statement.location), statement.name, statement.location)


_Result = tuple[list[JsonObject], list[list[str | None]]]
"""A statement's result: its columns as the manifest describes them, its rows as JSON_ARRAY strings."""


def _described(name: str, kind: str) -> JsonObject:
    return {"name": name, "type_name": kind, "type_text": kind}


def _read_delta(action: Callable[[], object], name: tuple[str, ...], location: str) -> None:
    """Runs `action`, which reads the Delta log at `location`; no log there is the error Databricks gives."""
    try:
        action()
    except NotADeltaTable:
        raise SqlError(
            "DELTA_CREATE_EXTERNAL_TABLE_WITHOUT_TXN_LOG",
            f"You are trying to create an external table {quote_name(name)} from `{location}` using Delta, but "
            f"there is no transaction log present at `{location}/_delta_log`. Check the upstream job to make "
            'sure that it is writing using format("delta") and that the path is the root of the table.',
            "42K03",
        ) from None


def _securable_for_sql(uc: UnityCatalog, kind: str, name: tuple[str, ...]) -> None:
    """Checks that a catalog or schema (and its catalog) exists, with the SQL errors Databricks gives."""
    if uc.find_catalog(name[0]) is None:
        raise SqlError(
            "NO_SUCH_CATALOG_EXCEPTION",
            f"Catalog '{name[0].lower()}' was not found. Please verify the catalog name and then retry the query "
            "or command again.",
            "42704",
        )
    if kind == "schema" and uc.find_schema(".".join(name[:2])) is None:
        raise SqlError(
            "SCHEMA_NOT_FOUND",
            f"The schema {quote_name(name[:2])} cannot be found. Verify the spelling and correctness of the schema "
            "and catalog.",
            "42704",
        )
    if kind == "table":
        _table_for_sql(uc, name)


def _table_for_sql(uc: UnityCatalog, name: tuple[str, ...]) -> TableEntry:
    _securable_for_sql(uc, "schema", name[:2])
    table = uc.find_table(".".join(name))
    if table is None:
        raise SqlError(
            "TABLE_OR_VIEW_NOT_FOUND",
            f"The table or view {quote_name(name)} cannot be found. Verify the spelling and correctness of the "
            "schema and catalog.",
            "42P01",
        )
    return table


def _column(table: TableEntry, column: str) -> str:
    """The stored name of a column (names resolve case-insensitively, as in Databricks)."""
    names = [c["name"] for c in table.columns]
    for stored in names:
        if stored.lower() == column.lower():
            return str(stored)
    raise SqlError(
        "UNRESOLVED_COLUMN.WITH_SUGGESTION",
        f"A column, variable, or function parameter with name `{column}` cannot be resolved. Did you mean one of "
        f"the following? [{', '.join(f'`{n}`' for n in names)}].",
        "42703",
    )


def _routine_not_found(name: tuple[str, ...]) -> SqlError:
    return SqlError(
        "ROUTINE_NOT_FOUND",
        f"The routine {quote_name(name)} cannot be found. Verify the spelling and correctness of the schema and "
        "catalog.",
        "42883",
    )


def _sql_message(exc: ApiError) -> str:
    """A REST check's error as a SQL error message (`[ERROR_CODE] message`)."""
    if exc.status == 403:
        return f"[INSUFFICIENT_PERMISSIONS] Insufficient privileges: {exc.message} SQLSTATE: 42501"
    return f"[{exc.error_code}] {exc.message}"
