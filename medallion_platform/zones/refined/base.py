"""What a refined table declares, and how it is computed and written."""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.schema import conform
from medallion_platform.settings import Settings

__all__ = ["RefinedTable", "amount", "build_refined", "write_refined"]

PARTITION = "event_date"


@dataclass(frozen=True)
class RefinedTable:
    """A refined table: its trusted inputs, its schema and the PySpark-API function that builds it."""

    name: str
    description: str
    owner: str
    inputs: tuple[str, ...]
    """Trusted tables it reads; `order_events` is read only for the partitions being built."""
    schema: pa.Schema
    build: Callable[..., Any]
    partitioned: bool = True
    """Partitioned by `event_date`: a run rewrites exactly the dates it is given."""


def amount(F: Any) -> Any:
    """quantity x unit_price as decimal(18,2) on every engine."""
    return (F.col("quantity") * F.col("unit_price")).cast("decimal(18,2)")


def _input(settings: Settings, name: str, dates: Sequence[str] | None) -> ds.Dataset:
    scope = None
    if name == "order_events" and dates is not None:
        scope = ds.field(PARTITION).isin([dt.date.fromisoformat(d) for d in dates])
    table = DeltaTableIO(settings.table_uri("trusted", name), storage_options=settings.storage_options)
    dataset = table.duckdb_dataset(scope)
    if dataset is None:
        raise RuntimeError(f"trusted/{name} does not exist yet: materialize it before the refined tables")
    return dataset


def build_refined(settings: Settings, engine: Any, table: RefinedTable, dates: Sequence[str] | None) -> pa.Table:
    """Computes `table` (for `dates` if partitioned) on `engine`, conformed to its schema."""
    frames = {name: engine.dataframe(_input(settings, name, dates), name) for name in table.inputs}
    return conform(engine.to_arrow(table.build(engine, **frames)), table.schema)


def write_refined(settings: Settings, table: RefinedTable, rows: pa.Table, dates: Sequence[str] | None) -> WriteResult:
    """Overwrites exactly `dates` (partitioned tables) or the whole table, in one commit."""
    target = DeltaTableIO(settings.table_uri("refined", table.name), storage_options=settings.storage_options)
    if table.partitioned:
        values = [dt.date.fromisoformat(d) for d in dates or []]
        return target.overwrite_partitions(rows, partition_column=PARTITION, values=values)
    return target.overwrite(rows)
