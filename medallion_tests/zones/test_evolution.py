"""Contracts that evolve (`zones/evolution.py`, `write/persist.py::evolve`): a new nullable column reaches every
table and the catalog with old rows null; a breaking change is refused before raw takes a batch; a declared
rename is applied once; a tightened rule's stored violators are counted."""

import pytest

from medallion_platform.catalog import build_catalog
from medallion_platform.contracts import Column, Contract
from medallion_platform.errors import IncompatibleContract
from medallion_platform.zones.evolution import count_tightened, deployed_contract
from medallion_platform.zones.flow import ingest_and_promote
from medallion_tests.helpers import event, jsonl, land

HEADER = "customer_id,name,email,country,segment,updated_at\n"


def _customers(settings, relative: str, header: str, *rows: str) -> None:
    land(settings, "customers", relative, header + "".join(r + "\n" for r in rows))


def _with_column(contract: Contract, column: Column, position: int) -> Contract:
    columns = list(contract.columns)
    columns.insert(position, column)
    return contract.model_copy(update={"columns": columns})


def _tables(lake, name):
    return {"raw": lake.raw(name), "trusted": lake.trusted(name), "quarantine": lake.quarantine(name)}


def _column_by_key(table, key: str, column: str) -> dict:
    rows = table.table().to_pyarrow_table().to_pylist()
    return {row[key]: row[column] for row in rows}


@pytest.fixture(params=["embedded", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request, embedded):
    return embedded if request.param == "embedded" else request.getfixturevalue("spark_engine")


def _pairs(table, *columns: str) -> list[tuple]:
    rows = table.table().to_pyarrow_table().to_pylist()
    return sorted((tuple(r[c] for c in columns) for r in rows), key=str)


def test_a_new_nullable_column_reaches_every_table_and_the_catalog(settings, lake, contracts, engine):
    customers = contracts["customers"]
    _customers(
        settings,
        "2026/11/01/a.csv",
        HEADER,
        "cus-000001,Ann,a@x.io,DE,smb,2026-11-01T10:00:00Z",
        "cus-000002,Bob,b@x.io,FR,consumer,2026-11-01T10:00:00Z",
        "cus-000005,Eve,e@x.io,FR,public,2026-11-01T10:00:00Z",  # quarantined: segment not allowed
    )
    ingest_and_promote(lake, engine, customers)
    evolved = _with_column(customers, Column(name="phone", type="string", description="Contact phone"), 3)
    _customers(
        settings,
        "2026/11/02/b.csv",
        "customer_id,name,email,phone,country,segment,updated_at\n",
        "cus-000003,Cy,c@x.io,+49 30 1,DE,smb,2026-11-02T10:00:00Z",
        "cus-000004,Di,d@x.io,+49 30 2,DE,public,2026-11-02T10:00:00Z",  # quarantined
        "cus-000001,Ann,a@x.io,+49 30 3,DE,enterprise,2026-11-02T10:00:00Z",  # a newer version of an old key
    )
    _, promoted = ingest_and_promote(lake, engine, evolved)
    assert (promoted.inserted, promoted.updated, promoted.quarantined) == (1, 1, 1)

    raw, trusted, quarantine = _tables(lake, "customers").values()
    assert _pairs(raw, "customer_id", "phone") == sorted(
        [
            ("cus-000001", None),
            ("cus-000001", "+49 30 3"),
            ("cus-000002", None),
            ("cus-000003", "+49 30 1"),
            ("cus-000004", "+49 30 2"),
            ("cus-000005", None),
        ],
        key=str,
    )
    assert _pairs(trusted, "customer_id", "phone", "segment") == [
        ("cus-000001", "+49 30 3", "enterprise"),  # updated by the newer row, phone and all
        ("cus-000002", None, "consumer"),  # an old row: null
        ("cus-000003", "+49 30 1", "smb"),
    ]
    assert _pairs(quarantine, "customer_id", "phone") == [("cus-000004", "+49 30 2"), ("cus-000005", None)]
    entries = build_catalog(lake.settings).entries()
    for name in ("raw.customers", "trusted.customers", "trusted.customers_quarantine"):
        columns = {c["name"]: c for c in entries[f"medallion.{name}"].columns}
        assert "phone" in columns, name
    trusted_columns = {c["name"]: c for c in entries["medallion.trusted.customers"].columns}
    assert trusted_columns["phone"]["description"] == "Contact phone"
    assert deployed_contract(lake, "customers") == evolved


def test_an_event_column_added_on_the_insert_only_path(settings, lake, contracts, embedded):
    """order_events (partitioned, insert-only: the anti-join append) takes a new column the same way."""
    events = contracts["order_events"]
    land(settings, "order_events", "2026/11/01/10/a", jsonl(event(1), event(2)))
    ingest_and_promote(lake, embedded, events)
    evolved = _with_column(events, Column(name="channel", type="string", allowed=["web", "app"]), 8)
    land(settings, "order_events", "2026/11/01/11/b", jsonl(event(3, channel="app"), event(4, channel="fax")))
    _, promoted = ingest_and_promote(lake, embedded, evolved)
    assert (promoted.inserted, promoted.quarantined) == (1, 1)
    assert _pairs(lake.trusted("order_events"), "event_id", "channel") == [
        (event(1)["event_id"], None),
        (event(2)["event_id"], None),
        (event(3)["event_id"], "app"),
    ]
    assert _pairs(lake.quarantine("order_events"), "event_id", "_rule") == [(event(4)["event_id"], "allowed")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("removed", "columns.country: column_removed"),
        ("narrowed", "columns.updated_at: type_narrowed"),
        ("required", "columns.phone: required_column_added"),
        ("renamed", "add `renamed_from: name` to the new column"),
        ("key", "primary_key: key_changed"),
    ],
)
def test_a_breaking_change_is_refused_before_raw_takes_a_batch(settings, lake, contracts, embedded, change, message):
    customers = contracts["customers"]
    _customers(settings, "2026/11/01/a.csv", HEADER, "cus-000001,Ann,a@x.io,DE,smb,2026-11-01T10:00:00Z")
    ingest_and_promote(lake, embedded, customers)
    columns = list(customers.columns)
    broken = {
        "removed": lambda: {"columns": [c for c in columns if c.name != "country"]},
        "narrowed": lambda: {
            "columns": [c.model_copy(update={"type": "date"}) if c.name == "updated_at" else c for c in columns]
        },
        "required": lambda: {"columns": [*columns, Column(name="phone", type="string", required=True)]},
        "renamed": lambda: {
            "columns": [c.model_copy(update={"name": "full_name"}) if c.name == "name" else c for c in columns],
            "pii": ["full_name", "email"],
        },
        "key": lambda: {"primary_key": ["email"]},
    }[change]()
    _customers(settings, "2026/11/02/b.csv", HEADER, "cus-000002,Bob,b@x.io,FR,smb,2026-11-02T10:00:00Z")
    raw_version = lake.raw("customers").version()
    with pytest.raises(IncompatibleContract, match="way forward") as refused:
        ingest_and_promote(lake, embedded, customers.model_copy(update=broken))
    assert message in refused.value.line()
    assert refused.value.exit_code == 2
    assert lake.raw("customers").version() == raw_version  # raw took nothing under the refused contract
    _, promoted = ingest_and_promote(lake, embedded, customers)  # the deployed contract still runs
    assert promoted.inserted == 1


def test_a_declared_rename_rewrites_raw_trusted_and_quarantine_once(settings, lake, contracts, embedded):
    customers = contracts["customers"]
    _customers(
        settings,
        "2026/11/01/a.csv",
        HEADER,
        "cus-000001,Ann,a@x.io,DE,smb,2026-11-01T10:00:00Z",
        "cus-000002,Bob,b@x.io,FR,public,2026-11-01T10:00:00Z",
    )
    ingest_and_promote(lake, embedded, customers)
    renamed = customers.model_copy(
        update={
            "columns": [
                c.model_copy(update={"name": "full_name", "renamed_from": "name"}) if c.name == "name" else c
                for c in customers.columns
            ],
            "pii": ["full_name", "email"],
        }
    )
    _customers(
        settings,
        "2026/11/02/b.csv",
        HEADER.replace(",name,", ",full_name,"),
        "cus-000003,Cy,c@x.io,DE,smb,2026-11-02T10:00:00Z",
    )
    _, promoted = ingest_and_promote(lake, embedded, renamed)
    assert promoted.inserted == 1 and promoted.batch_seqs == [1]  # the app transactions survived the rewrite
    for table in _tables(lake, "customers").values():
        assert "full_name" in table.schema().names and "name" not in table.schema().names
    assert _pairs(lake.trusted("customers"), "customer_id", "full_name") == [
        ("cus-000001", "Ann"),
        ("cus-000003", "Cy"),
    ]
    version = lake.trusted("customers").version()
    ingest_and_promote(lake, embedded, renamed)  # nothing new, nothing rewritten again
    assert lake.trusted("customers").version() == version


def test_a_tightened_rule_counts_the_trusted_rows_it_would_quarantine(settings, lake, contracts, embedded):
    customers = contracts["customers"]
    _customers(
        settings,
        "2026/11/01/a.csv",
        HEADER,
        "cus-000001,Ann,a@x.io,DE,smb,2026-11-01T10:00:00Z",
        "cus-000002,Bob,b@x.io,FR,consumer,2026-11-01T10:00:00Z",
        "cus-000003,Cy,c@x.io,GB,consumer,2026-11-01T10:00:00Z",
    )
    ingest_and_promote(lake, embedded, customers)
    assert count_tightened(lake, embedded, customers) == {}
    tighter = [
        c.model_copy(update={"allowed": ["smb", "enterprise"]}) if c.name == "segment" else c for c in customers.columns
    ]
    assert count_tightened(lake, embedded, customers.model_copy(update={"columns": tighter})) == {"segment": 2}
