"""The trials' checks fail when a lake is broken: a corrupt table, a lost table, a duplicated key."""

import datetime as dt
import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

pytestmark = pytest.mark.reliability


@pytest.fixture
def broken(reference, tmp_path):
    """A copy of the reference lake, to break."""
    target = tmp_path / "lake"
    shutil.copytree(reference.data_dir, target, symlinks=True)
    return target


def test_the_reference_equals_itself(reference):
    comparison = reference.compare(reference.data_dir)
    assert comparison.differing == [] and comparison.lost_rows == 0
    assert len(comparison.tables) >= 15  # 3 raw, 3 ingest logs, 3 trusted, 3 quarantine, 3 refined


def test_a_deleted_data_file_is_a_corrupt_table(reference, broken):
    next((broken / "trusted" / "order_events").rglob("*.parquet")).unlink()
    comparison = reference.compare(broken)
    assert comparison.corrupt == ["trusted/order_events"]
    assert comparison.lost_rows == reference.tables["trusted/order_events"].rows.num_rows


def test_a_missing_refined_table_loses_its_rows(reference, broken):
    shutil.rmtree(broken / "refined" / "product_performance")
    comparison = reference.compare(broken)
    assert comparison.differing == ["refined/product_performance"]
    assert comparison.lost_rows == reference.tables["refined/product_performance"].rows.num_rows


def test_a_written_twice_row_is_a_duplicated_key(reference, broken):
    table = broken / "trusted" / "customers"
    write_deltalake(str(table), DeltaTable(str(table)).to_pyarrow_table().slice(0, 1), mode="append")
    comparison = reference.compare(broken)
    assert (comparison.duplicated_rows, comparison.unexpected_rows, comparison.lost_rows) == (1, 1, 0)


def _rewrite(table, column: str, change) -> None:
    """Overwrites a Delta table with `change(values)` as one column (same schema, same partitioning)."""
    dt = DeltaTable(str(table))
    rows = dt.to_pyarrow_table()
    field = rows.schema.field(column)
    rows = rows.set_column(
        rows.schema.get_field_index(column), field, pa.array(change(rows[column].to_pylist()), type=field.type)
    )
    write_deltalake(str(table), rows, mode="overwrite", partition_by=dt.metadata().partition_columns or None)


def test_a_changed_value_is_a_lost_and_an_unexpected_row_but_a_new_ingestion_time_is_not(reference, broken):
    _rewrite(broken / "refined" / "daily_revenue", "orders", lambda orders: [10**6, *orders[1:]])
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    _rewrite(broken / "raw" / "customers", "_ingested_at", lambda times: [later] * len(times))
    comparison = reference.compare(broken)
    assert comparison.differing == ["refined/daily_revenue"]
    assert (comparison.lost_rows, comparison.unexpected_rows) == (1, 1)
