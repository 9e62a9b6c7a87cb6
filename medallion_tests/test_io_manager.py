"""The Delta IO manager: writes a TableWrite in one commit with its figures, skips a committed batch,
and loads an input as a DataFrame of only the partitions being built."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from medallion_platform.defs.io_manager import PARTITION_COLUMN, DeltaIOManager
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.write.spec import Merge, TableWrite

KEY = dg.AssetKey(["refined", "things"])
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
SCHEMA = pa.schema([("id", pa.int64()), ("event_date", pa.date32()), ("v", pa.string())])


@pytest.fixture
def io_manager(settings) -> DeltaIOManager:
    return DeltaIOManager(lakehouse=LakehouseResource(data_dir=str(settings.data_dir), env="local"))


def _merge(embedded, rows: list[dict], version: int) -> TableWrite:
    frame = embedded.dataframe(pa.Table.from_pylist(rows, schema=SCHEMA))
    spec = Merge(
        keys=("id",),
        when_matched="update",
        partition_column="event_date",
        partition_values=tuple(sorted({r["event_date"] for r in rows})),
        txns={"test/things": version},
    )
    return TableWrite(engine=embedded, frame=frame, spec=spec, schema=SCHEMA)


def _write(io_manager: DeltaIOManager, write: TableWrite) -> dict:
    context = dg.build_output_context(asset_key=KEY)
    io_manager.handle_output(context, write)
    return {k: getattr(v, "value", v) for k, v in context.get_logged_metadata().items()}


def test_handle_output_merges_in_one_commit_and_reports_what_it_did(io_manager, embedded, lake):
    first = [{"id": 1, "event_date": D1, "v": "a"}, {"id": 2, "event_date": D2, "v": "b"}]
    meta = _write(io_manager, _merge(embedded, first, 1))
    assert (meta["rows_inserted"], meta["rows_updated"], meta["delta_version"]) == (2, 0, 0)
    assert meta["dagster/row_count"] == 2 and meta["files"] >= 1

    retried = _write(io_manager, _merge(embedded, first, 1))  # the same batch again: nothing written
    assert retried["write_skipped"] is True and retried["delta_version"] == 0

    changed = _write(io_manager, _merge(embedded, [{"id": 2, "event_date": D2, "v": "B"}], 2))
    assert (changed["rows_inserted"], changed["rows_updated"], changed["delta_version"]) == (0, 1, 1)
    rows = lake.for_key(KEY.path).read().sort_by("id").to_pylist()  # type: ignore[union-attr]
    assert [r["v"] for r in rows] == ["a", "B"]


def test_load_input_reads_only_the_partitions_being_built(io_manager, embedded):
    rows = [{"id": i, "event_date": D1 if i % 2 else D2, "v": str(i)} for i in range(10)]
    _write(io_manager, _merge(embedded, rows, 1))
    daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
    context = dg.build_input_context(
        asset_key=KEY,
        definition_metadata={PARTITION_COLUMN: "event_date"},
        asset_partition_key_range=dg.PartitionKeyRange(D2.isoformat(), D2.isoformat()),
        asset_partitions_def=daily,
    )
    frame = io_manager.load_input(context)
    loaded = embedded.to_arrow(frame)
    assert sorted(loaded.column("id").to_pylist()) == [0, 2, 4, 6, 8]
    whole = io_manager.load_input(dg.build_input_context(asset_key=KEY))
    assert embedded.count(whole) == 10
    io_manager.teardown_after_execution(dg.build_init_resource_context())


def test_load_input_of_a_table_never_written_says_so(io_manager):
    with pytest.raises(dg.Failure, match="materialize it first"):
        io_manager.load_input(dg.build_input_context(asset_key=dg.AssetKey(["trusted", "nothing"])))
