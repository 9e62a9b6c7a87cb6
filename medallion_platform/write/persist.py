"""`persist()`: the one route by which a table is written. It writes in one commit, then registers the
table in the catalog, so no table exists unregistered.

Every caller goes through it: the Delta IO manager (each asset output), the source step's unselected
half of a promotion, the flow, the CLI and the benchmark (`zones/flow.py`, `promote`, `refresh_refined`),
and the raw zone's bookkeeping (the ingest log, the rejected landing objects). A write without a catalog
entry (`entry` None) is an internal table the catalog does not list: the ingest log
(`raw/_ingest_log/<dataset>`), which only raw reads, as Delta's own `_delta_log` is not listed either.
"""

from collections.abc import Sequence

import pyarrow as pa

from medallion_platform.catalog import Catalog, build_catalog
from medallion_platform.lake.delta_io import DeltaTableIO, WriteResult
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.write.spec import RowsWrite, TableWrite
from medallion_platform.write.table_state import has_table
from medallion_platform.write.writers import table_columns, write_rows, write_table

__all__ = ["evolve", "persist"]


def evolve(target: DeltaTableIO, schema: pa.Schema) -> pa.Schema:
    """Delta schema evolution before a write: the columns of `schema` the table lacks are added (nullable;
    old rows read null), and the write's schema follows the table's column order, new columns last, so every
    writer (delta-rs, DuckDB's stream, Spark's `mergeSchema`) appends to the same layout. The contract
    gate (`zones/evolution.py`) has refused every change a table cannot take this way."""
    current = target.schema()
    if current is None:
        return schema
    target.add_columns([f for f in schema if f.name not in current.names])
    by_name = {f.name: f for f in schema}
    ordered = [by_name[n] for n in current.names if n in by_name]
    return pa.schema(ordered + [f for f in schema if f.name not in current.names])


def persist(
    lake: Lakehouse,
    key: Sequence[str],
    write: TableWrite | RowsWrite,
    *,
    catalog: Catalog | None = None,
    table: DeltaTableIO | None = None,
) -> WriteResult:
    """Writes `write` to the table of `key` (`[zone, name]`, an asset key's path) and registers the table
    in `catalog` (None: the catalog `lake`'s settings name) with `write.entry` right after.

    `table` overrides where the rows go (the ingest log, which has no asset key); it is registered as
    `key` only if the write carries an entry.
    """
    target = table if table is not None else lake.for_key(key)
    entry = write.entry
    zone, name = key

    def register() -> None:
        if entry is not None:
            columns = None if isinstance(write, RowsWrite) else table_columns(write.engine, target)
            (catalog or build_catalog(lake.settings)).register(
                zone, name, schema=write.schema, entry=entry, columns=columns
            )

    with target.opened():  # the write and the test below read the table's log once
        native = isinstance(write, TableWrite) and write.engine.name == "databricks"
        if entry is not None and entry.unindexed and not native:  # a cluster's: its first write's options
            target.withhold_statistics(entry.unindexed, write.schema)
        if isinstance(write, TableWrite) and write.frame is not None and write.engine.name != "databricks":
            # on a cluster Spark evolves the schema itself (`mergeSchema`, MERGE WITH SCHEMA EVOLUTION)
            write.schema = evolve(target, write.schema)
        if isinstance(write, RowsWrite):
            result = write_rows(target, write)
        else:
            registers = register if entry is not None else None
            result = write_table(target, write, batch_rows=lake.settings.write_batch_rows, register=registers)
        exists = target.exists() if isinstance(write, RowsWrite) else has_table(write.engine, target)
    if exists:
        register()
    return result
