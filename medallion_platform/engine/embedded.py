"""The embedded engine: the PySpark DataFrame API on DuckDB through SQLFrame. No JVM.

SQLFrame keeps one session per process (a singleton), so every `EmbeddedEngine` shares one DuckDB
connection; each engine drops the views and tables it created when it is closed.
"""

import gc
import os
import re
import tempfile
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlframe.duckdb import DuckDBSession, Window
from sqlframe.duckdb import functions as F
from sqlglot.dialects.dialect import Dialect

from medallion_platform.engine.base import ArrowData, Engine, Frame
from medallion_platform.settings import MedallionEnvironment

if TYPE_CHECKING:
    from medallion_platform.lake.delta_io import DeltaTableIO

__all__ = ["EmbeddedEngine"]

_LOCK = threading.Lock()
_INLINE_CTE = re.compile(r'(?<=[ ,])("t\d+") AS \((?=SELECT )')
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SHARED: dict[str, Any] = {}

# SQLFrame's first function lookup loads every sqlglot dialect (0.07 s): do it while importing, not in a run.
Dialect.classes  # noqa: B018


def _shared_session() -> tuple[duckdb.DuckDBPyConnection, DuckDBSession]:
    with _LOCK:
        if "session" not in _SHARED:
            connection = duckdb.connect()
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET enable_progress_bar = false")
            # Bounded memory: past the limit DuckDB spills to its temp directory.
            limit = MedallionEnvironment.read().duckdb_memory_limit
            connection.execute(f"SET memory_limit = '{limit}'")
            spill = Path(tempfile.gettempdir()) / f"medallion-duckdb-{os.getpid()}"
            connection.execute(f"SET temp_directory = '{spill}'")
            connection.execute("SET preserve_insertion_order = false")
            _SHARED["connection"] = connection
            _SHARED["session"] = DuckDBSession(conn=connection)
            # Building plans allocates many short-lived sqlglot objects, which trigger full garbage
            # collections that walk every object the imports created (0.15 s of a 1 % run). Those live
            # as long as the process: freeze them out of the collector (later objects are collected).
            gc.freeze()
        return _SHARED["connection"], _SHARED["session"]


def shared_connection() -> duckdb.DuckDBPyConnection:
    """The process's DuckDB connection (the one SQLFrame's session uses)."""
    return _shared_session()[0]


class EmbeddedEngine(Engine):
    """SQLFrame on the process's DuckDB connection; time zone UTC like the Spark session."""

    name = "embedded"
    F = F
    Window = Window
    connection: duckdb.DuckDBPyConnection
    """The process's DuckDB connection, which this engine's frames run on (writers stream from it)."""

    def __init__(self) -> None:
        self.connection, self.session = _shared_session()
        self._views: list[str] = []
        self._tables: list[str] = []
        self._registered: list[str] = []

    def dataframe(self, data: ArrowData, name: str = "input") -> Frame:
        # SQLFrame learns columns from DuckDB's catalog: a registered Arrow object shows none,
        # a view over it does, and DuckDB still scans the Arrow dataset lazily.
        arrow = f"{self.unique_name(name)}__arrow"
        self.connection.register(arrow, data)
        self._registered.append(arrow)
        return self.sql(f'SELECT * FROM "{arrow}"', name)

    def sql(self, query: str, name: str = "query") -> Frame:
        """A DataFrame over a DuckDB query (a view: nothing runs until the frame is used)."""
        view = self.unique_name(name)
        self.connection.execute(f'CREATE OR REPLACE VIEW "{view}" AS {query}')
        self._views.append(view)
        return self.table(view)

    def duckdb_frame(self, connection: duckdb.DuckDBPyConnection, table: str) -> Frame:
        if connection is self.connection:
            return self.table(table)  # same DuckDB: no copy at all
        return self.dataframe(connection.sql(f'SELECT * FROM "{table}"').to_arrow_table(), table)

    def delta_frame(
        self,
        table: "DeltaTableIO",
        partition_column: str | None = None,
        values: Sequence[object] | None = None,
        *,
        paths: Collection[str] | None = None,
    ) -> Frame:
        """Read by DuckDB's own Parquet reader when the table is local (bounded memory: an Arrow
        dataset scan reads whole files ahead), else scanned lazily through Arrow."""
        query = table.local_parquet_sql(partition_column, values, paths=paths)
        if query is not None:
            return self.sql(query, "delta")
        scope = None
        if partition_column is not None and values is not None:
            scope = ds.field(partition_column).isin(list(values))
        dataset = table.duckdb_dataset(scope, paths=paths)
        if dataset is None:
            raise LookupError(f"{table.uri} is not a Delta table yet: materialize it first")
        return self.dataframe(dataset, "delta")

    def table(self, name: str) -> Frame:
        """A DataFrame over DuckDB table or view `name`.

        SQLFrame looks a table's columns up in DuckDB's catalog and normalizes each name and type
        through sqlglot (about 12 ms for 15 columns, a dozen times per run); the columns and types of
        DuckDB's own description are registered instead when every name is a plain lower-case
        identifier (other names take SQLFrame's lookup).
        """
        described = self.connection.sql(f'SELECT * FROM "{name}"')
        columns = {column: str(kind) for column, kind in zip(described.columns, described.types, strict=True)}
        if all(_PLAIN_NAME.fullmatch(column) for column in columns):
            self.session.catalog.add_table(name, columns)
        return self.session.table(name)

    def sql_text(self, df: Frame) -> str:
        """DuckDB SQL of a DataFrame, its CTEs inlined.

        SQLFrame writes each step as a CTE; DuckDB 2.0 materializes a CTE read more than once,
        which copies the whole input (deduplication reads its input three times: measured at 3 M
        rows, 5.3 s materialized, 1.1 s inlined). Expensive steps are persisted explicitly instead.
        """
        return _INLINE_CTE.sub(r"\1 AS NOT MATERIALIZED (", df.sql(dialect="duckdb", pretty=False, optimize=False))

    def to_arrow(self, df: Frame) -> pa.Table:
        return self.connection.sql(self.sql_text(df)).to_arrow_table()

    def to_reader(self, df: Frame, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Streams the result in batches of at most `batch_rows` rows."""
        return self.connection.sql(self.sql_text(df)).to_arrow_reader(batch_rows)

    def persist(self, df: Frame) -> Frame:
        table = self.unique_name("persisted")
        self.connection.execute(f'CREATE OR REPLACE TABLE "{table}" AS {self.sql_text(df)}')
        self._tables.append(table)
        return self.table(table)

    def checkpoint(self, df: Frame) -> Frame:
        """A view over `df`'s SQL: later steps start from a one-table plan.

        SQLFrame copies (and hashes) a DataFrame's whole expression, every CTE so far, on each
        step, so a chain of steps costs quadratically in Python. DuckDB inlines the view, so the
        query it runs is the same.
        """
        return self.sql(self.sql_text(df), "checkpoint")

    def child(self) -> "EmbeddedEngine":
        return EmbeddedEngine()

    def close(self) -> None:
        for view in self._views:
            self.connection.execute(f'DROP VIEW IF EXISTS "{view}"')
        for table in self._tables:
            self.connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        for name in self._registered:
            self.connection.unregister(name)
        self._views, self._tables, self._registered = [], [], []
