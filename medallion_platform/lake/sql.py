"""The one home of SQL text: quoted identifiers, literals and column types.

Two dialects meet in Medallion. DuckDB and DataFusion (delta-rs's MERGE and partition predicates) read
ANSI SQL: identifiers in double quotes, strings in single quotes with `''` inside. Databricks and Spark
SQL (Unity Catalog DDL, Spark's `MERGE INTO`) quote identifiers with back-quotes and escape quotes with a
backslash. Every caller builds its SQL with these functions, so a name or a value is quoted one way
per dialect wherever it appears.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import pyarrow as pa

__all__ = ["duckdb_type", "ident", "idents", "literal", "newer_than", "spark_ident", "spark_literal"]


def ident(*parts: str) -> str:
    """An ANSI (DuckDB, DataFusion) identifier, multi-part when given several parts: `"a"."b"`."""
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def idents(names: Iterable[str], *, qualifier: str | None = None) -> str:
    """Comma-joined identifiers, each optionally qualified (`s."a", s."b"`)."""
    prefix = f"{qualifier}." if qualifier else ""
    return ", ".join(prefix + ident(n) for n in names)


def literal(value: object) -> str:
    """An ANSI SQL literal for a value Medallion writes into SQL text: null, number, date or text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        raise TypeError("timestamps are not written into SQL text here (partition values are dates)")
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def spark_ident(*parts: str) -> str:
    """A (multi-part) Databricks/Spark SQL identifier, each part back-quoted."""
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)


def spark_literal(value: object) -> str:
    """A Databricks/Spark SQL literal: dates and numbers as in `literal`, text with backslash escapes."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return literal(value)


def duckdb_type(kind: pa.DataType) -> str | None:
    """DuckDB's name for an Arrow type Medallion stores in raw or partitions by; None for others."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "VARCHAR"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_date32(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    return None


def newer_than(
    columns: Sequence[str], *, quote: Callable[..., str] = ident, source: str = "s", target: str = "t"
) -> str:
    """`source` is later than `target` by `columns` compared in order, each later one breaking ties of the
    ones before (a change's sequence with its tie-breaker): `(s.a > t.a OR (s.a = t.a AND s.b > t.b))`."""
    if not columns:
        raise ValueError("newer_than needs at least one column")
    terms = []
    for i, column in enumerate(columns):
        equal = [f"{source}.{quote(c)} = {target}.{quote(c)}" for c in columns[:i]]
        terms.append(" AND ".join([*equal, f"{source}.{quote(column)} > {target}.{quote(column)}"]))
    return "(" + " OR ".join(f"({t})" for t in terms) + ")"
