"""Personal data outside raw and trusted: a source's quarantine keeps only a keyed hash of what its contract
names in `pii`, never the value, and describes the columns so in the catalog; after a hostile delivery no
quarantine or rejected table holds a personal value in clear."""

import gzip
import hashlib
import stat

from medallion_platform.catalog import build_catalog
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.pii import pii_hasher
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import land

HEADER = "customer_id,name,email,country,segment,updated_at\r\n"
ROWS = [
    "cus-000001,Ada Lovelace,ada@example.com,GB,consumer,2026-11-01T08:00:00Z",  # valid
    "cus-000002,Grace Hopper,grace@example,US,smb,2026-11-01T08:00:00Z",  # e-mail fails its pattern
    "cus-000003,Alan Turing,alan@example.com,gb,smb,2026-11-01T08:00:00Z",  # country fails (not PII)
    "cus-000004,Joan Clarke,joan@example.com,GB,smb",  # too few fields: the record cannot be parsed
]
CLEAR = ["Grace Hopper", "grace@example", "Alan Turing", "alan@example.com", "Joan Clarke", "joan@example.com"]


def _keyed(key: str, value: str) -> str:
    return "sha256:" + hashlib.sha256(f"{key}\x1f{value}".encode()).hexdigest()


def _quarantine(settings: Settings, contracts, embedded, lake, *, batch: str = "1") -> list[dict]:
    land(settings, "customers", f"2026/11/0{batch}/customers_2026110{batch}.csv", HEADER + "\r\n".join(ROWS) + "\r\n")
    ingest_raw(lake, contracts["customers"])
    promote(lake, embedded, contracts["customers"])
    return sorted(
        lake.quarantine("customers").read().to_pylist(), key=lambda r: (r["_landing_date"], r["_source_line"])
    )


def test_quarantine_holds_personal_data_only_as_its_keyed_hash(tmp_path, contracts, embedded):
    settings = Settings.from_env({"MEDALLION_PII_HASH_KEY": "k" * 32}, data_dir=tmp_path / "lake")
    from medallion_platform.lake.lakehouse import Lakehouse

    rows = _quarantine(settings, contracts, embedded, Lakehouse(settings))
    cells = [str(v) for row in rows for v in row.values() if v is not None]
    assert [c for c in cells if any(clear in c for clear in CLEAR)] == []
    grace, alan, joan = rows
    assert (grace["_rule"], grace["_column"]) == ("regex", "email")
    assert grace["email"] == grace["_raw_value"] == _keyed("k" * 32, "grace@example")
    assert grace["name"] == _keyed("k" * 32, "Grace Hopper")
    assert grace["country"] == "US"  # not personal data: kept as it came, for whoever fixes the row
    assert (alan["_column"], alan["_raw_value"]) == ("country", "gb")  # the failed value is not PII: in clear
    assert joan["_rule"] == "malformed_record" and joan["_raw_value"].startswith("sha256:")
    assert {r["_raw_record"] for r in rows} == {None}  # no whole record of a PII contract leaves raw


def test_equal_values_match_across_batches_and_the_lake_keeps_one_generated_key(settings, contracts, embedded, lake):
    first = _quarantine(settings, contracts, embedded, lake, batch="1")
    both = _quarantine(settings, contracts, embedded, lake, batch="2")
    assert len(both) == 2 * len(first)
    assert [r["email"] for r in both[:3]] == [r["email"] for r in both[3:]]
    key_file = settings.data_dir / "_secrets" / "pii_hash_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert both[0]["email"] == _keyed(key_file.read_text().strip(), "grace@example")
    assert pii_hasher(settings) == pii_hasher(settings)  # read back, not generated again
    assert key_file.read_text().strip() not in repr(pii_hasher(settings))  # no log line shows the key


def test_the_catalog_says_which_quarantine_columns_are_hashed(settings, contracts, embedded, lake):
    _quarantine(settings, contracts, embedded, lake)
    entry = build_catalog(settings).entries()[f"{settings.catalog_name}.trusted.customers_quarantine"]
    described = {c["name"]: c.get("description", "") for c in entry.columns}
    assert "keyed hash" in described["email"] and "keyed hash" in described["name"]
    assert "keyed hash" not in described.get("country", "")
    assert set(entry.pii) == {"name", "email"}


# A hostile delivery of the customers source (it names `name` and `email` as personal data): each object or record
# below fails somewhere, and each carries personal data that must not leave raw and trusted in clear.
HOSTILE_PII = ["Marie Curie", "marie@example", "Lise Meitner", "lise@example.com", "Rosalind Franklin"]
HOSTILE_PII += [
    "rosalind@example.com",
    "Chlo\xe9 Martin",
    "chloe@example.com",
    "Dorothy Hodgkin",
    "dorothy@example.com",
]
HOSTILE = {
    "bad-rows.csv": (
        HEADER
        + "cus-000010,Marie Curie,marie@example,FR,consumer,2026-11-02T08:00:00Z\r\n"  # e-mail fails its pattern
        + "cus-000011,Lise Meitner,lise@example.com,AT,smb,2026-11-02T08:00:00Z,surplus\r\n"  # a field too many
        + 'cus-000012,"Rosalind Franklin,rosalind@example.com,GB,smb,2026-11-02T08:00:00Z\r\n'  # unclosed quote
    ).encode(),
    "latin-1.csv": (HEADER + "cus-000013,Chlo\xe9 Martin,chloe@example.com,FR,smb,2026-11-02T08:00:00Z\r\n").encode(
        "latin-1"
    ),  # not UTF-8
    "truncated.csv.gz": gzip.compress(
        (HEADER + "cus-000014,Dorothy Hodgkin,dorothy@example.com,GB,smb,2026-11-02T08:00:00Z\r\n").encode()
    )[:-12],  # the gzip stream ends early
}


def test_no_quarantine_or_rejected_table_holds_personal_data_in_clear_after_a_hostile_delivery(
    settings, contracts, embedded, lake
):
    for name, body in HOSTILE.items():
        land(settings, "customers", f"2026/11/02/{name}", body)
    ingest_raw(lake, contracts["customers"])
    promote(lake, embedded, contracts["customers"])

    read = {t.name: t.read() for d in contracts for t in (lake.quarantine(d), lake.rejected(d))}
    quarantined, rejected = read[lake.quarantine("customers").name], read[lake.rejected("customers").name]
    # Every hostile object left a trace (so the scan below reads rows that came from them) ...
    assert quarantined is not None and quarantined.num_rows >= 3, quarantined
    assert rejected is not None and rejected.num_rows >= 1, rejected
    # ... and none of their personal data is in clear in any quarantine or rejected table.
    cells = {name: [str(v) for row in t.to_pylist() for v in row.values()] for name, t in read.items() if t}
    found = {name: [c for c in cs if any(p in c for p in HOSTILE_PII)] for name, cs in cells.items()}
    assert {name: c for name, c in found.items() if c} == {}


def test_no_kept_plan_holds_the_hashing_key(tmp_path, contracts):
    """The plan cache keeps the quarantine projection of a contract without personal data (it uses no key),
    never that of one with: its SQL holds the key, and no file may."""
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.engine.plans import PlanCache
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_tests.helpers import event, jsonl

    key = "k" * 32
    settings = Settings.from_env({"MEDALLION_PII_HASH_KEY": key}, data_dir=tmp_path / "lake")
    lake, engine = Lakehouse(settings), EmbeddedEngine()
    engine.plans = PlanCache(tmp_path / "plans")
    try:
        rows = _quarantine(settings, contracts, engine, lake)
        land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2, quantity=0)))
        ingest_raw(lake, contracts["order_events"])
        assert promote(lake, engine, contracts["order_events"]).quarantined == 1
    finally:
        engine.close()
    assert rows[0]["email"] == _keyed(key, "grace@example")  # the key was used
    kept = [p.read_text() for p in (tmp_path / "plans").glob("*.json")]
    assert any('"_reason"' in text for text in kept)  # order_events' quarantine projection is kept
    assert [text for text in kept if key in text] == []
