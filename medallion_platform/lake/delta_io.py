"""One Delta IO layer over delta-rs: append, MERGE on keys, partition overwrite; idempotent and atomic.

Every write is one commit. Writers pass app transactions (`txns`: application id -> monotonically
increasing version): delta-rs records them but does not enforce them, so each write first reads the
recorded versions and writes nothing when the batch was already committed. A write opens the
table's log once (`DeltaTableReader.opened`): the retry test, the commit and the version after it
read the same log, brought up to date after the commit. Reads are in `lake/delta_reads.py`.
"""

import functools
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, Transaction, WriterProperties, write_deltalake
from deltalake import Field as DeltaField
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from medallion_platform.contracts.model import WhenMatched
from medallion_platform.lake.delta_reads import DeltaTableReader, is_local
from medallion_platform.lake.files import ROWS_PER_GROUP, WrittenFiles, write_files
from medallion_platform.lake.schema import conform_stream
from medallion_platform.lake.sql import ident, literal, newer_than

__all__ = ["STATS_COLUMNS", "DeltaTableIO", "WriteResult", "is_local", "withheld_statistics"]

STATS_COLUMNS = "delta.dataSkippingStatsColumns"
"""Delta's table property naming the columns file statistics are kept for (Delta 3.0+, Databricks, delta-rs)."""


def withheld_statistics(names: Sequence[str], withheld: Collection[str]) -> dict[str, str]:
    """The table property that keeps file statistics for every column of `names` but `withheld` ({}: none
    withheld, every column keeps its statistics)."""
    if not withheld:
        return {}
    return {STATS_COLUMNS: ",".join(dict.fromkeys(n for n in names if n not in withheld))}


# For the writes delta-rs still does itself (MERGE, partition overwrite, whole-table overwrite):
# delta-rs holds each open partition's row group and each open file in memory until they are full,
# so both are kept small (its default row group of 1 Mi rows times a week of partitions is most of a
# batch). Appends go through `lake/files.py`, which bounds memory by construction.
TARGET_FILE_SIZE = 16 * 1024 * 1024
WRITER = WriterProperties(max_row_group_size=32_768, compression="SNAPPY")


@dataclass(frozen=True)
class WriteResult:
    """What one write did. `skipped` means the batch had been committed before."""

    version: int | None
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: bool = False
    metrics: dict = field(default_factory=dict)
    max_batch_rows: int = 0
    """Largest record batch that streamed through (memory guard)."""
    source_rows: int = 0
    """Rows the write was given."""


def _one_log(write: Callable[..., WriteResult]) -> Callable[..., WriteResult]:
    """Runs a write inside `opened()`: its questions and its commit read the table's log once."""

    @functools.wraps(write)
    def within(self: "DeltaTableIO", *args: Any, **kwargs: Any) -> WriteResult:
        with self.opened():
            return write(self, *args, **kwargs)

    return within


class DeltaTableIO(DeltaTableReader):
    """Reads (`DeltaTableReader`) and writes one Delta table at `uri`; each write opens its log once."""

    def _create_options(self) -> dict:
        return {} if self.exists() or not self.configuration else {"configuration": self.configuration}

    def stats_columns(self) -> list[str] | None:
        """The columns file statistics are kept for (`STATS_COLUMNS` of the table, or of the table this object
        will create); None: every column."""
        table = self.table()
        configuration = table.metadata().configuration if table is not None else self.configuration or {}
        value = configuration.get(STATS_COLUMNS)
        return None if value is None else [c.strip().strip("`") for c in value.split(",") if c.strip()]

    def withhold_statistics(self, withheld: Sequence[str], schema: pa.Schema) -> None:
        """Keeps the values of `withheld` out of the Delta log: file statistics are kept for every other column
        of the table and `schema` (Delta's `STATS_COLUMNS`), set at creation, or in a commit of its own when an
        existing table's setting differs (a table from before, a column added since). Every writer of the
        table honours it: delta-rs's MERGE and overwrite, `lake/files.py`, Spark's Delta writer."""
        with self.opened():
            table, current = self.table(), self.schema()
            wanted = withheld_statistics([*(current.names if current is not None else []), *schema.names], withheld)
            if table is None:
                self.configuration = {**(self.configuration or {}), **wanted}
            elif wanted and table.metadata().configuration.get(STATS_COLUMNS) != wanted[STATS_COLUMNS]:
                table.alter.set_table_properties(wanted)
                self._committed()

    # -- writing ---------------------------------------------------------------------------
    def _commit(self, txns: dict[str, int], metadata: dict | None) -> CommitProperties:
        transactions = [Transaction(app_id=a, version=v) for a, v in sorted(txns.items())] or None
        custom = {k: str(v) for k, v in (metadata or {}).items()} or None
        return CommitProperties(custom_metadata=custom, app_transactions=transactions)

    @_one_log
    def append(
        self,
        data: pa.Table | pa.RecordBatchReader,
        *,
        partition_by: Sequence[str] | None = None,
        txns: dict[str, int] | None = None,
        metadata: dict | None = None,
    ) -> WriteResult:
        """Appends `data` in one commit (a reader streams: memory stays bounded by its batches)."""
        txns = dict(txns or {})
        if self.committed_before(txns):
            return WriteResult(version=self.version(), skipped=True)
        reader = (
            data
            if isinstance(data, pa.RecordBatchReader)
            else pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=ROWS_PER_GROUP))
        )
        written = write_files(
            self.uri,
            reader,
            partition_by=partition_by,
            storage_options=self.storage_options,
            stats_columns=self.stats_columns(),
        )
        self._commit_files(written, reader.schema, partition_by, txns, metadata)
        return WriteResult(
            version=self.version(),
            inserted=written.rows,
            max_batch_rows=written.largest_batch,
            source_rows=written.rows,
        )

    def _commit_files(
        self,
        written: WrittenFiles,
        schema: pa.Schema,
        partition_by: Sequence[str] | None,
        txns: dict[str, int],
        metadata: dict | None,
    ) -> None:
        """Commits files written by `write_files` as one append (creating the table if needed)."""
        commit = self._commit(txns, metadata)
        partitions = list(partition_by) if partition_by else None
        table = self.table()
        if table is None:
            create_table_with_add_actions(
                self.uri,
                DeltaSchema.from_arrow(schema),
                written.actions,
                mode="append",
                partition_by=partitions,
                configuration=self.configuration,
                storage_options=self.storage_options,
                commit_properties=commit,
            )
        else:
            table.create_write_transaction(
                list[AddAction | RemoveAction](written.actions),
                mode="append",
                schema=schema,
                partition_by=partitions,
                commit_properties=commit,
            )
        self._committed()

    @_one_log
    def record_transactions(self, txns: dict[str, int], metadata: dict | None = None) -> WriteResult:
        """Records `txns` in a commit of their own (no data): for a write made by an engine that does not
        record app transactions itself (see `engine/databricks.py`, DIVERGENCES), after that write, which must
        be idempotent on its own: a retry between the two repeats the write harmlessly."""
        table = self.table()
        if table is None or not txns or self.committed_before(txns):
            return WriteResult(version=self.version(), skipped=True)
        table.create_write_transaction(
            [],
            mode="append",
            schema=pa.schema(table.schema().to_arrow()),
            partition_by=table.metadata().partition_columns or None,
            commit_properties=self._commit(txns, metadata),
        )
        self._committed()
        return WriteResult(version=self.version())

    def append_query(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        *,
        schema: pa.Schema,
        partition_by: Sequence[str] | None = None,
        txns: dict[str, int] | None = None,
        metadata: dict | None = None,
        batch_rows: int = 100_000,
    ) -> WriteResult:
        """Appends the rows of a DuckDB query in one commit, streamed in batches of at most `batch_rows`.

        (Measured: DuckDB's own partitioned Parquet writer plus an add-action commit cost more CPU
        than exporting Arrow batches to delta-rs's writer.)
        """
        reader = conform_stream(con.sql(query).to_arrow_reader(batch_rows), schema)
        return self.append(reader, partition_by=partition_by, txns=txns, metadata=metadata)

    @_one_log
    def merge(
        self,
        data: pa.Table | pa.RecordBatchReader,
        *,
        keys: Sequence[str],
        partition_column: str | None = None,
        partition_values: Sequence[object] | None = None,
        when_matched: WhenMatched = "ignore",
        newer_column: str | None = None,
        txns: dict[str, int] | None = None,
        metadata: dict | None = None,
        newer_columns: Sequence[str] = (),
    ) -> WriteResult:
        """MERGE `data` (one row per key) on `keys`, in one commit.

        `update_if_newer` compares `newer_columns` in order when given (`lake/sql.py::newer_than`), else
        `newer_column`.

        With a partition column, the predicate names the partitions the source touches
        (`partition_values`, or read from a table source), so only those are scanned and rewritten.
        """
        txns = dict(txns or {})
        if self.committed_before(txns):
            return WriteResult(version=self.version(), skipped=True)
        table = self.table()
        if table is None:  # nothing to match: the first MERGE is an append
            return self.append(
                data, partition_by=[partition_column] if partition_column else None, txns=txns, metadata=metadata
            )
        commit = self._commit(txns, metadata)
        rows = _RowCounter(data)
        predicate = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        if partition_column:
            given = list(partition_values) if partition_values is not None else None
            if given is None and isinstance(data, pa.Table):
                given = data.column(partition_column).to_pylist()
            values = sorted({v for v in given or [] if v is not None}, key=str)
            if values:
                predicate += f" AND t.{ident(partition_column)} IN ({', '.join(literal(v) for v in values)})"
        merger = table.merge(
            rows.stream(),
            predicate,
            source_alias="s",
            target_alias="t",
            writer_properties=WRITER,
            commit_properties=commit,
        )
        if when_matched == "update":
            merger = merger.when_matched_update_all()
        elif when_matched == "update_if_newer":
            merger = merger.when_matched_update_all(predicate=newer_than(list(newer_columns) or [newer_column or ""]))
        metrics = merger.when_not_matched_insert_all().execute()
        self._committed()
        return WriteResult(
            version=self.version(),
            inserted=int(metrics.get("num_target_rows_inserted", 0)),
            updated=int(metrics.get("num_target_rows_updated", 0)),
            metrics=dict(metrics),
            max_batch_rows=rows.largest,
            source_rows=rows.count,
        )

    @_one_log
    def overwrite_partitions(
        self,
        data: pa.Table | pa.RecordBatchReader,
        *,
        partition_column: str,
        values: Iterable[object],
        txns: dict[str, int] | None = None,
        metadata: dict | None = None,
    ) -> WriteResult:
        """Replaces exactly the partitions `values` with `data`, atomically, in one commit."""
        values = sorted(set(values), key=str)
        txns = dict(txns or {})
        if self.committed_before(txns):
            return WriteResult(version=self.version(), skipped=True)
        if not values:
            return WriteResult(version=self.version())
        predicate = f"{ident(partition_column)} IN ({', '.join(literal(v) for v in values)})"
        if isinstance(data, pa.Table):
            outside = [v for v in set(data.column(partition_column).to_pylist()) if v not in values]
            if outside:
                raise ValueError(f"rows for partitions {sorted(outside)} outside the overwrite {values}")
        rows = _RowCounter(data)
        common: dict[str, Any] = {
            "partition_by": [partition_column],
            "storage_options": self.storage_options,
            "writer_properties": WRITER,
            "target_file_size": TARGET_FILE_SIZE,
            "commit_properties": self._commit(txns, metadata),
        }
        table = self.table()
        if table is not None:  # the open log: delta-rs commits after the version this write was planned on
            write_deltalake(table, rows.stream(), mode="overwrite", predicate=predicate, **common)
        else:
            write_deltalake(self.uri, rows.stream(), mode="append", **common, **self._create_options())
        self._committed()
        return WriteResult(
            version=self.version(), inserted=rows.count, max_batch_rows=rows.largest, source_rows=rows.count
        )

    @_one_log
    def delete(self, predicate: str, *, txns: dict[str, int], metadata: dict | None = None) -> WriteResult:
        """Deletes the rows matching `predicate` (DataFusion SQL: `lake/sql.py`) in one commit carrying `txns`
        and `metadata`; a retry of `txns` deletes nothing (skipped). Files holding no matching row stay."""
        txns = dict(txns)
        table = self.table()
        if table is None:
            return WriteResult(version=None, skipped=True)
        if self.committed_before(txns):
            return WriteResult(version=self.version(), skipped=True)
        metrics = table.delete(predicate, writer_properties=WRITER, commit_properties=self._commit(txns, metadata))
        self._committed()
        return WriteResult(version=self.version(), deleted=int(metrics.get("num_deleted_rows") or 0), metrics=metrics)

    def vacuum(self, *, retention_hours: int) -> int:
        """Removes the files no version younger than `retention_hours` needs (0: every unreferenced file);
        the number removed."""
        table = self.table()
        if table is None:
            return 0
        return len(table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False))

    @_one_log
    def overwrite(
        self, data: pa.Table, *, txns: dict[str, int] | None = None, metadata: dict | None = None
    ) -> WriteResult:
        """Replaces the whole table in one commit (for small, unpartitioned tables)."""
        write_deltalake(
            self.table() or self.uri,
            data,
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=self.storage_options,
            writer_properties=WRITER,
            commit_properties=self._commit(dict(txns or {}), metadata),
            **self._create_options(),
        )
        self._committed()
        return WriteResult(version=self.version(), inserted=data.num_rows, source_rows=data.num_rows)

    # -- schema evolution (contracts/compat.py decides what may change) ---------------------------
    def schema(self) -> pa.Schema | None:
        """The table's current Arrow schema, or None if nothing has been written yet."""
        table = self.table()
        return None if table is None else pa.schema(table.schema().to_arrow())

    def add_columns(self, fields: Sequence[pa.Field]) -> bool:
        """Adds the nullable columns of `fields` the table lacks, in one commit (Delta schema evolution: old
        rows read null); False when it lacks none or does not exist yet."""
        with self.opened():
            table, schema = self.table(), self.schema()
            if table is None or schema is None:
                return False
            missing = [f.with_nullable(True) for f in fields if f.name not in schema.names]
            if not missing:
                return False
            table.alter.add_columns([DeltaField.from_arrow(f) for f in missing])
            self._committed()
            return True

    def recorded(self, key: str, *, limit: int = 10) -> str | None:
        """The newest value of commit metadata `key` among the last `limit` commits (a write's `metadata`)."""
        table = self.table()
        if table is None:
            return None
        for commit in table.history(limit):
            value = commit.get(key)
            if value is None and isinstance(commit.get("userMetadata"), str):  # Spark's writer (`userMetadata`)
                try:
                    value = json.loads(commit["userMetadata"]).get(key)
                except ValueError:
                    value = None
            if value is not None:
                return str(value)
        return None

    def rename_columns(self, renames: dict[str, str], *, metadata: dict | None = None) -> bool:
        """Rewrites the table with columns renamed (`old -> new`), partitioning kept, in one commit: a
        migration the contract declares (`renamed_from`). False when no column of `renames` is in the table."""
        with self.opened():
            table, schema = self.table(), self.schema()
            if table is None or schema is None or not set(renames) & set(schema.names):
                return False
            data = table.to_pyarrow_table()
            data = data.rename_columns([renames.get(n, n) for n in data.column_names])
            partitions = [renames.get(c, c) for c in table.metadata().partition_columns]
            write_deltalake(
                self.uri,
                data,
                mode="overwrite",
                schema_mode="overwrite",
                partition_by=partitions or None,
                storage_options=self.storage_options,
                writer_properties=WRITER,
                commit_properties=self._commit({}, metadata),
            )
            self._committed()
            return True


class _RowCounter:
    """Counts rows as they stream through to the writer."""

    def __init__(self, data: pa.Table | pa.RecordBatchReader):
        self.data = data
        self.count = 0
        self.largest = 0

    def stream(self) -> pa.Table | pa.RecordBatchReader:
        if isinstance(self.data, pa.Table):
            self.count = self.data.num_rows
            self.largest = max((b.num_rows for b in self.data.to_batches()), default=0)
            return self.data
        reader = self.data

        def batches():
            for batch in reader:
                self.count += batch.num_rows
                self.largest = max(self.largest, batch.num_rows)
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, batches())
