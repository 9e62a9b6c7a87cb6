"""The Delta IO manager: every asset's Delta write, and the DataFrames downstream assets read.

Assets return a `TableWrite` (a lazy frame on the step's engine plus a typed write spec); the IO
manager hands it to `write.persist.persist()` (the engine's writer, one commit, streaming, then the
catalog registration) and adds the write's figures to the output's metadata. `dagster-deltalake`'s IO
manager has no MERGE and collects each output into memory, so Medallion has its own.

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

from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.engine import Engine, build_engine, engine_kind
from medallion_platform.engine.base import Frame
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import TableWrite
from medallion_platform.write.table_state import cluster_of, has_table, table_at

__all__ = ["PARTITION_COLUMN", "DeltaIOManager", "write_metadata"]

PARTITION_COLUMN = "partition_column"
"""`AssetIn` metadata key: the input's column that the partitions being built select."""


def write_metadata(table: DeltaTableIO, result: WriteResult, engine: Engine | None = None) -> dict[str, Any]:
    """What a write did and the table as it stands after it: Delta version, rows, files, location. On a
    cluster (`engine`) its Spark counts the rows (by name; Delta answers from its statistics) and the files
    go uncounted: the driver reads no log."""
    out: dict[str, Any] = {
        "dagster/uri": table.uri,
        "delta_version": -1 if result.version is None else result.version,
        "rows_inserted": result.inserted,
        "rows_updated": result.updated,
        "write_skipped": result.skipped,
    }
    cluster = cluster_of(engine)
    if cluster is not None:
        if has_table(cluster, table):
            out["dagster/row_count"] = int(table_at(cluster, table, None).count())
        return out
    delta = table.table()
    if delta is not None:
        out["dagster/row_count"] = int(delta.count())
        out["files"] = len(delta.file_uris())
    return out


class DeltaIOManager(dg.ConfigurableIOManager):
    """Writes `TableWrite` outputs to their Delta tables and loads inputs as DataFrames."""

    lakehouse: LakehouseResource
    engine_kind: str | None = None
    """The engine inputs are loaded on; unset: `MEDALLION_ENGINE` (the step's engine)."""

    _engine: Engine | None = PrivateAttr(default=None)

    def _run_engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(
                engine_kind(self.engine_kind) if self.engine_kind else self.lakehouse.settings().engine
            )
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def handle_output(self, context: dg.OutputContext, obj: TableWrite | None) -> None:
        if obj is None:  # an op without a table (the maintenance job)
            return
        lake = self.lakehouse.lake()
        result = persist(lake, context.asset_key.path, obj, catalog=self.lakehouse.catalog())
        metadata = write_metadata(lake.for_key(context.asset_key.path), result, obj.engine)
        if obj.figures is not None:
            metadata |= dict(obj.figures(result))
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Frame:
        key = context.asset_key
        table = self.lakehouse.lake().for_key(key.path)
        if not has_table(self._run_engine(), table):  # on a cluster its Spark asks: the driver reads nothing
            raise dg.Failure(f"{'/'.join(key.path)} has no Delta table at {table.uri} yet: materialize it first")
        column = (context.definition_metadata or {}).get(PARTITION_COLUMN)
        values: Sequence[object] | None = None
        if column is not None and context.has_asset_partitions:
            import datetime as dt

            values = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        return self._run_engine().delta_frame(table, column if values is not None else None, values)
