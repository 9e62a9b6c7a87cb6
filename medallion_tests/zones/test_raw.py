"""Raw ingestion: source-faithful rows with ingestion metadata, each landing file exactly once."""

import gzip
import shutil

from medallion_platform.ingestion.parsers import parse_csv
from medallion_platform.zones.flow import ingest_raw
from medallion_tests.helpers import event, jsonl, land


def test_raw_keeps_values_as_they_came_with_metadata(settings, contracts, lake):
    key = land(
        settings,
        "order_events",
        "2026/11/01/10/part-1",
        jsonl(event(1, quantity=2, unit_price=12.5, app_version="9.9"), "{broken", event(2)) + "\n",
    )
    result = ingest_raw(lake, contracts["order_events"])
    assert result.rows == 3 and result.files == [key] and result.malformed == 1
    rows = lake.raw("order_events").read().sort_by("_source_line").to_pylist()
    first, broken, second = rows
    assert first["quantity"] == "2" and first["unit_price"] == "12.5"  # text, as it came
    assert first["_extra_fields"] == "app_version" and '"app_version": "9.9"' in first["_raw_record"]
    assert broken["_parse_error"] == "malformed JSON" and broken["_raw_record"] == "{broken"
    assert second["_raw_record"] is None and second["_extra_fields"] is None
    assert [r["_source_line"] for r in rows] == [1, 2, 3]
    assert {r["_source_file"] for r in rows} == {key}
    assert {r["_landing_date"] for r in rows} == {"2026-11-01"}
    assert {r["_batch_seq"] for r in rows} == {0}
    assert all(r["_ingested_at"] is not None and r["_batch_id"] for r in rows)


def test_json_lines_keep_their_line_numbers_across_blank_lines_crlf_and_bad_bytes(settings, contracts, lake):
    data = (
        b'{"event_id":"evt-1"}\r\n'
        b"\r\n"  # blank (CRLF)
        b"   \t\n"  # only whitespace
        b'\t{"event_id":"evt-4"}\n'  # an object after a tab
        b"[1, 2]\n"  # valid JSON, not an object
        b'{"event_id":"evt-\xff"}\n'  # not UTF-8: a broken record (bytes replaced in _raw_record)
        b'{"event_id":"evt-7"}'  # no newline at the end
    )
    land(settings, "order_events", "2026/11/01/10/mixed", data)
    result = ingest_raw(lake, contracts["order_events"])
    rows = lake.raw("order_events").read().sort_by("_source_line").to_pylist()
    assert result.rows == 5 and result.malformed == 2
    assert [(r["_source_line"], r["event_id"], r["_parse_error"]) for r in rows] == [
        (1, "evt-1", None),
        (4, "evt-4", None),
        (5, None, "not a JSON object"),
        (6, None, "not UTF-8 text"),
        (7, "evt-7", None),
    ]
    assert rows[3]["_raw_record"] == '{"event_id":"evt-\ufffd"}'


def test_same_file_twice_adds_nothing_and_new_files_get_a_new_batch(settings, contracts, lake):
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2)))
    assert ingest_raw(lake, contract).rows == 2
    again = ingest_raw(lake, contract)
    assert again.rows == 0 and again.already_ingested == 1
    land(settings, "order_events", "2026/11/01/11/b.gz", gzip.compress(jsonl(event(3)).encode()))
    third = ingest_raw(lake, contract)
    assert third.rows == 1 and third.batch_seq == 1
    table = lake.raw("order_events")
    assert table.read().num_rows == 3
    assert table.transaction_version("medallion/raw/order_events") == 1


def test_a_run_that_died_before_logging_does_not_ingest_twice(settings, contracts, lake):
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2)))
    ingest_raw(lake, contract)
    shutil.rmtree(settings.data_dir / "raw" / "_ingest_log" / "order_events")  # as if the log write never happened
    assert ingest_raw(lake, contract).rows == 0
    assert lake.raw("order_events").read().num_rows == 2


def test_landing_date_scopes_the_files_taken(settings, contracts, lake):
    contract = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/23/a", jsonl(event(1)))
    land(settings, "order_events", "2026/11/02/00/b", jsonl(event(2)))
    land(settings, "order_events", "stray-file.json", jsonl(event(3)))
    result = ingest_raw(lake, contract, landing_dates=["2026-11-02"])
    assert result.rows == 1 and result.landing_dates == ["2026-11-02"]
    rest = ingest_raw(lake, contract)
    assert rest.rows == 1 and [(r.key, r.reason) for r in rest.rejected] == [
        ("landing/order_events/stray-file.json", "outside_layout")
    ]


def test_csv_export_with_bom_crlf_quotes_and_ragged_rows(contracts):
    body = (
        "\ufeffcustomer_id,name,email,country,segment,updated_at,loyalty_tier\r\n"
        'cus-000001,"Doe, Jane",jane@example.com,DE,smb,2026-11-01T00:00:00Z,gold\r\n'
        'cus-000002,"Line one\r\nline two",x@example.com,FR,consumer,2026-11-01T00:00:00Z,\r\n'
        "\r\n"
        "cus-000003,too,few\r\n"
    ).encode()
    rows = parse_csv(body, contracts["customers"]).to_pylist()
    assert [r["customer_id"] for r in rows] == ["cus-000001", "cus-000002", None]
    assert rows[0]["name"] == "Doe, Jane" and rows[0]["_extra_fields"] == "loyalty_tier"
    assert rows[1]["name"] == "Line one\r\nline two"
    assert [r["_source_line"] for r in rows] == [2, 3, 6]
    assert rows[2]["_parse_error"] == "expected 7 fields, found 3" and rows[2]["_raw_record"] == "cus-000003,too,few"
