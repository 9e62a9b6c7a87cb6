"""Erasure of a data subject: none of their rows anywhere afterwards, the refined figures rebuilt, a receipt
written once (also when the command is killed -9 and run again), keys not declared identifying refused."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from medallion_platform.engine import EmbeddedEngine
from medallion_platform.errors import ConfigError
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.erasure import erase
from medallion_platform.zones.pii import pii_hasher
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import build_refined


def _tables(lake: Lakehouse) -> dict[str, pa.Table]:
    """Every Delta table under the data directory (catalogued or not), by its path."""
    root = lake.settings.data_dir
    return {
        str(log.parent.relative_to(root)): DeltaTable(str(log.parent)).to_pyarrow_table()
        for log in sorted(root.rglob("_delta_log"))
    }


def _mentions(lake: Lakehouse, value: str) -> dict[str, int]:
    """Rows of every table with a text cell holding `value` or its keyed hash."""
    hashed = pii_hasher(lake.settings).hash_text(value)
    out = {}
    for name, table in _tables(lake).items():
        text = [c for c in table.column_names if pa.types.is_string(table.schema.field(c).type)]
        out[name] = sum(
            1 for row in table.select(text).to_pylist() if any(v and (value in v or hashed in v) for v in row.values())
        )
    return out


def _subject(lake: Lakehouse) -> str:
    """A customer with quarantined rows, trusted rows and order events: one who is everywhere."""
    quarantined = {r["customer_id"] for r in lake.quarantine("customers").read(columns=["customer_id"]).to_pylist()}
    trusted = {r["customer_id"] for r in lake.trusted("customers").read(columns=["customer_id"]).to_pylist()}
    events = [r["customer_id"] for r in lake.trusted("order_events").read(columns=["customer_id"]).to_pylist()]
    return max((c for c in quarantined & trusted if c), key=events.count)


def _logs(lake: Lakehouse) -> bytes:
    """Every byte of every table's Delta log (commits and checkpoints): what deletes and vacuum leave behind."""
    return b"".join(p.read_bytes() for p in sorted(lake.settings.data_dir.rglob("_delta_log/*")) if p.is_file())


def test_erasure_leaves_no_row_of_the_subject_anywhere_and_rebuilds_refined(full_lake):
    lake = full_lake
    subject = _subject(lake)
    people = lake.trusted("customers").read(columns=["customer_id", "name", "email"]).to_pylist()
    personal = {v for person in people for v in person.values() if v}  # every customer's, the subject's included
    before, rows_before = _mentions(lake, subject), {n: t.num_rows for n, t in _tables(lake).items()}
    held = {name for name, n in before.items() if n}
    assert {"raw/customers", "raw/order_events", "trusted/customers", "trusted/customers_quarantine"} <= held
    assert {"trusted/order_events", "refined/customer_lifetime"} <= held

    erasure = erase(lake, "customer_id", subject, reason="request 17", retention_hours=0)

    after = _mentions(lake, subject)
    assert after.pop("raw/erasure_ledger") == 1  # the receipt: the subject's keyed hash, never the value
    assert {name: n for name, n in after.items() if n} == {}, "rows of the subject survived"
    rows_after = {n: t.num_rows for n, t in _tables(lake).items()}
    erased = {t.table: t.rows for t in erasure.tables}
    for name in held - {n for n in held if n.startswith("refined/")}:
        assert rows_before[name] - rows_after[name] == erased[name] == before[name], name  # only the subject's rows
    engine = EmbeddedEngine()
    try:  # the refined tables hold what a build from the erased inputs gives
        for table in REFINED_TABLES:
            order = [(c, "ascending") for c in table.schema.names]  # every column: no tie left to chance
            stored = lake.refined(table.name).read().select(table.schema.names).sort_by(order)
            built = build_refined(lake, engine, table, None).select(table.schema.names).sort_by(order)
            assert stored.to_pylist() == built.to_pylist(), table.name
    finally:
        engine.close()
    (receipt,) = lake.erasure_ledger().read().to_pylist()
    assert receipt["subject"] == pii_hasher(lake.settings).hash_text(subject) and subject not in str(receipt)
    assert receipt["rows_deleted"] == sum(erased.values()) and receipt["reason"] == "request 17"
    assert {t["table"] for t in json.loads(receipt["tables"])} == set(erased)
    assert {r["table"] for r in json.loads(receipt["refined"])} >= {
        "refined/customer_lifetime",
        "refined/daily_revenue",
    }
    assert json.loads(receipt["landing_objects"]) and receipt["landing_action"] == "listed"
    for path in (lake.settings.data_dir / "raw" / "customers").glob("*.parquet"):  # vacuumed: old files gone
        assert subject.encode() not in path.read_bytes()
    logs = _logs(lake)  # the log outlives deletes and vacuum: no file statistics ever held personal values
    assert subject in personal and not [v for v in personal if v.encode() in logs]

    again = erase(lake, "customer_id", subject)
    assert again.already and again.erasure_id == erasure.erasure_id
    assert lake.erasure_ledger().read().num_rows == 1


def test_an_unparseable_record_quarantined_as_a_hash_goes_with_its_raw_row(full_lake):
    lake = full_lake
    malformed = [r for r in lake.quarantine("customers").read().to_pylist() if r["_rule"] == "malformed_record"]
    assert malformed and malformed[0]["customer_id"] is None and malformed[0]["_raw_value"].startswith("sha256:")
    raw = lake.raw("customers").read().to_pylist()
    (record,) = [
        r
        for r in raw
        if (r["_source_file"], r["_source_line"]) == (malformed[0]["_source_file"], malformed[0]["_source_line"])
    ]
    subject = record["_raw_record"].split(",")[0]
    erasure = erase(lake, "customer_id", subject, delete_landing=True)
    assert {t.table: t.rows for t in erasure.tables} == {"raw/customers": 1, "trusted/customers_quarantine": 1}
    assert erasure.landing_objects == [record["_source_file"]] and erasure.landing_action == "deleted"
    assert not (Path(lake.settings.landing_root) / record["_source_file"]).exists()


@pytest.mark.parametrize("key", ["event_id", "email", "no_such_column"])
def test_keys_not_declared_identifying_are_refused(full_lake, key):
    with pytest.raises(ConfigError, match="subject_keys"):
        erase(full_lake, key, "x")
    assert not full_lake.erasure_ledger().exists()


def _commits(table: Path) -> int:
    return len(list((table / "_delta_log").glob("*.json")))


def _medallion(lake: Lakehouse, *args: str) -> list[str]:
    return [sys.executable, "-m", "medallion_platform.cli", "--data-dir", str(lake.settings.data_dir), *args]


def test_a_killed_erasure_completes_on_rerun_with_one_receipt_and_the_same_figures(full_lake, tmp_path):
    lake = full_lake
    subject = _subject(lake)
    expected = {n: c for n, c in _mentions(lake, subject).items() if c and not n.startswith("refined/")}
    raw_customers = lake.settings.data_dir / "raw" / "customers"
    before = _commits(raw_customers)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    with (tmp_path / "killed.log").open("wb") as log:
        child = subprocess.Popen(
            _medallion(lake, "erase", "--key", f"customer_id={subject}"),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while _commits(raw_customers) == before and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        alive = child.poll() is None
        os.killpg(child.pid, signal.SIGKILL)  # kill -9 right after the first delete commit
        child.wait(timeout=30)
    assert alive, "the erasure finished before the kill point"
    assert _commits(raw_customers) == before + 1
    assert not lake.erasure_ledger().exists()  # killed before its receipt

    rerun = subprocess.run(
        _medallion(lake, "erase", "--key", f"customer_id={subject}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    (receipt,) = lake.erasure_ledger().read().to_pylist()
    assert {t["table"]: t["rows"] for t in json.loads(receipt["tables"])} == expected  # the killed run's figures kept
    assert {n: c for n, c in _mentions(lake, subject).items() if c} == {"raw/erasure_ledger": 1}
    third = subprocess.run(
        _medallion(lake, "erase", "--key", f"customer_id={subject}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert third.returncode == 0 and "erased before" in third.stdout
    assert lake.erasure_ledger().read().num_rows == 1
