"""The embedded engine: the PySpark DataFrame API on DuckDB through SQLFrame. No JVM.

SQLFrame keeps one session per process (a singleton), so every `EmbeddedEngine` shares one DuckDB
connection; each engine drops the views and tables it created when it is closed.
"""

import gc
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlframe.duckdb import DuckDBSession, Window
from sqlframe.duckdb import functions as F
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from medallion_platform.engine.base import ArrowData, Engine, Frame
from medallion_platform.engine.plans import PlanCache, RecordedPlan, Template, plan_cache_dir
from medallion_platform.settings import MedallionEnvironment

if TYPE_CHECKING:
    from medallion_platform.lake.delta_io import DeltaTableIO

__all__ = ["EmbeddedEngine"]

_LOCK = threading.Lock()
_INLINE_CTE = re.compile(r'(?<=[ ,])("t\d+") AS \((?=SELECT )')
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_SHARED: dict[str, Any] = {}
_SELECTS: dict[tuple[str, ...], exp.Select] = {}
"""Per list of plain column names, the SELECT of them that a table's frame starts from (`_table`)."""

# SQLFrame's first function lookup loads every sqlglot dialect (0.07 s): do it while importing, not in a run.
Dialect.classes  # noqa: B018


def _shared_session() -> tuple[duckdb.DuckDBPyConnection, DuckDBSession]:
    with _LOCK:
        if "session" not in _SHARED:
            connection = duckdb.connect()
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET enable_progress_bar = false")
            # Bounded memory: past the limit DuckDB spills to its temp directory.
            environment = MedallionEnvironment.read()
            connection.execute(f"SET memory_limit = '{environment.duckdb_memory_limit}'")
            spill = Path(tempfile.gettempdir()) / f"medallion-duckdb-{os.getpid()}"
            connection.execute(f"SET temp_directory = '{spill}'")
            connection.execute("SET preserve_insertion_order = false")
            # Parquet footers read once per process: a run reads the same trusted files in several plans
            # (the promotion's key counts, each refined table's inputs). Delta's data files never change.
            connection.execute("SET parquet_metadata_cache = true")
            _SHARED["connection"] = connection
            directory = plan_cache_dir(environment.plan_cache)
            _SHARED["plans"] = None if directory is None else PlanCache(directory)
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
        self.plans: PlanCache | None = _SHARED["plans"]
        """Where `planned` keeps the plans it builds (`MEDALLION_PLAN_CACHE`); None: none kept."""
        self._views: list[str] = []
        self._tables: list[str] = []
        self._registered: list[str] = []
        self._recording: list[tuple[str, str]] | None = None
        """While `planned` builds a template: the views it creates, with their queries."""
        self._frame_views: dict[int, tuple[Frame, str, list[tuple[str, str]]]] = {}
        """The frames `sql` and `persist` returned (by id), each with its view or table and its columns and
        types: `planned` takes them as they are."""

    def unique_name(self, stem: str) -> str:
        """A view or table name no other process or engine uses (`planned` renames recorded plans' views
        by name: a name must not be part of another)."""
        return f"{stem}_{uuid.uuid4().hex[:16]}"

    def dataframe(self, data: ArrowData, name: str = "input") -> Frame:
        # SQLFrame learns columns from DuckDB's catalog: a registered Arrow object shows none,
        # a view over it does, and DuckDB still scans the Arrow dataset lazily.
        arrow = f"{self.unique_name(name)}__arrow"
        self._not_a_plan()
        self.connection.register(arrow, data)
        self._registered.append(arrow)
        return self.sql(f'SELECT * FROM "{arrow}"', name)

    def sql(self, query: str, name: str = "query") -> Frame:
        """A DataFrame over a DuckDB query (a view: nothing runs until the frame is used)."""
        return self._sql(query, name)

    def _sql(self, query: str, name: str, described: Sequence[tuple[str, str]] | None = None) -> Frame:
        """`sql`, the view's columns and types given if known (`described`), else asked of DuckDB."""
        view = self._view(query, name)
        if self._recording is not None:
            self._recording.append((view, query))
        return self._view_frame(view, list(described) if described is not None else self._describe(view))

    def _view_frame(self, name: str, described: list[tuple[str, str]]) -> Frame:
        """The frame of DuckDB view or table `name` as it stands, remembered as such (`_as_view`)."""
        frame = self._table(name, described)
        self._frame_views[id(frame)] = (frame, name, described)
        return frame

    def _as_view(self, frame: Frame) -> tuple[str, list[tuple[str, str]]] | None:
        """The view (or table) `frame` is as it stands, with its columns and types; None for a frame with steps
        of its own."""
        known = self._frame_views.get(id(frame))
        return (known[1], known[2]) if known is not None and known[0] is frame else None

    def planned(self, template: Template, /, **inputs: Frame) -> Frame:
        """`template.build(self, **inputs)`, its SQL kept in the plan cache (`engine/plans.py`): a later
        call over inputs of the same columns and types, in any process, runs that SQL over its own inputs
        without building the plan again (SQLFrame's plan building is most of a small batch's time)."""
        if self.plans is None:
            return template.build(self, **inputs)
        views: dict[str, str] = {}
        schemas: dict[str, list[tuple[str, str]]] = {}
        for name, frame in inputs.items():  # each input as a view of its own: a frame of `sql` is one already
            known = self._as_view(frame)
            if known is not None:
                views[name], schemas[name] = known
            else:
                views[name] = self._view(self.sql_text(frame), name)
                schemas[name] = self._describe(views[name])
        key = self.plans.key(template, schemas)
        recorded = self.plans.get(key)
        if recorded is not None:  # the key holds the inputs' names: the same names as `views`
            names = {recorded.inputs[name]: view for name, view in views.items()}
            names |= {view: self.unique_name("planned") for view, _ in recorded.views}
            created, sql = recorded.renamed(names)
            for view, query in created:
                self._view(query, view=view)
            return self._sql(sql, "planned", recorded.columns)
        self._recording = []
        try:
            frames = {name: self._table(view, schemas[name]) for name, view in views.items()}
            sql = self.sql_text(template.build(self, **frames))
            created_views = self._recording
        finally:
            self._recording = None
        result = self._sql(sql, "planned")  # a view, as a later call's result is
        if created_views is not None:  # None: the template read data (`dataframe`): nothing to keep
            self.plans.put(key, RecordedPlan(views, created_views, sql, self._frame_views[id(result)][2]))
        return result

    def _not_a_plan(self) -> None:
        """A template being built reads data or a named table: its SQL is not kept (a later call would
        name the first call's data)."""
        self._recording = None

    def _view(self, query: str, stem: str = "view", *, view: str | None = None) -> str:
        """A view over `query` (named `view`, else a new name), dropped when the engine closes."""
        view = view or self.unique_name(stem)
        self.connection.execute(f'CREATE OR REPLACE VIEW "{view}" AS {query}')
        self._views.append(view)
        return view

    def _describe(self, name: str) -> list[tuple[str, str]]:
        """The columns of DuckDB table or view `name` and their types."""
        described = self.connection.sql(f'SELECT * FROM "{name}"')
        return [(column, str(kind)) for column, kind in zip(described.columns, described.types, strict=True)]

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
        self._not_a_plan()
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
        self._not_a_plan()
        return self._table(name, self._describe(name))

    def _table(self, name: str, described: Sequence[tuple[str, str]]) -> Frame:
        columns = dict(described)
        if not all(_PLAIN_NAME.fullmatch(column) for column in columns) or not _PLAIN_NAME.fullmatch(name):
            return self.session.table(name)
        self.session.catalog.add_table(name, columns)
        # The query `session.table(name)` starts from (SQLFrame's reader parses each column's name again on
        # every call): built once per list of columns, then only its FROM is this table.
        dialect = self.session.input_dialect
        select = _SELECTS.get(tuple(columns))
        if select is None:
            listed = self.session.catalog.get_columns_from_schema(name)
            select = _SELECTS.setdefault(tuple(columns), exp.Select().select(*listed, dialect=dialect))
        return self.session._create_table(select.from_(name, dialect=dialect))

    def sql_text(self, df: Frame) -> str:
        """DuckDB SQL of a DataFrame, its CTEs inlined.

        SQLFrame writes each step as a CTE; DuckDB 2.0 materializes a CTE read more than once,
        which copies the whole input (deduplication reads its input three times: measured at 3 M
        rows, 5.3 s materialized, 1.1 s inlined). Expensive steps are persisted explicitly instead.
        """
        known = self._as_view(df)
        if known is not None:  # a view (or table) as it is: nothing for SQLFrame to write
            return f'SELECT * FROM "{known[0]}"'
        return _INLINE_CTE.sub(r"\1 AS NOT MATERIALIZED (", df.sql(dialect="duckdb", pretty=False, optimize=False))

    def to_arrow(self, df: Frame) -> pa.Table:
        return self.connection.sql(self.sql_text(df)).to_arrow_table()

    def to_reader(self, df: Frame, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Streams the result in batches of at most `batch_rows` rows."""
        return self.connection.sql(self.sql_text(df)).to_arrow_reader(batch_rows)

    def persist(self, df: Frame) -> Frame:
        self._not_a_plan()
        table = self.unique_name("persisted")
        self.connection.execute(f'CREATE OR REPLACE TABLE "{table}" AS {self.sql_text(df)}')
        self._tables.append(table)
        return self._view_frame(table, self._describe(table))

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
        self._frame_views = {}
