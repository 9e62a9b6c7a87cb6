"""A read planned on one version's data files, run after a later commit removed some of them (a compaction, a
MERGE or a delete rewrote them): it is refused, never answered with the rows of the files still present."""

import datetime as dt

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.delta_reads import FilesRemovedError


def _day(day: int, ids: range) -> pa.Table:
    return pa.table({"id": [f"o-{i}" for i in ids], "day": [dt.date(2026, 11, day)] * len(ids)})


@pytest.fixture
def compacted(tmp_path) -> tuple[DeltaTableIO, list[str]]:
    """A table of two appends to one partition, the files of version 1 listed, then compacted into one file."""
    uri = str(tmp_path / "events")
    write_deltalake(uri, _day(1, range(0, 3)), partition_by=["day"])
    write_deltalake(uri, _day(1, range(3, 6)), partition_by=["day"], mode="append")
    io = DeltaTableIO(uri)
    planned = io.files(version=1)
    assert planned is not None and len(planned) == 2
    DeltaTable(uri).optimize.compact()  # version 2: both files removed, one added
    assert {f.path for f in io.files() or []}.isdisjoint(f.path for f in planned)
    return io, [f.path for f in planned]


def test_duckdbs_read_of_removed_files_is_refused(compacted):
    io, paths = compacted
    with pytest.raises(FilesRemovedError, match=r"2 data file\(s\) this read was planned on are not in version 2"):
        io.local_parquet_sql(paths=paths)
    # the current version's own files still read
    query = io.local_parquet_sql(paths=[f.path for f in io.files() or []])
    assert query is not None and duckdb.sql(f"SELECT count(*) FROM ({query})").fetchall() == [(6,)]


def test_arrows_read_of_removed_files_is_refused(compacted):
    io, paths = compacted
    with pytest.raises(FilesRemovedError, match="Run it again"):
        io.read(paths=paths)
    with pytest.raises(FilesRemovedError):
        io.duckdb_dataset(paths=paths)
    assert io.read(paths=[f.path for f in io.files() or []]).num_rows == 6
