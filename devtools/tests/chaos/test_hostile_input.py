"""A hostile landing corpus through the real ingest + promote path (`zones/flow.py`) on a tmp lake.

Every kind of bad bytes, records and objects below lands at once beside good ones, with the fate each
record must meet written beside it: it reaches trusted, it is quarantined with a rule (and column), or
its whole object is rejected with a reason. Nothing crashes, nothing blocks the other objects, and
nothing is silently dropped: every landed record is found in exactly one place.
"""

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from medallion_platform.engine import EmbeddedEngine
from medallion_platform.zones.flow import ingest_and_promote
from medallion_tests.helpers import event, land

pytestmark = pytest.mark.reliability

DAY = "2026/11/01"
TRUSTED = ("trusted",)


def q(rule: str, column: str | None = None) -> tuple:
    return ("quarantined", rule, column)


def rejected(reason: str) -> tuple:
    return ("rejected", reason)


def line(n: int, **overrides) -> str:
    return json.dumps(event(n, **overrides))


def _corpus() -> list[tuple[str, str, bytes, list[tuple]]]:
    """(kind, landing path below the dataset prefix, bytes, expected fate of each record in line order;
    one `rejected(...)` entry for an object rejected whole)."""
    noise = random.Random(13).randbytes(4096)
    deep = "[" * 5000 + "]" * 5000
    return [
        ("good object", f"{DAY}/00/good.jsonl", f"{line(1)}\n{line(2)}\n".encode(), [TRUSTED, TRUSTED]),
        ("UTF-8 BOM, JSON lines", f"{DAY}/01/bom.jsonl", b"\xef\xbb\xbf" + f"{line(3)}\n".encode(), [TRUSTED]),
        (
            "UTF-8 BOM inside gzip",
            f"{DAY}/01/bom.jsonl.gz",
            gzip.compress(b"\xef\xbb\xbf" + f"{line(4)}\n".encode()),
            [TRUSTED],
        ),
        ("CRLF line ends", f"{DAY}/02/crlf.jsonl", f"{line(5)}\r\n{line(6)}\r\n".encode(), [TRUSTED, TRUSTED]),
        ("empty object", f"{DAY}/02/empty.jsonl", b"", []),
        ("whitespace only", f"{DAY}/02/blank.jsonl", b" \n\t\r\n\n   ", []),
        (
            "truncated last line",
            f"{DAY}/03/truncated-line.jsonl",
            f"{line(7)}\n{line(8)[:40]}".encode(),
            [TRUSTED, q("malformed_record")],
        ),
        (
            "NaN quantity",
            f"{DAY}/03/nan.jsonl",
            line(9).replace('"quantity": 1', '"quantity": NaN').encode(),
            [q("type", "quantity")],
        ),
        (
            "Infinity unit price",
            f"{DAY}/03/infinity.jsonl",
            line(10).replace('"unit_price": "10.00"', '"unit_price": Infinity').encode(),
            [q("type", "unit_price")],
        ),
        (
            "1e999 quantity",
            f"{DAY}/03/huge-number.jsonl",
            line(11, quantity=None).replace("null", "1e999").encode(),
            [q("type", "quantity")],
        ),
        (
            "raw NUL byte in a string",
            f"{DAY}/04/nul.jsonl",
            line(12).replace("placed", "pla\x00ced").encode(),
            [q("malformed_record")],
        ),
        (
            "escaped NUL in a value",
            f"{DAY}/04/nul-escaped.jsonl",
            (line(13)[:-1] + ', "note": "a\\u0000b"}').encode(),
            [TRUSTED],
        ),
        ("5000-deep nesting as a line", f"{DAY}/04/deep-line.jsonl", deep.encode(), [q("malformed_record")]),
        (
            "5000-deep nesting in a known field",
            f"{DAY}/04/deep-field.jsonl",
            (line(14)[:-1] + f', "status": {deep}}}').replace('"status": "placed", ', "").encode(),
            [q("allowed", "status")],
        ),
        (
            "5000-deep nesting in an unknown field",
            f"{DAY}/04/deep-extra.jsonl",
            (line(15)[:-1] + f', "extra": {deep}}}').encode(),
            [TRUSTED],
        ),
        ("2 MB line", f"{DAY}/05/long.jsonl", line(16, status="x" * 2_000_000).encode(), [q("allowed", "status")]),
        (
            "wrong type: text quantity",
            f"{DAY}/05/types.jsonl",
            f"{line(17, quantity='abc')}\n".encode(),
            [q("type", "quantity")],
        ),
        (
            "wrong type: fractional integer",
            f"{DAY}/05/frac.jsonl",
            f"{line(18, quantity=2.5)}\n".encode(),
            [q("type", "quantity")],
        ),
        (
            "wrong type: boolean integer",
            f"{DAY}/05/bool.jsonl",
            f"{line(19, quantity=True)}\n".encode(),
            [q("type", "quantity")],
        ),
        (
            "wrong type: array value",
            f"{DAY}/05/array.jsonl",
            f"{line(20, quantity=[1])}\n".encode(),
            [q("type", "quantity")],
        ),
        (
            "wrong type: number as time",
            f"{DAY}/05/epoch.jsonl",
            f"{line(21, event_time=12345)}\n".encode(),
            [q("type", "event_time")],
        ),
        (
            "unknown fields",
            f"{DAY}/06/extra.jsonl",
            f"{line(22, app_version='9.9', nested={'a': 1})}\n".encode(),
            [TRUSTED],
        ),
        (
            "missing required",
            f"{DAY}/06/missing.jsonl",
            f"{line(23, customer_id='  ')}\n".encode(),
            [q("required", "customer_id")],
        ),
        (
            "year 9999",
            f"{DAY}/06/y9999.jsonl",
            f"{line(24, event_time='9999-12-31T23:59:59Z')}\n".encode(),
            [q("out_of_range", "event_time")],
        ),
        (
            "year 1850",
            f"{DAY}/06/y1850.jsonl",
            f"{line(25, event_time='1850-01-01T00:00:00Z')}\n".encode(),
            [q("out_of_range", "event_time")],
        ),
        (
            "year 10000",
            f"{DAY}/06/y10000.jsonl",
            f"{line(26, event_time='10000-01-01T00:00:00Z')}\n".encode(),
            [q("out_of_range", "event_time")],  # DuckDB reads year 10000 (a Spark cast: type)
        ),
        (
            "not JSON objects",
            f"{DAY}/07/scalars.jsonl",
            b'[1, 2]\nnull\n"text"\n{\n}\n',
            [q("malformed_record")] * 5,
        ),
        (
            "one line not UTF-8",
            f"{DAY}/07/latin1-line.jsonl",
            f"{line(27)}\n".encode() + line(28, status="placed").encode().replace(b"placed", b"plac\xe9") + b"\n",
            [TRUSTED, q("malformed_record")],
        ),
        (
            "UTF-16 text",
            f"{DAY}/07/utf16.jsonl",
            f"{line(29)}\n{line(30)}\n".encode("utf-16"),
            [rejected("undecodable")],
        ),
        (
            "duplicate within the batch",
            f"{DAY}/08/dupe.jsonl",
            f"{line(31)}\n{line(31)}\n".encode(),
            [TRUSTED, ("duplicate",)],
        ),
        (
            "trailing comma (accepted by DuckDB's JSON)",
            f"{DAY}/08/comma.jsonl",
            (line(32)[:-1] + ",}").encode(),
            [TRUSTED],
        ),
        (
            "truncated gzip",
            f"{DAY}/09/cut.jsonl.gz",
            gzip.compress(f"{line(33)}\n".encode() * 50)[:60],
            [rejected("corrupt_gzip")],
        ),
        ("gzip magic, garbage after", f"{DAY}/09/fake.jsonl.gz", b"\x1f\x8b" + noise[:200], [rejected("corrupt_gzip")]),
        ("gzip of garbage", f"{DAY}/09/garbage.jsonl.gz", gzip.compress(noise), [rejected("undecodable")]),
        ("undecodable bytes", f"{DAY}/09/latin1.jsonl", "é\n".encode("latin-1") * 3, [rejected("undecodable")]),
        ("outside the layout", "stray.jsonl", f"{line(34)}\n".encode(), [rejected("outside_layout")]),
        ("one folder deeper", f"{DAY}/10/extra/deeper.jsonl", f"{line(35)}\n".encode(), [rejected("outside_layout")]),
        ("impossible date folder", "2026/13/45/bad-date.jsonl", f"{line(36)}\n".encode(), [rejected("outside_layout")]),
    ]


def _special_entries(root) -> dict[str, str]:
    """Entries that are not plain files: (key below the dataset prefix -> expected rejection reason)."""
    folder = root / DAY / "11"
    folder.mkdir(parents=True)
    (folder / "named-like-a-file.jsonl").mkdir()
    os.symlink(folder / "missing-target.jsonl", folder / "dangling.jsonl")
    os.mkfifo(folder / "fifo.jsonl")  # a reader that opened it would wait forever
    return {
        f"{DAY}/10/extra": "directory",
        f"{DAY}/11/named-like-a-file.jsonl": "directory",
        f"{DAY}/11/dangling.jsonl": "dangling_link",
        f"{DAY}/11/fifo.jsonl": "not_a_file",
    }


def _by_location(table) -> dict[tuple[str, int], dict]:
    rows = table.read()
    return {} if rows is None else {(r["_source_file"], r["_source_line"]): r for r in rows.to_pylist()}


def test_every_hostile_record_meets_its_written_fate_and_nothing_blocks(settings, lake, contracts, caplog):
    contract = contracts["order_events"]
    corpus = _corpus()
    assert len(corpus) + 4 >= 30  # kinds of bad bytes, records and objects (the good object included)
    for _, path, body, _ in corpus:
        land(settings, "order_events", path, body)
    prefix = f"landing/{contract.name}"
    special = _special_entries(Path(settings.landing_root) / prefix)

    engine = EmbeddedEngine()
    try:
        raw_result, promoted = ingest_and_promote(lake, engine, contract)
    finally:
        engine.close()

    trusted = _by_location(lake.trusted(contract.name))
    quarantine = _by_location(lake.quarantine(contract.name))
    raw = _by_location(lake.raw(contract.name))
    rejections = {r["source_file"]: r["reason"] for r in lake.rejected(contract.name).read().to_pylist()}
    expected_rejections = {f"{prefix}/{k}": v for k, v in special.items()}
    records = 0
    for kind, path, _, fates in corpus:
        key = f"{prefix}/{path}"
        if fates and fates[0][0] == "rejected":
            expected_rejections[key] = fates[0][1]
            assert not [k for k in raw if k[0] == key], kind
            continue
        lines = sorted(n for f, n in raw if f == key)
        assert len(lines) == len(fates), f"{kind}: {len(lines)} raw rows for {len(fates)} records"
        for number, fate in zip(lines, fates, strict=True):
            records += 1
            where = (key, number)
            if fate == TRUSTED:
                assert where in trusted and where not in quarantine, kind
            elif fate == ("duplicate",):
                assert where not in trusted and where not in quarantine, kind
            else:
                _, rule, column = fate
                assert where not in trusted, kind
                assert (quarantine[where]["_rule"], quarantine[where]["_column"]) == (rule, column), kind
    assert rejections == expected_rejections
    assert sorted(r.key for r in raw_result.rejected) == sorted(expected_rejections)
    assert raw_result.newly_rejected == len(expected_rejections)
    for key in expected_rejections:  # each named in a warning
        assert any(key in message for message in caplog.messages), key

    # nothing silently dropped: every landed record is in raw and in exactly one place downstream
    assert len(raw) == records == raw_result.rows == promoted.raw_rows
    assert promoted.reconciled, promoted.as_metadata()
    assert promoted.in_batch_duplicates == 1 and promoted.redeliveries == 0
    assert len(trusted) + len(quarantine) + promoted.duplicates == records

    # a second run: nothing new, nothing recorded twice, nothing retried
    engine = EmbeddedEngine()
    try:
        again, promoted_again = ingest_and_promote(lake, engine, contract)
    finally:
        engine.close()
    assert again.rows == 0 and again.newly_rejected == 0 and promoted_again.skipped
    assert sorted(r.key for r in again.rejected) == sorted(expected_rejections)
    assert lake.rejected(contract.name).read().num_rows == len(expected_rejections)


def test_a_fixed_object_relanded_under_a_rejected_key_is_taken(settings, lake, contracts):
    contract = contracts["order_events"]
    body = gzip.compress(f"{line(1)}\n{line(2)}\n".encode())
    key = land(settings, "order_events", f"{DAY}/00/part.jsonl.gz", body[: len(body) // 2])
    land(settings, "order_events", f"{DAY}/00/other.jsonl", f"{line(3)}\n".encode())
    engine = EmbeddedEngine()
    try:
        first, _ = ingest_and_promote(lake, engine, contract)
        assert first.rows == 1 and [(r.key, r.reason) for r in first.rejected] == [(key, "corrupt_gzip")]
        land(settings, "order_events", f"{DAY}/00/part.jsonl.gz", body)  # the producer delivers it again, whole
        os.utime(Path(settings.landing_root) / key, ns=(1, 1))  # a new modification time, as a new upload has
        second, promoted = ingest_and_promote(lake, engine, contract)
    finally:
        engine.close()
    assert second.rows == 2 and second.rejected == [] and second.files == [key]
    assert promoted.inserted == 2 and promoted.reconciled
