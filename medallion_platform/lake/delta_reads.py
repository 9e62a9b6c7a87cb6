"""The reading half of `DeltaTableIO`: what a Delta table holds, read through delta-rs.

Every question (does the table exist, its version, an app transaction's version, its files, a
dataset over it) needs the table's log. Outside `opened()` each question opens the log afresh, so
an answer is never older than the question. Inside `opened()` (a write, a promotion's plan, a raw
batch's staging) the log is opened once and every question is answered from that one snapshot,
which is brought up to date after this object's own commits (`_committed`).
"""

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from medallion_platform.lake.sql import duckdb_type, ident, literal

__all__ = ["Changes", "DataFile", "DeltaTableReader", "FilesRemovedError", "is_local"]


@dataclass(frozen=True)
class DataFile:
    """One data file of a table version, as its Delta log lists it."""

    path: str
    """Relative to the table root, as in the log (URL-encoded)."""
    partition: tuple[tuple[str, str | None], ...]
    """(column, value as the log keeps it) for every partition column."""
    rows: int
    bounds: tuple[tuple[str, object, object], ...] = ()
    """(column, min, max) of the top-level columns the log keeps statistics for (None where it has none)."""

    def value(self, column: str) -> str | None:
        return dict(self.partition).get(column)

    def range(self, column: str) -> tuple[object, object] | None:
        """`column`'s (min, max) in this file from the log, when both are known and exact (delta-rs cuts
        longer texts' statistics, so a text of the cut length or longer is not trusted)."""
        for name, low, high in self.bounds:
            if name == column:
                if low is None or high is None or any(isinstance(v, str) and len(v) >= _CUT for v in (low, high)):
                    return None
                return low, high
        return None


_CUT = 32
"""delta-rs truncates text statistics to this many characters."""


@dataclass(frozen=True)
class Changes:
    """The data files a table gained and lost between two versions (from the log: no data file read)."""

    since: int
    version: int
    added: tuple[DataFile, ...]
    removed: tuple[DataFile, ...]

    def partition_values(self, column: str) -> set[str]:
        """The values of `column` of every file added or removed: the partitions whose rows changed."""
        return {v for f in (*self.added, *self.removed) if (v := f.value(column)) is not None}

    @property
    def inserts_only(self) -> bool:
        """Rows were only added (appends, insert-only MERGEs): the added files hold exactly the new rows."""
        return not self.removed


class _VersionFiles:
    """The data files of one version of the table `table_id` (its metadata id, new when a table is made
    again at the same place). A version never changes, so it is read once per process: every refined
    table of a run asks for the same two versions of its fact. The newest 16 versions asked for are kept."""

    def __init__(self, kept: int = 16) -> None:
        self._kept = kept
        self._files: OrderedDict[tuple[object, ...], tuple[DataFile, ...] | None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(
        self,
        uri: str,
        table_id: str,
        options: tuple[tuple[str, str], ...],
        version: int,
        opened: DeltaTable | None = None,
    ) -> tuple[DataFile, ...] | None:
        """The files of `version`, read from `opened` when that is the version it has open (else the
        version's log is opened)."""
        key = (uri, table_id, options, version)
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        files: tuple[DataFile, ...] | None
        if opened is not None and opened.version() == version:
            files = _files_of(opened)
        else:
            try:
                files = _files_of(DeltaTable(uri, version=version, storage_options=dict(options) or None))
            except Exception:  # the version's log is gone (log retention) or the table is
                files = None
        with self._lock:
            self._files[key] = files
            while len(self._files) > self._kept:
                self._files.popitem(last=False)
        return files

    def cache_clear(self) -> None:
        """Forgets every version read (as a new process starts)."""
        with self._lock:
            self._files.clear()


_files_at = _VersionFiles()


def _files_of(table: DeltaTable) -> tuple[DataFile, ...]:
    partitions = list(table.metadata().partition_columns)
    added = pa.table(table.get_add_actions(flatten=True))
    stats = [n.removeprefix("min.") for n in added.column_names if n.startswith("min.") and "." not in n[4:]]
    return tuple(
        DataFile(
            path=str(a["path"]),
            partition=tuple((c, _text(a.get(f"partition.{c}"))) for c in partitions),
            rows=int(a.get("num_records") or 0),
            bounds=tuple((c, a.get(f"min.{c}"), a.get(f"max.{c}")) for c in stats),
        )
        for a in added.to_pylist()
    )


class DeltaTableReader:
    """Reads one Delta table at `uri`."""

    def __init__(
        self,
        uri: str,
        *,
        storage_options: dict[str, str] | None = None,
        configuration: dict[str, str] | None = None,
        name: str | None = None,
    ):
        self.uri = uri
        self.name = name
        """The table's three-level catalog name `<catalog>.<zone>.<table>` (None: a table no catalog lists)."""
        self.storage_options = storage_options or None
        self.configuration = configuration
        """Table properties set when the table is created (e.g. change data feed)."""
        self._pinned = 0
        self._handle: DeltaTable | None = None
        self._loaded = False

    # -- the table's log -------------------------------------------------------------------
    @contextmanager
    def opened(self) -> Iterator[None]:
        """Within the block the table's log is opened once (at the first question) and every
        question is answered from it; this object's own commits bring it up to date. Re-entrant."""
        self._pinned += 1
        try:
            yield
        finally:
            self._pinned -= 1
            if not self._pinned:
                self._handle, self._loaded = None, False

    def table(self) -> DeltaTable | None:
        """The table, or None if nothing has been written yet."""
        if self._pinned and self._loaded:
            return self._handle
        try:
            handle: DeltaTable | None = DeltaTable(self.uri, storage_options=self.storage_options)
        except TableNotFoundError:
            handle = None
        if self._pinned:
            self._handle, self._loaded = handle, True
        return handle

    def _committed(self) -> None:
        """After this object committed: the opened log (if any) reads the new versions."""
        if self._handle is not None:
            self._handle.update_incremental()
        else:  # the commit created the table: open it at the next question
            self._loaded = False

    def refresh(self) -> None:
        """After another engine committed to the table (Spark's own Delta writer): the opened log reads the new
        versions."""
        self._committed()

    # -- questions ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.table() is not None

    def version(self) -> int | None:
        table = self.table()
        return None if table is None else table.version()

    def transaction_version(self, app_id: str) -> int:
        """The last version committed by `app_id`, or -1."""
        table = self.table()
        if table is None:
            return -1
        found = table.transaction_version(app_id)
        return -1 if found is None else found

    def committed_before(self, txns: dict[str, int]) -> bool:
        """True when every app transaction of this write was committed before (a retry)."""
        return bool(txns) and all(self.transaction_version(a) >= v for a, v in txns.items())

    def files(
        self,
        partition_column: str | None = None,
        values: Iterable[object] | None = None,
        *,
        version: int | None = None,
    ) -> list[DataFile] | None:
        """The data files of `version` (the current one if None), of the partitions `values` of
        `partition_column` if given, from the log; None when the table (or that version) does not exist."""
        table = self.table()
        if table is None:
            return None
        files = _files_at(*self._key(table), table.version() if version is None else version, table)
        if files is None:
            return None
        if partition_column is None or values is None:
            return list(files)
        wanted = {str(v) for v in values}
        return [f for f in files if f.value(partition_column) in wanted]

    def changes_since(self, version: int, upto: int | None = None) -> Changes | None:
        """The data files added and removed after `version`, up to `upto` (the current version if None),
        read from the two versions' logs (its cost is the number of files, not rows; no change data feed
        needed). None when the table is missing or `version`'s log is gone."""
        table = self.table()
        if table is None or version < 0:
            return None
        current = table.version() if upto is None else upto
        if version >= current:
            return Changes(version, current, (), ())
        before, after = _files_at(*self._key(table), version), _files_at(*self._key(table), current, table)
        if before is None or after is None:
            return None
        old, new = {f.path: f for f in before}, {f.path: f for f in after}
        return Changes(
            since=version,
            version=current,
            added=tuple(f for p, f in new.items() if p not in old),
            removed=tuple(f for p, f in old.items() if p not in new),
        )

    def _key(self, table: DeltaTable) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Where `table`'s version file lists are kept: its URI, its id (new when a table is made again at
        the same place) and the storage options."""
        return self.uri, str(table.metadata().id), tuple(sorted((self.storage_options or {}).items()))

    def dataset(self) -> ds.Dataset | None:
        """A lazy Arrow dataset over the current version (filters push down to files)."""
        table = self.table()
        return None if table is None else table.to_pyarrow_dataset()

    def duckdb_dataset(
        self,
        filter: ds.Expression | None = None,
        *,
        paths: Collection[str] | None = None,
        version: int | None = None,
    ) -> ds.Dataset | None:
        """The dataset as DuckDB should scan it: text columns as `string_view` (only the files `paths`,
        as the log writes them, if given), of `version` (the current one if None).

        DuckDB pushes string filters down as string_view literals, and Arrow has no kernel
        comparing those with plain strings.
        """
        table = self.table()
        if table is None:
            return None
        if version is not None and version != table.version():
            table = DeltaTable(self.uri, version=version, storage_options=self.storage_options)
        schema = table.to_pyarrow_dataset().schema
        views = pa.schema([f.with_type(pa.string_view()) if _is_text(f.type) else f for f in schema])
        dataset = _only(table.to_pyarrow_dataset(schema=views), paths, self.uri, table.version())
        return dataset if filter is None else dataset.filter(filter)

    def local_parquet_sql(
        self,
        partition_column: str | None = None,
        values: Sequence[object] | None = None,
        *,
        paths: Collection[str] | None = None,
    ) -> str | None:
        """A DuckDB query over the current version's Parquet files (of some partitions), for local tables.

        DuckDB's own Parquet reader streams row groups in parallel within its memory limit, where an
        Arrow dataset scan reads ahead whole files (measured at 10 M events: +500 MB building the
        refined tables). Partition values come from the Delta log, not from folder names. `paths` (as the
        log writes them) limits the query to those files. None when the table is not local, has no files,
        or has a partition type this does not map.
        """
        if not is_local(self.uri):
            return None
        table = self.table()
        if table is None:
            return None
        schema = pa.schema(table.schema().to_arrow())
        partitions = list(table.metadata().partition_columns)
        kinds = {name: duckdb_type(schema.field(name).type) for name in partitions}
        if any(kind is None for kind in kinds.values()):
            return None
        current = self.files() or []  # the version's files, read from its log once per process
        if paths is not None:
            _refuse_removed(self.uri, table.version(), paths, {f.path for f in current})
        wanted = None if partition_column is None or values is None else {str(v) for v in values}
        groups: dict[tuple, list[str]] = {}
        for file in current:
            key = tuple(file.value(name) for name in partitions)
            if wanted is not None and str(file.value(partition_column)) not in wanted:  # type: ignore[arg-type]
                continue
            if paths is not None and file.path not in paths:
                continue
            groups.setdefault(key, []).append(f"{self.uri.removeprefix('file://').rstrip('/')}/{unquote(file.path)}")
        if not groups:
            return None
        selects = []
        for key, files_of_group in groups.items():
            constants = dict(zip(partitions, key, strict=True))
            columns = [
                f"CAST({_sql_text(constants[f.name])} AS {kinds[f.name]}) AS {ident(f.name)}"
                if f.name in constants
                else ident(f.name)
                for f in schema
            ]
            files = ", ".join(_sql_text(p) for p in files_of_group)
            selects.append(f"SELECT {', '.join(columns)} FROM read_parquet([{files}], union_by_name = true)")
        return "\nUNION ALL\n".join(selects)

    def read(
        self,
        filter: ds.Expression | None = None,
        columns: Sequence[str] | None = None,
        *,
        paths: Collection[str] | None = None,
    ) -> pa.Table | None:
        """The current version's rows (matching `filter`, of the files `paths` if given) as Arrow."""
        table = self.table()
        if table is None:
            return None
        dataset = _only(table.to_pyarrow_dataset(), paths, self.uri, table.version())
        return dataset.to_table(filter=filter, columns=list(columns) if columns else None)

    def local_files(self, partition_column: str | None = None, values: Sequence[object] = ()) -> list[str] | None:
        """Paths of the current version's files (of some partitions), when the table is local."""
        table = self.table()
        if table is None or not is_local(self.uri):
            return None
        filters = [(partition_column, "in", [str(v) for v in values])] if partition_column else None
        return [uri.removeprefix("file://") for uri in table.file_uris(file_pruning_predicate=filters)]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _only(dataset: ds.Dataset, paths: Collection[str] | None, uri: str, version: int) -> ds.Dataset:
    """`dataset` (of `uri` at `version`) limited to the files `paths` (relative, as the Delta log writes them)."""
    if paths is None:
        return dataset
    assert isinstance(dataset, ds.FileSystemDataset)  # what delta-rs hands out
    wanted = {unquote(p) for p in paths}
    fragments = [f for f in dataset.get_fragments() if unquote(f.path) in wanted]
    _refuse_removed(uri, version, wanted, {unquote(f.path) for f in fragments})
    return ds.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)


class FilesRemovedError(LookupError):
    """Data files a reader was asked for (listed from an earlier version of the table) are no longer in the
    version it reads: a later commit removed them (a compaction, a MERGE or a delete rewrote them)."""


def _refuse_removed(uri: str, version: int, paths: Collection[str], present: Collection[str]) -> None:
    """Reading only the files still present would silently drop the rows of the others: refused instead. The
    reader plans again from the table's new version when it runs again."""
    removed = sorted(set(paths) - set(present))
    if removed:
        shown = ", ".join(removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        raise FilesRemovedError(
            f"{uri}: {len(removed)} data file(s) this read was planned on are not in version {version}, which a "
            f"later commit made while it ran ({shown}); nothing was read. Run it again: it plans from version "
            f"{version}."
        )


def _sql_text(value: object) -> str:
    """A text (or null) SQL literal, as Delta keeps partition values and paths."""
    return literal(None if value is None else str(value))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")
