"""Appending to a local Delta table straight from DuckDB: DuckDB writes the Parquet files (in
parallel, without an Arrow round trip), delta-rs commits them as add actions in one transaction.

Used for the big appends (raw batches, first trusted loads, quarantine) when the table is on a
local file system; object stores go through delta-rs's own writer. Files are written to a
staging folder inside the table and moved into place before the commit, so a crash leaves only
unreferenced files (which vacuum removes), never a half-written version.
"""

import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, create_table_with_add_actions

__all__ = ["append_query", "duckdb_type", "is_local"]


def duckdb_type(kind: pa.DataType) -> str:
    """The DuckDB type whose Parquet encoding Delta reads back as `kind`."""
    if pa.types.is_decimal(kind):
        return f"DECIMAL({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    for check, name in (
        (pa.types.is_int64, "BIGINT"),
        (pa.types.is_int32, "INTEGER"),
        (pa.types.is_floating, "DOUBLE"),
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_date, "DATE"),
    ):
        if check(kind):
            return name
    return "VARCHAR"


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _stats_value(value: object) -> object:
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if "T" in text else text
    return value


def append_query(
    con: duckdb.DuckDBPyConnection,
    query: str,
    uri: str,
    schema: pa.Schema,
    *,
    partition_by: Sequence[str] = (),
    stats_columns: Sequence[str] = (),
    commit: CommitProperties | None = None,
) -> int:
    """Writes the rows of `query` (columns in `schema` order) to the Delta table at `uri`; returns the rows."""
    root = Path(uri.removeprefix("file://"))
    staging = root / f"_staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    columns = ", ".join(f'CAST("{f.name}" AS {duckdb_type(f.type)}) AS "{f.name}"' for f in schema)
    options = "FORMAT PARQUET, COMPRESSION snappy, ROW_GROUP_SIZE 122880"
    if partition_by:
        parts = ", ".join(f'"{c}"' for c in partition_by)
        options += f", PARTITION_BY ({parts}), FILENAME_PATTERN 'part-{{uuid}}'"
        con.execute(f"COPY (SELECT {columns} FROM ({query})) TO '{staging}' ({options})").fetchall()
    else:
        con.execute(
            f"COPY (SELECT {columns} FROM ({query})) TO '{staging}/part-{uuid.uuid4()}.parquet' ({options})"
        ).fetchall()
    actions, total = [], 0
    measured = [c for c in stats_columns if c not in partition_by]
    for path in sorted(staging.rglob("*.parquet")):
        relative = path.relative_to(staging)
        values = {}
        for segment in relative.parts[:-1]:
            key, _, value = segment.partition("=")
            values[key] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
        aggregates = ", ".join(f'min("{c}"), max("{c}"), count(*) - count("{c}")' for c in measured)
        row = con.execute(
            f"SELECT count(*){', ' + aggregates if aggregates else ''} FROM read_parquet('{path}')"
        ).fetchall()[0]
        rows = int(row[0])
        stats = {"numRecords": rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
        for i, c in enumerate(measured):
            low, high, nulls = row[1 + 3 * i : 4 + 3 * i]
            stats["nullCount"][c] = int(nulls)
            if low is not None:
                stats["minValues"][c], stats["maxValues"][c] = _stats_value(low), _stats_value(high)
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        actions.append(
            AddAction(
                path=str(relative),
                size=target.stat().st_size,
                partition_values=values,
                modification_time=int(time.time() * 1000),
                data_change=True,
                stats=json.dumps(stats),
            )
        )
        total += rows
    for folder in sorted(staging.rglob("*"), reverse=True):
        folder.rmdir()
    staging.rmdir()
    if (root / "_delta_log").exists():
        DeltaTable(str(root)).create_write_transaction(
            actions, mode="append", schema=schema, partition_by=list(partition_by) or None, commit_properties=commit
        )
    else:
        create_table_with_add_actions(
            str(root),
            DeltaSchema.from_arrow(schema),
            actions,
            mode="append",
            partition_by=list(partition_by) or None,
            commit_properties=commit,
        )
    return total
