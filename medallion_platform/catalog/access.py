"""Column masks and row filters: one set of SQL functions per table, enforced by Unity Catalog and applied the
same way by `medallion sql`.

A table's `AccessPolicy` (from its contract's `access:`) becomes Databricks SQL functions in the table's schema:

    <table>__mask_<type>(val <TYPE>) RETURNS <TYPE>   -- the value for clear-PII groups, else a redaction
    <table>__row_filter(val <TYPE>) RETURNS BOOLEAN   -- all-rows groups, or the row's value listed for a group

Unity Catalog gets them with `CREATE OR REPLACE FUNCTION`, `ALTER TABLE … ALTER COLUMN … SET MASK` and `ALTER
TABLE … SET ROW FILTER … ON (…)`, and `tables.get` shows them (`ColumnInfo.mask`, `TableInfo.row_filter`). The
embedded catalog stores the same functions; `Catalog.connect` turns each into a DuckDB macro (the body
transpiled by sqlglot) with `is_account_group_member` and `current_user` answering for the configured reader
(`MEDALLION_PRINCIPAL`, `MEDALLION_PRINCIPAL_GROUPS`), so an analyst reads the same rows and values in both.
The platform's own principal is exempt (`current_user()`), as it builds refined tables from trusted.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from medallion_platform.lake.sql import ident, literal, spark_literal

__all__ = [
    "REDACTED",
    "AccessPolicy",
    "SqlFunction",
    "TableAccess",
    "duckdb_reader_macros",
    "spark_type",
    "table_access",
]

REDACTED = "[redacted]"
"""What a masked text value reads as (other types read null)."""


@dataclass(frozen=True)
class AccessPolicy:
    """Who reads a table's personal data in clear and which rows: what a contract's `access:` declares."""

    mask_columns: tuple[str, ...]
    clear_to: tuple[str, ...]
    filter_column: str | None = None
    all_rows: tuple[str, ...] = ()
    rows_by_group: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exempt: str | None = None
    """A principal that reads everything (the platform's own)."""


@dataclass(frozen=True)
class SqlFunction:
    """A Databricks SQL function: `name` unqualified (it lives in the table's schema), its body in Databricks SQL."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str
    body: str


@dataclass(frozen=True)
class TableAccess:
    """A policy as functions: the functions, each masked column's function and the row filter's."""

    functions: tuple[SqlFunction, ...]
    masks: Mapping[str, str]
    """column -> function name (unqualified)."""
    row_filter: tuple[str, tuple[str, ...]] | None
    """(function name, its input columns)."""


def spark_type(kind: pa.DataType) -> str:
    """Databricks SQL's name for an Arrow type Medallion stores."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "STRING"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP" if kind.tz else "TIMESTAMP_NTZ"
    if pa.types.is_decimal(kind):
        return f"DECIMAL({kind.precision},{kind.scale})"
    raise ValueError(f"no Databricks SQL type for {kind}")


def _member(groups: Sequence[str], exempt: str | None) -> list[str]:
    tests = [f"is_account_group_member({spark_literal(g)})" for g in groups]
    return tests + ([f"current_user() = {spark_literal(exempt)}"] if exempt else [])


def table_access(table: str, policy: AccessPolicy, schema: pa.Schema) -> TableAccess:
    """The functions that enforce `policy` on `table` (of `schema`): one mask per masked column type, one filter."""
    names = set(schema.names)
    functions: dict[str, SqlFunction] = {}
    masks: dict[str, str] = {}
    clear = " OR ".join(_member(policy.clear_to, policy.exempt)) or "FALSE"
    for column in policy.mask_columns:
        if column not in names:
            continue
        kind = spark_type(schema.field(column).type)
        name = f"{table}__mask_{kind.lower().replace('(', '_').replace(',', '_').rstrip(')')}"
        hidden = spark_literal(REDACTED) if kind == "STRING" else f"CAST(NULL AS {kind})"
        functions[name] = SqlFunction(name, (("val", kind),), kind, f"CASE WHEN {clear} THEN val ELSE {hidden} END")
        masks[column] = name
    row_filter = None
    if policy.filter_column is not None and policy.filter_column in names:
        kind = spark_type(schema.field(policy.filter_column).type)
        terms = _member(policy.all_rows, policy.exempt)
        for group, values in sorted(policy.rows_by_group.items()):
            listed = ", ".join(spark_literal(v) for v in values)
            terms.append(f"(is_account_group_member({spark_literal(group)}) AND val IN ({listed}))")
        name = f"{table}__row_filter"
        functions[name] = SqlFunction(name, (("val", kind),), "BOOLEAN", " OR ".join(terms) or "FALSE")
        row_filter = (name, (policy.filter_column,))
    return TableAccess(tuple(functions.values()), masks, row_filter)


def duckdb_reader_macros(principal: str, groups: Sequence[str]) -> list[str]:
    """DuckDB macros answering Databricks' `is_account_group_member` and `current_user` for one reader."""
    listed = ", ".join(literal(g) for g in groups)
    return [
        f"CREATE OR REPLACE MACRO is_account_group_member(g) AS list_contains([{listed}]::VARCHAR[], g)",
        f"CREATE OR REPLACE MACRO current_user() AS {literal(principal)}",
    ]


def duckdb_macro(qualified: Sequence[str], function: SqlFunction) -> str:
    """A stored function as a DuckDB macro (its Databricks SQL body transpiled by sqlglot)."""
    import sqlglot

    body = sqlglot.transpile(function.body, read="databricks", write="duckdb")[0]
    params = ", ".join(ident(p) for p, _ in function.params)
    return f"CREATE OR REPLACE MACRO {ident(*qualified)}({params}) AS {body}"
