"""A query on the stand-in's SQL warehouse, run as its caller with the column masks and row filters Unity Catalog
holds, as Databricks enforces them on a warehouse: each table the query reads needs SELECT (and USE CATALOG/USE
SCHEMA); its row filter drops the rows for which the filter function is not true and each masked column reads as
its mask function's value, both computed on the stored values and for the caller, whose `current_user()` and
`is_account_group_member()` answer for the token's principal and its groups.

The query is Databricks SQL, transpiled by sqlglot to DuckDB; each table is its Delta table read with delta-rs
behind a DuckDB view that applies the table's filter and masks, and each function is a DuckDB macro of its body
(transpiled the same way). Results come back as the Statement Execution API's JSON_ARRAY: every value a string.
"""

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
from deltalake import Schema

from medallion_devtools.standins.databricks.delta_columns import column_infos
from medallion_devtools.standins.databricks.errors import JsonObject
from medallion_devtools.standins.databricks.sql import Query
from medallion_devtools.standins.databricks.unity import FunctionEntry, UnityCatalog

__all__ = ["QueryResult", "TableRead", "run_query"]

QueryResult = tuple[list[JsonObject], list[list[str | None]]]
"""(columns as the manifest describes them, rows as JSON_ARRAY strings)."""


@dataclass(frozen=True)
class TableRead:
    """What a query reads of one table, taken from Unity Catalog under its lock: where the Delta table lies and the
    functions of its masks (column -> (function, the columns it is given)) and row filter."""

    name: tuple[str, str, str]
    location: str
    masks: dict[str, tuple[FunctionEntry, tuple[str, ...]]]
    row_filter: tuple[FunctionEntry, tuple[str, ...]] | None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _macro(name: str, function: FunctionEntry) -> str:
    import sqlglot

    body = sqlglot.transpile(function.body, read="databricks", write="duckdb")[0]
    return f"CREATE MACRO {_ident(name)}({', '.join(_ident(p) for p, _ in function.params)}) AS {body}"


def _columns(schema: pa.Schema) -> list[JsonObject]:
    """The manifest's columns of a result: Databricks' type name and its SQL type in capitals, as a warehouse
    describes them (`DECIMAL` and `DECIMAL(10,2)`), from the Delta types of the result's Arrow schema."""
    plain = pa.schema(
        [
            f.with_type(pa.string()) if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type) else f
            for f in schema
        ]
    )
    infos = column_infos(json.loads(Schema.from_arrow(plain).to_json()), [])
    keep = ("name", "type_name", "type_text", "type_precision", "type_scale")
    return [{k: v.upper() if k == "type_text" else v for k, v in info.items() if k in keep} for info in infos]


def _text(value: object) -> str | None:
    """A value as JSON_ARRAY carries it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def run_query(
    unity: UnityCatalog, query: Query, reads: list[TableRead], principal: str, row_limit: int | None
) -> tuple[QueryResult, bool]:
    """`query` as `principal` sees it: the result and whether `row_limit` cut it."""
    import duckdb
    from deltalake import DeltaTable
    from sqlglot import exp

    con = duckdb.connect()
    macros: dict[str, str] = {}

    def call(function: FunctionEntry, columns: tuple[str, ...]) -> str:
        """`function` on `columns`, as the DuckDB macro made of it (made on first use)."""
        if function.full_name not in macros:
            macros[function.full_name] = f"_function_{len(macros)}"
            con.execute(_macro(macros[function.full_name], function))
        return f"{_ident(macros[function.full_name])}({', '.join(_ident(c) for c in columns)})"

    try:
        groups = ", ".join(_literal(g) for g in sorted(unity.access.identities(principal)))
        con.execute(f"CREATE MACRO is_account_group_member(g) AS list_contains([{groups}]::VARCHAR[], g)")
        con.execute(f"CREATE OR REPLACE MACRO current_user() AS {_literal(principal)}")
        views: dict[tuple[str, str, str], str] = {}
        for n, read in enumerate(reads):
            data = DeltaTable(read.location, storage_options=unity.storage_options or None).to_pyarrow_dataset()
            con.register(f"_stored_{n}", data)
            masked = ", ".join(f"{call(f, cols)} AS {_ident(col)}" for col, (f, cols) in read.masks.items())
            where = f" WHERE {call(*read.row_filter)}" if read.row_filter else ""
            projection = f"* REPLACE ({masked})" if masked else "*"
            views[read.name] = f"_table_{n}"
            con.execute(f"CREATE VIEW _table_{n} AS SELECT {projection} FROM _stored_{n}{where}")

        def to_view(node: exp.Expression) -> exp.Expression:
            if not isinstance(node, exp.Table):
                return node
            parts = tuple(p.name for p in node.parts)
            name = query.table_of(parts)
            if name not in views:  # a CTE's name
                return node
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(parts[-1]))
            return exp.Table(this=exp.to_identifier(views[name]), alias=alias)

        result = con.sql(query.tree.transform(to_view).sql(dialect="duckdb")).to_arrow_table()
    finally:
        con.close()
    columns = _columns(result.schema)
    rows = [[_text(v) for v in row.values()] for row in result.to_pylist()]
    cut = row_limit is not None and len(rows) > row_limit
    return (columns, rows[:row_limit] if cut else rows), cut
