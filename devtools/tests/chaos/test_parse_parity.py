"""Parity of the two landing parsers: the hostile corpus through the embedded parser (DuckDB on the
driver) and through the Spark parser (`zones/raw_spark_parse.py`, on the executors) gives the same raw
rows and the same rejections, on Sail (the stand-in's Spark Connect cluster) and on classic local Spark.
"""

import datetime as dt
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from medallion_platform.ingestion.json_records import parse_json_lines
from medallion_platform.ingestion.landing_text import BAD_TEXT
from medallion_platform.ingestion.parsers import _jsonl_sql
from medallion_platform.zones.raw_ledger import survey_landing
from medallion_platform.zones.raw_spark_parse import parse_landing
from medallion_platform.zones.raw_stage import stage_batch
from medallion_tests.helpers import land

from .test_hostile_input import _corpus, _special_entries

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
COMPARED = [
    "_source_file",
    "_source_line",
    "_raw_record",
    "_parse_error",
    "_extra_fields",
    "_landing_date",
    "_batch_id",
    "_batch_seq",
    "_ingested_at",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sail_session():
    """A Sail Spark Connect server on 127.0.0.1 for this module's tests, and a session on it, both stopped after
    them (a Connect session left open would be the one other modules' frames resolve against).

    PySpark switches its functions to Spark Connect for the whole process while SPARK_CONNECT_MODE_ENABLED
    is set, which would break the classic local session other tests use: the variable is set only while a
    test uses this session (`sail`)."""
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "sail"), "spark", "server", "--ip", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "SPARK_"))},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"the Sail server did not open port {port} within 30 s") from None
            time.sleep(0.1)
    before = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    # Connect's own builder, a new session: pyspark's refuses one while the run's classic session is up, and
    # getOrCreate would hand back another test's session to another server
    spark = RemoteSparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
    if before is None:
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    try:
        yield spark
    finally:
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        try:
            spark.stop()
        finally:
            if before is None:
                os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


@pytest.fixture
def sail(sail_session, monkeypatch):
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    return sail_session


def _land_corpus(settings) -> None:
    for _, path, body, _ in _corpus():
        land(settings, "order_events", path, body)
    _special_entries(Path(settings.landing_root) / "landing/order_events")
    numbers = (  # values DuckDB rewrites: reals, big integers, NaN spellings, repeated keys, trailing commas
        b'{"event_id": "n1", "quantity": 12.50, "unit_price": 1e5, "status": 1E-7, "currency": -0.0}\n'
        b'{"event_id": "n2", "quantity": 18446744073709551616, "unit_price": -Inf, "status": 1e400,}\n'
        b'{"event_id": "n3", "event_id": "again", "quantity": [1.0, {"a": null}], "x": 1, "x": 2}\n'
    )
    land(settings, "order_events", "2026/11/01/12/numbers.jsonl", numbers)
    land(settings, "order_events", "2026/11/01/12/gone.jsonl", b'{"event_id": "evt-x"}\n')  # deleted after the survey


def _embedded(lake, contract, survey):
    connection = duckdb.connect()
    batch, unreadable = stage_batch(lake, contract, connection, survey.new, seq=0, ingested_at=NOW)
    assert batch is not None
    rows = connection.sql(f"SELECT * FROM {batch.table}").to_arrow_table()
    return batch, unreadable, rows


def _spark(spark, lake, contract, survey, batch_id):
    parse = parse_landing(
        spark,
        contract,
        survey.new,
        root=str(lake.settings.landing_root),
        batch_id=batch_id,
        seq=0,
        ingested_at=NOW,
    )
    return parse.summary(), parse.raw()


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["_source_file"], r["_source_line"]))


def _check_parity(spark, settings, lake, contracts) -> None:
    contract = contracts["order_events"]
    _land_corpus(settings)
    survey = survey_landing(lake, contract, None)
    (Path(settings.landing_root) / "landing/order_events/2026/11/01/12/gone.jsonl").unlink()
    batch, unreadable, embedded_rows = _embedded(lake, contract, survey)
    summary, raw = _spark(spark, lake, contract, survey, batch.batch_id)

    # the same objects rejected, with the same reason and detail (an object gone since the survey: the
    # same reason, the detail from each side's own reader)
    gone = "landing/order_events/2026/11/01/12/gone.jsonl"
    assert sorted((r.key, r.reason) for r in summary.rejected) == sorted((r.key, r.reason) for r in unreadable)
    details = {r.key: r.detail for r in summary.rejected}
    assert {r.key: r.detail for r in unreadable if r.key != gone} == {k: v for k, v in details.items() if k != gone}
    assert {r.reason for r in summary.rejected} == {"undecodable", "corrupt_gzip", "unreadable"}
    assert "no such object" in details[gone]
    # the same objects taken, rows per object and malformed records
    assert [f.key for f in summary.files] == [f.key for f in batch.files]
    assert summary.rows_by_file == batch.rows_by_file
    assert summary.malformed == batch.malformed() > 0

    # raw row for row, every column (the raw schema's names and types)
    names = [*contract.column_names, *COMPARED]
    spark_rows = raw.toArrow()  # the test compares on the driver; the product never collects raw rows
    assert spark_rows.schema.names == embedded_rows.schema.names
    want = _sorted(embedded_rows.select(names).to_pylist())
    got = _sorted(spark_rows.select(names).to_pylist())
    assert len(got) == len(want) == batch.rows
    for w, g in zip(want, got, strict=True):
        assert g == w, (w["_source_file"], w["_source_line"])


@pytest.mark.spark
def test_the_hostile_corpus_parses_alike_on_sail_and_embedded(sail, settings, lake, contracts):
    _check_parity(sail, settings, lake, contracts)


@pytest.mark.spark
def test_the_hostile_corpus_parses_alike_on_classic_spark_and_embedded(spark_engine, settings, lake, contracts):
    _check_parity(spark_engine.spark, settings, lake, contracts)


def test_the_json_reader_agrees_with_duckdb_on_mutated_lines(contracts):
    """Thousands of randomly damaged records: the Python reader and DuckDB's SQL give the same raw rows."""
    rng = random.Random(20)
    pieces = [*'{}[]:,"\\ 0123456789.eE+-aflnrstu\t', "null", "true", "NaN", "-Inf", "\\u00e9", "\\ud800", "é"]
    seeds = [
        '{"event_id": "e", "quantity": 1, "unit_price": 2.50, "x": [1, {"d": null}]}',
        '{"status": -0.0, "quantity": 1e300, "event_id": true, "event_id": 1e-7}',
        '{"order_id": "q\\"w", "currency": {"b": [1,]}, "": 1,}',
    ]
    lines = []
    for _ in range(6000):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(text))
            if rng.random() < 0.5:
                del text[at]
            else:
                text.insert(at, rng.choice(pieces))
        lines.append("".join(text))
    lines += ["[" * 3000 + "]" * 3000, '{"status": ' + "[" * 3000 + "]" * 3000 + "}", '{"quantity": 1.5e21}']
    names = contracts["order_events"].column_names
    table = pa.table({"line": lines, "line_no": range(1, len(lines) + 1), BAD_TEXT: [False] * len(lines)})

    class _Names:
        column_names = names

    connection = duckdb.connect()
    connection.register("lines", table)
    want = connection.sql(_jsonl_sql(_Names, lines="lines")).to_arrow_table().sort_by("_source_line").to_pylist()
    got = parse_json_lines(table, names).to_pylist()
    assert sum(r["_parse_error"] is None for r in want) > 500  # enough records that parse
    assert [g for g, w in zip(got, want, strict=True) if g != w] == []


def test_the_spark_parser_imports_no_driver_side_io():
    """The cluster-side parser needs no DuckDB, pyarrow file system, delta-rs or boto3."""
    probe = (
        "import sys, medallion_platform.zones.raw_spark_parse; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', 'deltalake', 'boto3', 'botocore', "
        "'sqlframe') or m in ('pyarrow.fs', 'pyarrow._fs', 'pyarrow.dataset')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
