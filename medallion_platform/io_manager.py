"""The Delta IO manager: every asset's Delta write, and the DataFrames downstream assets read.

Assets return a `TableWrite` (a lazy frame on the step's engine plus a typed write spec); the IO
manager writes it with that engine's writer (`lake/writers.py`) in one commit, streaming, and adds
the write's figures to the output's metadata. `dagster-deltalake`'s IO manager has no MERGE and
collects each output into memory, so Medallion has its own.

`load_input` hands a downstream asset its input as a DataFrame on the run's engine, over the Delta
table's current version. An input whose `AssetIn` metadata names a `partition_column` is read only
for the partitions being built (refined dated tables read only their event dates of
`trusted/order_events`). Frames live on the process's session (the DuckDB connection, or the
SparkSession), which every engine of a kind shares, so the asset body's own engine can use them.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from medallion_platform.catalog import Catalog
from medallion_platform.engine.base import Engine, Frame, build_engine
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.writers import write_table
from medallion_platform.lake.writes import TableWrite
from medallion_platform.resources import LakehouseResource

__all__ = ["PARTITION_COLUMN", "DeltaIOManager", "persist", "write_metadata"]

PARTITION_COLUMN = "partition_column"
"""`AssetIn` metadata key: the input's column that the partitions being built select."""


def write_metadata(table: DeltaTableIO, result: WriteResult) -> dict[str, Any]:
    """What a write did and the table as it stands after it: Delta version, rows, files, location."""
    delta = table.table()
    out: dict[str, Any] = {
        "dagster/uri": table.uri,
        "delta_version": -1 if result.version is None else result.version,
        "rows_inserted": result.inserted,
        "rows_updated": result.updated,
        "write_skipped": result.skipped,
    }
    if delta is not None:
        out["dagster/row_count"] = int(delta.count())
        out["files"] = len(delta.file_uris())
    return out


def persist(lake: Lakehouse, catalog: Catalog, key: dg.AssetKey, write: TableWrite) -> WriteResult:
    """Writes `write` to the table of `key` and registers the table in the catalog right after, so no
    table exists unregistered (what the IO manager does with each output)."""
    table = lake.for_key(key.path)
    with table.opened():  # the write and the test below read the table's log once
        result = write_table(table, write, batch_rows=lake.settings.write_batch_rows)
        exists = table.exists()
    if write.entry is not None and exists:
        zone, name = key.path
        catalog.register(zone, name, schema=write.schema, entry=write.entry)
    return result


class DeltaIOManager(dg.ConfigurableIOManager):
    """Writes `TableWrite` outputs to their Delta tables and loads inputs as DataFrames."""

    lakehouse: LakehouseResource
    engine_kind: str | None = None
    """The engine inputs are loaded on; unset: `MEDALLION_ENGINE` (the step's engine)."""

    _engine: Engine | None = PrivateAttr(default=None)

    def _run_engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.engine_kind or self.lakehouse.settings().engine)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def handle_output(self, context: dg.OutputContext, obj: TableWrite | None) -> None:
        if obj is None:  # an op without a table (the maintenance job)
            return
        lake = self.lakehouse.lake()
        result = persist(lake, self.lakehouse.catalog(), context.asset_key, obj)
        metadata = write_metadata(lake.for_key(context.asset_key.path), result)
        if obj.figures is not None:
            metadata |= dict(obj.figures(result))
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Frame:
        key = context.asset_key
        table = self.lakehouse.lake().for_key(key.path)
        if not table.exists():
            raise dg.Failure(f"{'/'.join(key.path)} has no Delta table at {table.uri} yet: materialize it first")
        column = (context.definition_metadata or {}).get(PARTITION_COLUMN)
        values: Sequence[object] | None = None
        if column is not None and context.has_asset_partitions:
            import datetime as dt

            values = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        return self._run_engine().delta_frame(table, column if values is not None else None, values)
