"""Engine parity: every trusted and refined transform gives the same rows on SQLFrame/DuckDB and on Spark."""

import math
from pathlib import Path

import pyarrow as pa
import pytest

from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import conform, trusted_schema
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.pii import PiiHasher
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import build_refined
from medallion_platform.zones.trusted import promote, transform
from medallion_platform.zones.validation import deduplicate, valid_rows, validate
from medallion_tests.helpers import event, jsonl, land

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def parity_lake(tmp_path_factory, contracts):
    """Generated data (every kind of dirt) plus edge cases, ingested to raw and promoted once."""
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("parity"))
    generate_sample_data(Path(settings.landing_root), SampleSpec(orders=300, customers=40, products=12, seed=11))
    land(
        settings,
        "order_events",
        "2026/11/03/04/edge",
        jsonl(
            event(900001, event_time="2026-11-01 10:00:00"),  # space-separated, no zone: UTC
            event(900002, event_time="2026-11-01T23:59:59.999+05:30"),
            event(900003, unit_price="12.345"),  # rounds to scale 2
            event(900004, unit_price="1e2"),
            event(900005, quantity=" 3 "),
            event(900006, quantity="2.5"),
            event(900007, event_time="2026-02-30T10:00:00Z"),  # no such day
            event(900008, quantity=True),
            event(900009, customer_id="   "),  # only spaces: missing
            event(900010, status=""),  # empty: missing
            event(900011, product_id=" prd-00001"),  # present, but the pattern sees the space
        ),
    )
    for contract in contracts.values():
        ingest_raw(Lakehouse(settings), contract)
    return settings


def _canonical(table: pa.Table) -> list[tuple]:
    def norm(v):
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 9)
        return v

    rows = [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


@pytest.mark.parametrize("dataset", ["order_events", "customers", "products"])
def test_trusted_transform_parity(parity_lake, contracts, embedded, spark_engine, dataset):
    raw = Lakehouse(parity_lake).raw(dataset).read()
    pii = PiiHasher("parity-key")  # both engines must hash personal data to the same text
    trusted_e, quarantine_e, valid_e = transform(embedded, raw, contracts[dataset], pii)
    trusted_s, quarantine_s, valid_s = transform(spark_engine, raw, contracts[dataset], pii)
    assert trusted_e.num_rows > 0 and quarantine_e.num_rows > 0
    assert valid_e == valid_s
    assert trusted_e.schema == trusted_s.schema
    assert _canonical(trusted_e) == _canonical(trusted_s)
    assert _canonical(quarantine_e) == _canonical(quarantine_s)


@pytest.mark.parametrize("table", REFINED_TABLES, ids=lambda t: t.name)
def test_refined_transform_parity(parity_lake, contracts, embedded, spark_engine, table):
    for contract in contracts.values():
        promote(Lakehouse(parity_lake), embedded, contract)
        refresh_history(Lakehouse(parity_lake), embedded, contract)
    dates = None
    if table.partitioned:
        events = DeltaTableIO(parity_lake.table_uri("trusted", "order_events")).read(columns=["event_date"])
        dates = sorted({d.isoformat() for d in events.column("event_date").to_pylist()})
    rows_e = build_refined(Lakehouse(parity_lake), embedded, table, dates)
    rows_s = build_refined(Lakehouse(parity_lake), spark_engine, table, dates)
    assert rows_e.num_rows > 0
    assert _canonical(rows_e) == _canonical(rows_s)


@pytest.mark.parametrize("dataset", ["order_events", "customers"])  # the two with repeated keys
def test_both_dedup_strategies_keep_the_same_rows(parity_lake, contracts, embedded, spark_engine, dataset):
    """Small batches rank every row with one window, large ones rank only repeated keys: same winners."""
    contract = contracts[dataset]
    raw = Lakehouse(parity_lake).raw(dataset).read()
    kept = {}
    for engine in (embedded, spark_engine):
        validated = engine.persist(validate(engine, engine.dataframe(raw, "raw_batch"), contract))
        valid = valid_rows(engine, validated, contract)
        large = engine.to_arrow(deduplicate(engine, valid, contract))
        small = engine.to_arrow(deduplicate(engine, valid, contract, expected_rows=engine.count(valid)))
        assert large.num_rows < engine.count(valid)  # the data has repeated keys to choose between
        assert _canonical(large) == _canonical(small.select(large.column_names))
        kept[engine.name] = _canonical(conform(small, trusted_schema(contract)))
    assert kept["embedded"] == kept["spark"]
