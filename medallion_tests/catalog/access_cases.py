"""One customers table and what each reader must see of it, shared by the local and the Unity Catalog tests, so
both hold the same masks and filters to the same expectations."""

import datetime as dt

import pyarrow as pa

from medallion_platform.catalog import Catalog
from medallion_platform.contracts import Contract
from medallion_platform.lake.schema import conform, trusted_schema

QUERY = "SELECT customer_id, name, email, country FROM {catalog}.trusted.customers ORDER BY customer_id"

ROWS = [
    ("cus-000001", "Ana Weber", "ana@example.com", "DE"),
    ("cus-000002", "Ben Smith", "ben@example.com", "GB"),
    ("cus-000003", "Chloé Martin", "chloe@example.com", "FR"),
    ("cus-000004", "Dan Miller", "dan@example.com", "US"),
]

# reader (principal, groups) -> the rows `QUERY` returns
EXPECTED = {
    ("ann", ("analysts-uk",)): [("cus-000002", "[redacted]", "[redacted]", "GB")],
    ("eve", ("analysts-eu",)): [
        ("cus-000001", "[redacted]", "[redacted]", "DE"),
        ("cus-000003", "[redacted]", "[redacted]", "FR"),
    ],
    ("dora", ("data-engineers",)): [(c, "[redacted]", "[redacted]", k) for c, _, _, k in ROWS],  # rows, no PII
    ("pia", ("pii-readers",)): ROWS,  # the PII reader: everything in clear
    ("nobody", ()): [],
    ("medallion-platform", ()): ROWS,  # the platform's own principal builds refined from trusted
}


def reader_groups() -> dict[str, set[str]]:
    """The account groups `EXPECTED`'s readers are members of, for a Unity Catalog that knows them."""
    groups: dict[str, set[str]] = {}
    for reader, memberships in EXPECTED:
        for group in memberships:
            groups.setdefault(group, set()).add(reader)
    return groups


def customers_table(contract: Contract) -> pa.Table:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    data = {
        "customer_id": [r[0] for r in ROWS],
        "name": [r[1] for r in ROWS],
        "email": [r[2] for r in ROWS],
        "country": [r[3] for r in ROWS],
        "segment": ["consumer"] * len(ROWS),
        "updated_at": [now] * len(ROWS),
        "_source_file": ["landing/customers/2026/11/01/a.csv"] * len(ROWS),
        "_source_line": list(range(2, 2 + len(ROWS))),
        "_ingested_at": [now] * len(ROWS),
        "_batch_seq": [0] * len(ROWS),
        "_landing_date": ["2026-11-01"] * len(ROWS),
    }
    schema = trusted_schema(contract)
    return conform(pa.table({f.name: data[f.name] for f in schema if f.name in data}), schema)


def seen_by(catalog: Catalog) -> list[tuple]:
    table = catalog.sql(QUERY.format(catalog=catalog.settings.catalog_name))
    return [tuple(r.values()) for r in table.to_pylist()]
