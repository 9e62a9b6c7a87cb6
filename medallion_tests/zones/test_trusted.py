"""Trusted promotion on hand-written data: casts, rules, dedup, MERGE, quarantine, reconciliation."""

import datetime as dt
from decimal import Decimal

from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import event, jsonl, land

UTC = dt.UTC
CUSTOMER_HEADER = "customer_id,name,email,country,segment,updated_at\r\n"


def _events_batch(settings):
    return land(
        settings,
        "order_events",
        "2026/11/01/10/batch-1",
        jsonl(
            event(1, quantity=2, unit_price=19.99),  # valid
            event(1, quantity=2, unit_price=19.99),  # the same event delivered twice
            event(2, event_time="2026-11-01T23:30:00-02:00", currency="USD"),  # valid; lands on 11-02 in UTC
            event(3, quantity=0),  # below min
            event(4, currency="JPY"),  # not allowed
            event(5, event_time="not a time"),  # not a timestamp
            {k: v for k, v in event(6).items() if k != "customer_id"},  # required missing
            event(7, order_id="ORDER-7"),  # pattern
            "{this is not json",  # malformed
            event(8, unit_price="-1.00"),  # below min
        ),
    )


def _rows(table, sort):
    return sorted(table.read().to_pylist(), key=lambda r: r[sort])


def test_events_validated_deduplicated_and_quarantined(settings, contracts, embedded, lake):
    contract = contracts["order_events"]
    key = _events_batch(settings)
    ingest_raw(lake, contract)
    result = promote(lake, embedded, contract)

    trusted = [
        {
            k: r[k]
            for k in ("event_id", "quantity", "unit_price", "currency", "event_time", "event_date", "_source_line")
        }
        for r in _rows(lake.trusted("order_events"), "event_id")
    ]
    assert trusted == [
        {
            "event_id": "evt-0000000000000001",
            "quantity": 2,
            "unit_price": Decimal("19.99"),
            "currency": "EUR",
            "event_time": dt.datetime(2026, 11, 1, 10, tzinfo=UTC),
            "event_date": dt.date(2026, 11, 1),
            "_source_line": 1,  # the first delivery wins
        },
        {
            "event_id": "evt-0000000000000002",
            "quantity": 1,
            "unit_price": Decimal("10.00"),
            "currency": "USD",
            "event_time": dt.datetime(2026, 11, 2, 1, 30, tzinfo=UTC),
            "event_date": dt.date(2026, 11, 2),
            "_source_line": 3,
        },
    ]
    quarantined = [
        (r["_source_line"], r["_rule"], r["_column"], r["_raw_value"])
        for r in _rows(lake.quarantine("order_events"), "_source_line")
    ]
    assert quarantined == [
        (4, "min", "quantity", "0"),
        (5, "allowed", "currency", "JPY"),
        (6, "type", "event_time", "not a time"),
        (7, "required", "customer_id", None),
        (8, "regex", "order_id", "ORDER-7"),
        (9, "malformed_record", None, "{this is not json"),
        (10, "min", "unit_price", "-1.00"),
    ]
    q = lake.quarantine("order_events").read().to_pylist()
    assert {r["_source_file"] for r in q} == {key}
    assert next(r for r in q if r["_rule"] == "min" and r["_column"] == "quantity")["_reason"] == (
        "quantity is below the minimum 1"
    )
    assert (result.raw_rows, result.inserted, result.updated, result.duplicates, result.quarantined) == (10, 2, 0, 1, 7)
    assert result.reconciled
    assert result.touched_partitions == ["2026-11-01", "2026-11-02"]


def test_blank_values_are_missing_and_padded_values_are_trimmed_for_casts(settings, contracts, embedded, lake):
    contract = contracts["order_events"]
    land(
        settings,
        "order_events",
        "2026/11/01/10/blanks",
        jsonl(
            event(1, customer_id="   "),  # only spaces
            event(2, status=""),  # empty
            event(3, quantity=" 4 ", event_time=" 2026-11-01T10:00:00Z "),  # padded, valid
            event(4, product_id=" prd-00001"),  # present: the pattern decides
            event(5, currency="\t"),  # a tab is not a space: present, and not an allowed value
        ),
    )
    ingest_raw(lake, contract)
    promote(lake, embedded, contract)
    quarantined = [
        (r["_source_line"], r["_rule"], r["_column"]) for r in _rows(lake.quarantine("order_events"), "_source_line")
    ]
    assert quarantined == [
        (1, "required", "customer_id"),
        (2, "required", "status"),
        (4, "regex", "product_id"),
        (5, "allowed", "currency"),
    ]
    (row,) = _rows(lake.trusted("order_events"), "event_id")
    assert (row["event_id"], row["quantity"], row["event_time"]) == (
        "evt-0000000000000003",
        4,
        dt.datetime(2026, 11, 1, 10, tzinfo=UTC),
    )


def test_redelivered_events_in_a_later_batch_change_nothing(settings, contracts, embedded, lake):
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2)))
    ingest_raw(lake, contract)
    promote(lake, embedded, contract)
    version = lake.trusted("order_events").version()
    land(settings, "order_events", "2026/11/01/12/b", jsonl(event(2, quantity=9), event(3)))
    ingest_raw(lake, contract)
    result = promote(lake, embedded, contract)
    assert (result.inserted, result.updated, result.duplicates) == (1, 0, 1)
    rows = _rows(lake.trusted("order_events"), "event_id")
    assert [(r["event_id"], r["quantity"]) for r in rows] == [
        ("evt-0000000000000001", 1),
        ("evt-0000000000000002", 1),  # a re-delivered event never changes the stored one
        ("evt-0000000000000003", 1),
    ]
    assert lake.trusted("order_events").version() == version + 1


def test_customers_merge_newest_updated_at_wins(settings, contracts, embedded, lake):
    contract = contracts["customers"]
    land(
        settings,
        "customers",
        "2026/11/01/customers_20261101.csv",
        "\ufeff" + CUSTOMER_HEADER + "cus-000001,Ana,ana@example.com,DE,smb,2026-11-01T00:00:00Z\r\n"
        "cus-000002,Ben,ben@example.com,FR,consumer,2026-11-01T00:00:00Z\r\n"
        "cus-000002,Ben,ben@example.com,NL,consumer,2026-11-01T06:00:00Z\r\n",
    )
    ingest_raw(lake, contract)
    first = promote(lake, embedded, contract)
    assert (first.inserted, first.duplicates) == (2, 1)
    land(
        settings,
        "customers",
        "2026/11/02/customers_20261102.csv",
        CUSTOMER_HEADER + "cus-000001,Ana,ana@example.com,GB,enterprise,2026-11-02T00:00:00Z\r\n"
        "cus-000002,Ben,ben@example.com,US,smb,2026-10-01T00:00:00Z\r\n"  # older than what trusted has
        "cus-000003,Cem,cem@example,TR,smb,2026-11-02T00:00:00Z\r\n",  # e-mail without a domain
    )
    ingest_raw(lake, contract)
    second = promote(lake, embedded, contract)
    assert (second.raw_rows, second.inserted, second.updated, second.duplicates, second.quarantined) == (3, 0, 1, 1, 1)
    rows = [(r["customer_id"], r["country"], r["segment"]) for r in _rows(lake.trusted("customers"), "customer_id")]
    assert rows == [("cus-000001", "GB", "enterprise"), ("cus-000002", "NL", "consumer")]
    (bad,) = lake.quarantine("customers").read().to_pylist()
    assert (bad["customer_id"], bad["_rule"], bad["_column"]) == ("cus-000003", "regex", "email")


def test_retried_promotion_writes_nothing_twice(settings, contracts, embedded, lake):
    contract = contracts["order_events"]
    _events_batch(settings)
    ingest_raw(lake, contract)
    promote(lake, embedded, contract)
    versions = (
        lake.trusted("order_events").version(),
        lake.quarantine("order_events").version(),
    )
    again = promote(lake, embedded, contract)
    assert again.raw_rows == 0 and again.skipped
    assert (
        lake.trusted("order_events").version(),
        lake.quarantine("order_events").version(),
    ) == versions
    assert lake.trusted("order_events").read().num_rows == 2
    assert lake.quarantine("order_events").read().num_rows == 7


def test_a_crash_between_quarantine_and_trusted_commits_recovers(settings, contracts, embedded, lake):
    """Quarantine committed, trusted not: the retry writes trusted only and loses nothing."""
    from medallion_platform.write.writers import write_table
    from medallion_platform.zones.trusted import plan_promotion

    contract = contracts["order_events"]
    _events_batch(settings)
    ingest_raw(lake, contract)
    plan = plan_promotion(lake, embedded, contract)
    assert plan is not None
    # The IO manager commits quarantine, then the process dies before trusted's write.
    write_table(lake.quarantine("order_events"), plan.quarantine, batch_rows=settings.write_batch_rows)
    assert lake.quarantine("order_events").read().num_rows == 7
    assert not lake.trusted("order_events").exists()
    retry = promote(lake, embedded, contract)
    assert retry.inserted == 2
    assert lake.quarantine("order_events").read().num_rows == 7


def _source_step(lake, engine, contract, *, promote_it: bool = True):
    """One run of the source step as the asset runs it: raw staged and committed, then (unless the run is
    killed first) trusted promoted from the batch in hand."""
    from medallion_platform.zones.flow import write_raw
    from medallion_platform.zones.source_step import SourceStep
    from medallion_platform.zones.trusted import write_promotion

    with SourceStep(lake, contract) as step:
        write_raw(lake, step.plan_raw())
        return write_promotion(lake, contract, step.plan_promotion(engine)) if promote_it else None


def test_a_batch_a_killed_run_left_in_raw_is_promoted_with_the_next_one(settings, contracts, embedded, lake):
    """A run killed between raw's commit and the promotion leaves its batch in raw only: the next run sees it
    pending (raw's log says a batch lies between what trusted took and its own) and promotes both batches
    from raw; once nothing is pending, a run promotes the batch in hand."""
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2)))
    _source_step(lake, embedded, contract, promote_it=False)
    land(settings, "order_events", "2026/11/01/12/b", jsonl(event(3)))
    second = _source_step(lake, embedded, contract)
    assert not second.built_from_batch and (second.raw_rows, second.inserted) == (3, 3)
    land(settings, "order_events", "2026/11/01/14/c", jsonl(event(4)))
    third = _source_step(lake, embedded, contract)
    assert third.built_from_batch and (third.raw_rows, third.inserted) == (1, 1)
    ids = [r["event_id"] for r in _rows(lake.trusted("order_events"), "event_id")]
    assert ids == [f"evt-{n:016x}" for n in (1, 2, 3, 4)]
