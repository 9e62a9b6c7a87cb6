"""The embedded engine: the PySpark DataFrame API on DuckDB through SQLFrame. No JVM."""

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlframe.duckdb import DuckDBSession, Window
from sqlframe.duckdb import functions as F

from medallion_platform.engine.base import ArrowData, Engine

__all__ = ["EmbeddedEngine"]


class EmbeddedEngine(Engine):
    """One DuckDB connection and SQLFrame session; time zone UTC like the Spark session."""

    name = "embedded"
    F = F
    Window = Window

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None):
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.connection.execute(f"SET memory_limit = '{memory_limit}'")
        self.session = DuckDBSession(conn=self.connection)

    def dataframe(self, data: ArrowData, name: str = "input") -> Any:
        # SQLFrame learns columns from DuckDB's catalog: a registered Arrow object shows none,
        # a view over it does, and DuckDB still scans the Arrow dataset lazily.
        view = self.unique_name(name)
        self.connection.register(f"{view}__arrow", data)
        self.connection.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM "{view}__arrow"')
        return self.session.table(view)

    def sql(self, df: Any) -> str:
        return df.sql(dialect="duckdb", pretty=False)

    def to_arrow(self, df: Any) -> pa.Table:
        return self.connection.sql(self.sql(df)).to_arrow_table()

    def to_reader(self, df: Any, batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Streams the result in batches of at most `batch_rows` rows."""
        return self.connection.sql(self.sql(df)).to_arrow_reader(batch_rows)

    def persist(self, df: Any) -> Any:
        table = self.unique_name("persisted")
        self.connection.execute(f'CREATE OR REPLACE TABLE "{table}" AS {self.sql(df)}')
        return self.session.table(table)

    def scan(self, dataset: ds.Dataset, name: str = "scan") -> Any:
        return self.dataframe(dataset, name)

    def close(self) -> None:
        self.connection.close()
