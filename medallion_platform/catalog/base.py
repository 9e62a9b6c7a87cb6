"""The catalog interface: every table as `<catalog>.<zone>.<table>`, with its location, columns, owner,
description and PII columns, registered right after each write; and SQL over the tables by name."""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from medallion_platform.catalog.access import AccessPolicy, SqlFunction, duckdb_macro, duckdb_reader_macros
from medallion_platform.errors import CatalogError
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.maintenance import MaintenanceResult, maintain_table
from medallion_platform.lake.sql import ident
from medallion_platform.settings import Settings

__all__ = ["Catalog", "CatalogEntry", "CatalogError", "TableEntry"]


@dataclass(frozen=True)
class TableEntry:
    """What the platform declares about a table (from its contract or refined module)."""

    description: str
    owner: str
    pii: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    column_descriptions: Mapping[str, str] = field(default_factory=dict)
    access: AccessPolicy | None = None
    """Column masks and a row filter (`catalog/access.py`); None: every reader of the table sees all of it."""
    unindexed: tuple[str, ...] = ()
    """Columns whose values never enter the Delta log: no file statistics (min/max) are kept for them (personal
    data and the free text of records). The log outlives deletes and vacuum, so a value there outlives erasure."""


@dataclass(frozen=True)
class CatalogEntry:
    """One registered table."""

    catalog: str
    zone: str
    table: str
    location: str
    description: str
    owner: str
    columns: list[dict] = field(default_factory=list)
    """[{name, type, pii, description}] in table order."""
    pii: list[str] = field(default_factory=list)
    partition_by: list[str] = field(default_factory=list)
    masks: dict[str, str] = field(default_factory=dict)
    """column -> the full name of its mask function."""
    row_filter: dict | None = None
    """{"function": full name, "columns": [input columns]}, or None."""
    functions: list[dict] = field(default_factory=list)
    """The mask and filter functions: [{name (full), params [[name, type]], returns, body (Databricks SQL)}]."""

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.zone}.{self.table}"

    def reader_sql(self, source: str) -> str:
        """SELECT over `source` (a DuckDB relation of the table's rows) with the masks and the row filter applied
        as DuckDB macros named as the functions (`Catalog.connect` creates them)."""
        replaced = [f"{ident(*function.split('.'))}({ident(c)}) AS {ident(c)}" for c, function in self.masks.items()]
        sql = f"SELECT * {'REPLACE (' + ', '.join(replaced) + ')' if replaced else ''} FROM {ident(source)}"
        if self.row_filter:
            args = ", ".join(ident(c) for c in self.row_filter["columns"])
            sql += f" WHERE {ident(*self.row_filter['function'].split('.'))}({args})"
        return sql


class Catalog(ABC):
    """A catalog of the lake's tables: `embedded` (a JSON file beside the lake) or `unity` (Unity Catalog)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @abstractmethod
    def register(
        self,
        zone: str,
        table: str,
        *,
        schema: pa.Schema,
        entry: TableEntry,
        columns: Sequence[str] | None = None,
    ) -> CatalogEntry:
        """Registers (or updates) `zone.table` at its location in the zone, with `entry`'s metadata. `columns`: the
        Delta table's columns as its writer read them (on a cluster, Spark; None: read from the table here)."""

    @abstractmethod
    def entries(self) -> dict[str, CatalogEntry]:
        """Every registered table by full name."""

    def maintain(self, entry: CatalogEntry, *, retention_hours: int) -> MaintenanceResult:
        """Compacts one registered table's small files and vacuums unreferenced ones older than
        `retention_hours`: here with delta-rs on its location; `unity` overrides it with OPTIMIZE/VACUUM SQL."""
        return maintain_table(Lakehouse(self.settings).at(entry.location), retention_hours=retention_hours)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection where every registered table is a view `<catalog>.<zone>.<table>` over its
        Delta table (the location comes from the catalog)."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        catalog = ident(self.settings.catalog_name)
        con.execute(f"ATTACH ':memory:' AS {catalog}")
        for statement in duckdb_reader_macros(self.settings.reader, self.settings.principal_groups):
            con.execute(statement)
        lake = Lakehouse(self.settings)
        for entry in self.entries().values():
            dataset = lake.at(entry.location).duckdb_dataset()
            if dataset is None:
                continue
            source = f"__{entry.zone}__{entry.table}".replace("/", "_")
            con.register(source, dataset)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(self.settings.catalog_name, entry.zone)}")
            for function in entry.functions:
                stored = SqlFunction(
                    function["name"], tuple(map(tuple, function["params"])), function["returns"], function["body"]
                )
                con.execute(duckdb_macro(function["name"].split("."), stored))
            view = ident(self.settings.catalog_name, entry.zone, entry.table)
            con.execute(f"CREATE VIEW {view} AS {entry.reader_sql(source)}")
        return con

    def sql(self, query: str) -> pa.Table:
        """Runs `query` against the catalog's tables."""
        con = self.connect()
        try:
            return con.sql(query).to_arrow_table()
        finally:
            con.close()
