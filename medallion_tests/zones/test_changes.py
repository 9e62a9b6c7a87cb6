"""Change-data sources and history: changes applied per key in sequence order, tombstones, SCD type 2 from
changes and from nightly snapshots."""

import datetime as dt
import random

import pyarrow as pa
import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.history import refresh_history
from medallion_tests.helpers import jsonl, land

LINEAGE = {"_source_file", "_source_line", "_ingested_at", "_batch_seq", "_landing_date"}
UTC = dt.UTC


def change(pay: int, op: str, lsn: int, minute: int, **values) -> dict:
    """One change event of payment `pay`, committed at 2026-11-01 10:<minute> with log sequence `lsn`."""
    row = {
        "payment_id": f"pay-{pay:08d}",
        "order_id": f"ord-{pay:08d}",
        "amount": "10.00",
        "currency": "EUR",
        "status": "authorized",
        "op": op,
        "lsn": lsn,
        "committed_at": f"2026-11-01T10:{minute:02d}:00Z",
    }
    return row | values


# In sequence order. Payment 1: inserted, captured, deleted; a late update older than the delete must not
# bring it back. Payment 2: inserted, deleted, then re-inserted by a newer change (resurrected). Payment 3:
# two changes in the same second, ordered by lsn. Payment 4: an insert only.
STREAM = [
    change(1, "c", 10, 0),
    change(2, "c", 11, 1),
    change(3, "c", 12, 2),
    change(1, "u", 13, 3, status="captured"),
    change(3, "u", 14, 4, status="captured"),
    change(3, "u", 15, 4, status="refunded", amount="0.00"),  # same committed_at, later lsn
    change(1, "u", 16, 5, status="refunded"),  # older than the delete below
    change(2, "d", 17, 6),
    change(1, "d", 18, 7, status="refunded"),
    change(4, "c", 19, 8, amount="99.90", currency="GBP"),
    change(2, "c", 20, 9, amount="20.00", status="captured"),  # newer than the delete: back
]


def _deliver(settings: Settings, batches: list[list[dict]], *, name: str = "firehose") -> Lakehouse:
    """Lands each batch as one Firehose object and runs the source step and the history after each."""
    from medallion_platform.engine import EmbeddedEngine

    lake = Lakehouse(settings)
    contract = load_contracts()["payments"]
    engine = EmbeddedEngine()
    try:
        for n, batch in enumerate(batches):
            land(settings, "payments", f"2026/11/01/10/{name}-{n:03d}", jsonl(*batch))
            _, promoted = ingest_and_promote(lake, engine, contract)
            assert promoted.reconciled, promoted
            refresh_history(lake, engine, contract)
    finally:
        engine.close()
    return lake


def _rows(table: pa.Table, *, drop: set[str] = LINEAGE) -> list[dict]:
    keep = [n for n in table.column_names if n not in drop]
    rows = table.select(keep).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keep))


def _stored(lake: Lakehouse) -> tuple[list[dict], list[dict]]:
    return _rows(lake.trusted("payments").read()), _rows(lake.history("payments").read())


def test_a_shuffled_duplicated_stream_gives_the_tables_of_the_stream_in_order(tmp_path):
    in_order = _deliver(Settings.from_env({}, data_dir=tmp_path / "a"), [STREAM[:5], STREAM[5:8], STREAM[8:]])
    backwards = list(reversed(STREAM))  # every change after all newer ones: the delete before the late update
    reversed_lake = _deliver(
        Settings.from_env({}, data_dir=tmp_path / "c"), [backwards[:3], backwards[3:7], backwards[7:]]
    )
    rng = random.Random(3)
    messy = STREAM + [STREAM[i] for i in (0, 5, 8, 10)]  # re-deliveries
    rng.shuffle(messy)
    shuffled = _deliver(
        Settings.from_env({}, data_dir=tmp_path / "b"), [messy[:3], messy[3:5], messy[5:9], messy[9:10], messy[10:]]
    )
    trusted, history = _stored(in_order)
    assert (trusted, history) == _stored(shuffled)
    assert (trusted, history) == _stored(reversed_lake)

    by_key = {r["payment_id"]: r for r in trusted}
    assert [by_key[f"pay-{n:08d}"]["_deleted"] for n in (1, 2, 3, 4)] == [True, False, False, False]
    assert by_key["pay-00000001"]["lsn"] == 18  # the late update (lsn 16) lost to the delete
    assert (by_key["pay-00000002"]["lsn"], by_key["pay-00000002"]["status"]) == (20, "captured")  # resurrected
    assert (by_key["pay-00000003"]["lsn"], by_key["pay-00000003"]["status"]) == (15, "refunded")  # lsn breaks the tie

    versions = [(r["payment_id"], r["lsn"], r["is_current"], r["is_deleted"]) for r in history]
    assert len(history) == len(STREAM)  # one version per distinct change, re-deliveries none
    one = sorted(v[1:] for v in versions if v[0] == "pay-00000001")
    assert one == [(10, False, False), (13, False, False), (16, False, False), (18, True, True)]
    two = [r for r in history if r["payment_id"] == "pay-00000002"]
    spans = sorted((r["valid_from"], r["valid_to"], r["is_deleted"]) for r in two)
    at = [dt.datetime(2026, 11, 1, 10, m, tzinfo=UTC) for m in (1, 6, 9)]
    assert spans == [(at[0], at[1], False), (at[1], at[2], True), (at[2], None, False)]


def test_a_late_change_repairs_the_history_and_a_redelivery_changes_nothing(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path)
    lake = _deliver(settings, [[STREAM[0], STREAM[3]]])  # payment 1 inserted, then captured at 10:03
    _deliver(
        settings, [[change(1, "u", 12, 2, status="failed")]], name="late"
    )  # a late change at 10:02 slots in between
    history = [r for r in _rows(lake.history("payments").read())]
    spans = sorted((r["lsn"], r["valid_to"], r["is_current"]) for r in history)
    at = [dt.datetime(2026, 11, 1, 10, m, tzinfo=UTC) for m in (2, 3)]
    assert spans == [(10, at[0], False), (12, at[1], False), (13, None, True)]
    version = lake.history("payments").version()
    trusted_before = _rows(lake.trusted("payments").read())
    _deliver(settings, [[STREAM[3], STREAM[0]]], name="again")  # the same changes again
    assert _rows(lake.trusted("payments").read()) == trusted_before
    assert [r for r in _rows(lake.history("payments").read())] == history
    assert lake.history("payments").version() >= version


CUSTOMERS_HEADER = "customer_id,name,email,country,segment,updated_at\n"


def _customer(n: int, segment: str, updated: str, country: str = "DE") -> str:
    return f"cus-{n:06d},Ana {n},ana{n}@example.com,{country},{segment},{updated}\n"


def test_customer_history_across_three_nightly_exports(tmp_path):
    from medallion_platform.engine import EmbeddedEngine

    settings = Settings.from_env({}, data_dir=tmp_path)
    lake, contract, engine = Lakehouse(settings), load_contracts()["customers"], EmbeddedEngine()
    nights = {
        "2026/11/01/customers.csv": _customer(1, "consumer", "2026-10-01T08:00:00Z")
        + _customer(2, "smb", "2026-10-02T08:00:00Z"),
        # night 2: customer 1 moves to smb, customer 3 is new (a bad row of customer 2 is quarantined, not deleted)
        "2026/11/02/customers.csv": _customer(1, "smb", "2026-11-01T12:00:00Z")
        + _customer(2, "smb", "2026-10-02T08:00:00Z", country="Germany")
        + _customer(3, "enterprise", "2026-11-01T13:00:00Z"),
        # night 3: customer 2 is gone
        "2026/11/03/customers.csv": _customer(1, "smb", "2026-11-01T12:00:00Z")
        + _customer(3, "enterprise", "2026-11-01T13:00:00Z"),
        # night 3's export delivered again
        "2026/11/04/customers-redelivered.csv": _customer(1, "smb", "2026-11-01T12:00:00Z")
        + _customer(3, "enterprise", "2026-11-01T13:00:00Z"),
    }
    seen = []
    try:
        for key, body in nights.items():
            land(settings, "customers", key, CUSTOMERS_HEADER + body)
            ingest_and_promote(lake, engine, contract)
            refresh_history(lake, engine, contract)
            rows = _rows(lake.history("customers").read())
            seen.append(
                [
                    (r["customer_id"], r["segment"], r["valid_from"], r["valid_to"], r["is_current"], r["is_deleted"])
                    for r in rows
                ]
            )
    finally:
        engine.close()

    def ts(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)

    night1 = [
        ("cus-000001", "consumer", ts("2026-10-01T08:00:00"), None, True, False),
        ("cus-000002", "smb", ts("2026-10-02T08:00:00"), None, True, False),
    ]
    assert seen[0] == night1
    night2 = [
        ("cus-000001", "consumer", ts("2026-10-01T08:00:00"), ts("2026-11-01T12:00:00"), False, False),
        ("cus-000001", "smb", ts("2026-11-01T12:00:00"), None, True, False),
        ("cus-000002", "smb", ts("2026-10-02T08:00:00"), None, True, False),
        ("cus-000003", "enterprise", ts("2026-11-01T13:00:00"), None, True, False),
    ]
    assert seen[1] == night2
    night3 = [
        *night2[:2],
        ("cus-000002", "smb", ts("2026-10-02T08:00:00"), ts("2026-11-03T00:00:00"), False, False),
        ("cus-000002", "smb", ts("2026-11-03T00:00:00"), None, True, True),
        night2[3],
    ]
    assert seen[2] == night3
    assert seen[3] == night3  # the re-delivered export changes nothing


@pytest.mark.parametrize("absent_keys", ["delete", "keep"])
def test_a_key_missing_from_an_export_is_deleted_only_when_exports_are_full(tmp_path, absent_keys):
    """Full exports (the default): a customer missing from tonight's file was deleted in the CRM. Partial
    exports (`absent_keys: keep`) name only the customers that changed: the others stay as they were."""
    from medallion_platform.engine import EmbeddedEngine

    settings = Settings.from_env({}, data_dir=tmp_path)
    customers = load_contracts()["customers"]
    assert customers.history is not None and customers.history.absent_keys == "delete"
    history = customers.history.model_copy(update={"absent_keys": absent_keys})
    contract = customers.model_copy(update={"history": history})
    lake, engine = Lakehouse(settings), EmbeddedEngine()
    nights = {
        "2026/11/01/customers.csv": _customer(1, "consumer", "2026-10-01T08:00:00Z")
        + _customer(2, "smb", "2026-10-02T08:00:00Z"),
        "2026/11/02/customers.csv": _customer(1, "smb", "2026-11-01T12:00:00Z"),  # only customer 1 changed
    }
    try:
        for key, body in nights.items():
            land(settings, "customers", key, CUSTOMERS_HEADER + body)
            ingest_and_promote(lake, engine, contract)
            refresh_history(lake, engine, contract)
    finally:
        engine.close()
    current = {
        r["customer_id"]: (r["segment"], r["is_deleted"])
        for r in _rows(lake.history("customers").read())
        if r["is_current"]
    }
    deleted = absent_keys == "delete"
    assert current == {"cus-000001": ("smb", False), "cus-000002": ("smb", deleted)}


def test_absent_keys_is_refused_on_a_change_source():
    payments = load_contracts()["payments"]
    assert payments.history is not None
    fields = payments.model_dump(exclude_none=True, by_alias=True)
    fields["history"]["absent_keys"] = "keep"
    with pytest.raises(ValueError, match="absent_keys applies to snapshots only"):
        type(payments).model_validate(fields)


@pytest.mark.spark
def test_history_transforms_give_the_same_rows_on_embedded_and_spark(tmp_path, spark_engine):
    from medallion_platform.engine import EmbeddedEngine
    from medallion_platform.lake.schema import conform, history_schema, raw_schema
    from medallion_platform.zones.history import history_versions, snapshot_versions
    from medallion_platform.zones.pii import PiiHasher
    from medallion_platform.zones.trusted import transform
    from medallion_platform.zones.validation import deduplicate, valid_rows, validate

    contracts = load_contracts()
    payments, customers = contracts["payments"], contracts["customers"]

    def raw(contract, records: list[dict]) -> pa.Table:
        schema = raw_schema(contract)
        lineage = {
            "_source_file": "f",
            "_ingested_at": dt.datetime(2026, 11, 1, tzinfo=UTC),
            "_batch_id": "b",
            "_batch_seq": 1,
            "_landing_date": "2026-11-01",
        }
        rows = [
            {**{k: (None if v is None else str(v)) for k, v in r.items()}, **lineage, "_source_line": i}
            for i, r in enumerate(records)
        ]
        return pa.Table.from_pylist(rows, schema=schema)

    messy = [*STREAM, STREAM[0], STREAM[8]]
    customer_rows = [
        {
            "customer_id": "cus-000001",
            "name": "A",
            "email": "a@x.de",
            "country": "DE",
            "segment": "smb",
            "updated_at": "2026-11-01T12:00:00Z",
        },
        {
            "customer_id": "cus-000003",
            "name": "C",
            "email": "c@x.de",
            "country": "DE",
            "segment": "enterprise",
            "updated_at": "2026-11-01T13:00:00Z",
        },
    ]
    current_rows = [
        {
            "customer_id": "cus-000001",
            "name": "A",
            "email": "a@x.de",
            "country": "DE",
            "segment": "consumer",
            "updated_at": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "valid_from": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "valid_to": None,
            "is_current": True,
            "is_deleted": False,
            "_source_file": "f",
            "_source_line": 0,
            "_ingested_at": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "_batch_seq": 1,
            "_landing_date": "2026-10-01",
        },
        {
            "customer_id": "cus-000002",
            "name": "B",
            "email": "b@x.de",
            "country": "DE",
            "segment": "smb",
            "updated_at": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "valid_from": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "valid_to": None,
            "is_current": True,
            "is_deleted": False,
            "_source_file": "f",
            "_source_line": 1,
            "_ingested_at": dt.datetime(2026, 10, 1, tzinfo=UTC),
            "_batch_seq": 1,
            "_landing_date": "2026-10-01",
        },
    ]
    current = pa.Table.from_pylist(current_rows, schema=history_schema(customers))

    def run(engine) -> tuple[list, list, list]:
        trusted, _, _ = transform(engine, raw(payments, messy), payments, PiiHasher(b"k"))
        valid = valid_rows(engine, validate(engine, engine.dataframe(raw(payments, messy)), payments), payments)
        versions = engine.to_arrow(history_versions(engine, payments, valid, None))
        validated = validate(engine, engine.dataframe(raw(customers, customer_rows)), customers)
        export = deduplicate(engine, valid_rows(engine, validated, customers), customers)
        present = export.select("customer_id")
        changed, after = snapshot_versions(
            engine, customers, export, present, engine.dataframe(current), dt.date(2026, 11, 2)
        )
        schema = history_schema(customers)
        return (
            _rows(trusted),
            _rows(conform(versions, history_schema(payments))),
            _rows(conform(engine.to_arrow(changed), schema)) + _rows(conform(engine.to_arrow(after), schema)),
        )

    embedded = EmbeddedEngine()
    try:
        on_embedded = run(embedded)
    finally:
        embedded.close()
    on_spark = run(spark_engine)
    assert on_embedded == on_spark
    assert len(on_embedded[0]) == 4 and len(on_embedded[1]) == len(STREAM)
    assert len(on_embedded[2]) == 5 + 3  # opened 1, 3; closed 1, 2; deleted 2 | current 1, 2 (deleted), 3


def test_the_generated_payment_changes_reconcile_with_trusted_and_history(tmp_path):
    from pathlib import Path

    from medallion_platform.engine import EmbeddedEngine
    from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data

    settings = Settings.from_env({}, data_dir=tmp_path)
    manifest = generate_sample_data(Path(settings.landing_root), SampleSpec(orders=400, customers=30, products=10))
    lake, contract, engine = Lakehouse(settings), load_contracts()["payments"], EmbeddedEngine()
    try:
        _, promoted = ingest_and_promote(lake, engine, contract)
        refresh_history(lake, engine, contract)
    finally:
        engine.close()
    assert promoted.reconciled and promoted.raw_rows == manifest.raw_rows["payments"]
    assert promoted.quarantined == manifest.quarantined("payments") > 0
    trusted = lake.trusted("payments").read()
    assert trusted.num_rows == manifest.valid_unique["payments"]
    assert sum(trusted.column("_deleted").to_pylist()) == manifest.deleted["payments"] > 0
    history = lake.history("payments").read()
    assert history.num_rows == manifest.distinct_changes["payments"] > manifest.duplicates["payments"] > 0
    assert sum(history.column("is_current").to_pylist()) == trusted.num_rows


def test_segment_revenue_takes_the_segment_the_customer_had_when_ordering(embedded):
    from medallion_platform.zones.refined.segment_revenue import build

    def at(day: int, hour: int = 0) -> dt.datetime:
        return dt.datetime(2026, 11, day, hour, tzinfo=UTC)

    versions = [  # customer 1: consumer until 11-02 12:00, then smb; customer 2: smb, deleted on 11-03
        ("cus-000001", "consumer", at(1), at(2, 12), False),
        ("cus-000001", "smb", at(2, 12), None, False),
        ("cus-000002", "smb", at(1), at(3), False),
        ("cus-000002", "smb", at(3), None, True),
    ]
    history = pa.Table.from_pylist(
        [
            dict(zip(("customer_id", "segment", "valid_from", "valid_to", "is_deleted"), v, strict=True))
            for v in versions
        ]
    )
    orders = [  # (order, customer, placed at)
        (1, 1, at(2, 11)),  # consumer
        (2, 1, at(2, 12)),  # smb: the new version holds from its valid_from on
        (3, 2, at(2, 13)),  # smb
        (4, 2, at(3, 1)),  # unknown: deleted
        (5, 3, at(2, 14)),  # unknown: never known
    ]
    events = pa.Table.from_pylist(
        [
            {
                "event_date": t.date(),
                "customer_id": f"cus-{c:06d}",
                "event_time": t,
                "currency": "EUR",
                "order_id": f"ord-{o:08d}",
                "quantity": 1,
                "unit_price": pa.scalar(10, pa.decimal128(12, 2)).as_py(),
                "status": "placed",
            }
            for o, c, t in orders
        ]
    )
    rows = embedded.to_arrow(build(embedded, embedded.dataframe(events), embedded.dataframe(history)))
    got = sorted((str(r["event_date"]), r["segment"], r["orders"]) for r in rows.to_pylist())
    assert got == [
        ("2026-11-02", "consumer", 1),
        ("2026-11-02", "smb", 2),
        ("2026-11-02", "unknown", 1),
        ("2026-11-03", "unknown", 1),
    ]


def test_hard_deletes_keep_only_the_key_and_sequence_and_the_checks_pass(tmp_path):
    import dagster as dg
    import yaml

    from medallion_platform.contracts import CONTRACTS_DIR, load_contract
    from medallion_platform.defs.checks.trusted import contract_check_results
    from medallion_platform.engine import EmbeddedEngine

    data = yaml.safe_load((CONTRACTS_DIR / "payments.yaml").read_text())
    data["changes"]["deletes"] = "hard"
    (tmp_path / "contracts").mkdir()
    path = tmp_path / "contracts" / "payments.yaml"
    path.write_text(yaml.safe_dump(data))
    contract = load_contract(path)
    settings = Settings.from_env({}, data_dir=tmp_path / "lake")
    lake, engine = Lakehouse(settings), EmbeddedEngine()
    land(settings, "payments", "2026/11/01/10/all", jsonl(*STREAM))
    try:
        _, promoted = ingest_and_promote(lake, engine, contract)
    finally:
        engine.close()
    rows = {r["payment_id"]: r for r in lake.trusted("payments").read().to_pylist()}
    deleted = rows["pay-00000001"]
    assert deleted["_deleted"] and (deleted["op"], deleted["lsn"]) == ("d", 18)
    assert deleted["amount"] is None and deleted["status"] is None and deleted["order_id"] is None
    assert rows["pay-00000002"]["status"] == "captured"
    key = dg.AssetKey(["trusted", "payments"])
    checks = contract_check_results(lake.trusted("payments"), contract, key, reconciled=True, reconciliation={})
    assert all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks if not c.passed]
    assert promoted.reconciled
