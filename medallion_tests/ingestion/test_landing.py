"""The landing layout and the parsers on bytes that are not what they should be."""

import gzip
from pathlib import Path

import pytest

from medallion_platform.ingestion.landing import UnreadableObject, read_landing_file, scan_landing
from medallion_platform.ingestion.parsers import parse_csv
from medallion_tests.helpers import land

HEADER = "customer_id,name,email,country,segment,updated_at\n"


def test_a_csv_row_that_is_not_utf8_is_a_broken_record_and_the_others_are_kept(contracts):
    body = (HEADER + "cus-000001,Ann,a@example.com,DE,smb,2026-11-01T00:00:00Z\n").encode()
    body += "cus-000002,Jos\xe9,j@example.com,FR,smb,2026-11-01T00:00:00Z\n".encode("latin-1")
    rows = parse_csv(body, contracts["customers"]).to_pylist()
    assert [(r["customer_id"], r["_parse_error"], r["_source_line"]) for r in rows] == [
        ("cus-000001", None, 2),
        (None, "not UTF-8 text", 3),
    ]


def test_a_csv_object_in_another_encoding_throughout_is_undecodable(contracts):
    body = (HEADER + "cus-000002,Jos\xe9,j@example.com,FR,smb,2026-11-01T00:00:00Z\n").replace("name", "n\xe4me")
    with pytest.raises(UnreadableObject) as raised:
        parse_csv(body.encode("latin-1").replace(b"customer_id", b"customer\xff"), contracts["customers"])
    assert raised.value.reason == "undecodable"


def test_bom_is_stripped_from_gzip_and_plain_objects(settings, contracts):
    contract = contracts["order_events"]
    plain = land(settings, "order_events", "2026/11/01/00/a.jsonl", b"\xef\xbb\xbf{}\n")
    packed = land(settings, "order_events", "2026/11/01/00/b.jsonl.gz", gzip.compress(b"\xef\xbb\xbf{}\n"))
    assert read_landing_file(settings, contract, plain) == read_landing_file(settings, contract, packed) == b"{}\n"


def test_a_truncated_gzip_names_its_reason(settings, contracts):
    key = land(settings, "order_events", "2026/11/01/00/cut.jsonl.gz", gzip.compress(b"{}\n" * 100)[:20])
    with pytest.raises(UnreadableObject) as raised:
        read_landing_file(settings, contracts["order_events"], key)
    assert raised.value.reason == "corrupt_gzip" and "EOFError" in raised.value.detail


def test_scan_names_what_is_not_in_the_layout_and_skips_markers(settings, contracts):
    land(settings, "order_events", "2026/11/01/00/a.jsonl", b"{}\n")
    land(settings, "order_events", "2026/11/01/00/_SUCCESS", b"")
    land(settings, "order_events", "2026/11/01/_temporary/0/part", b"{}\n")
    land(settings, "order_events", "2026/11/01/00/sub/b.jsonl", b"{}\n")
    scan = scan_landing(settings, contracts["order_events"])
    assert [f.key for f in scan.files] == ["landing/order_events/2026/11/01/00/a.jsonl"]
    assert [(r.key.removeprefix("landing/order_events/"), r.reason) for r in scan.rejected] == [
        ("2026/11/01/00/sub", "directory"),
        ("2026/11/01/00/sub/b.jsonl", "outside_layout"),
    ]
    first = scan.files[0].fingerprint
    (Path(settings.landing_root) / scan.files[0].key).write_bytes(b"{}\n{}\n")
    assert scan_landing(settings, contracts["order_events"]).files[0].fingerprint != first
