"""The embedded catalog: tables registered by zone and queried by `<catalog>.<zone>.<table>`."""

import threading

import pyarrow as pa
import pytest

from medallion_platform.catalog import TableEntry, build_catalog
from medallion_platform.catalog.embedded import EmbeddedCatalog
from medallion_platform.write.spec import Append, TableWrite
from medallion_platform.write.writers import write_table

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("email", pa.string())])


def _write(lake, embedded, zone: str, name: str, rows: list[dict]) -> None:
    table = lake.for_key([zone, name])
    frame = embedded.dataframe(pa.Table.from_pylist(rows, schema=SCHEMA), f"{zone}_rows")
    write_table(table, TableWrite(embedded, frame, Append(), SCHEMA), batch_rows=lake.settings.write_batch_rows)


def test_registered_tables_are_queried_by_name(settings, lake, embedded):
    catalog = build_catalog(settings)
    assert isinstance(catalog, EmbeddedCatalog)
    _write(lake, embedded, "trusted", "customers", [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}])
    _write(lake, embedded, "refined", "it's quoted", [{"id": 3, "email": None}])
    entry = TableEntry(description="people", owner="team:crm", pii=("email",), column_descriptions={"email": "e-mail"})
    registered = catalog.register("trusted", "customers", schema=SCHEMA, entry=entry)
    catalog.register("refined", "it's quoted", schema=SCHEMA, entry=TableEntry(description="odd", owner="me"))
    assert registered.full_name == "medallion.trusted.customers"
    assert registered.location == settings.table_uri("trusted", "customers")
    assert registered.columns == [
        {"name": "id", "type": "int64", "pii": False, "description": ""},
        {"name": "email", "type": "string", "pii": True, "description": "e-mail"},
    ]
    assert set(build_catalog(settings).entries()) == {"medallion.trusted.customers", "medallion.refined.it's quoted"}
    rows = catalog.sql("SELECT id FROM medallion.trusted.customers ORDER BY id").to_pylist()
    assert rows == [{"id": 1}, {"id": 2}]
    assert catalog.sql('SELECT count(*) AS n FROM medallion.refined."it\'s quoted"').to_pylist() == [{"n": 1}]


def test_an_unknown_table_is_an_error_naming_it(settings, lake, embedded):
    _write(lake, embedded, "trusted", "customers", [{"id": 1, "email": "a@x"}])
    build_catalog(settings).register("trusted", "customers", schema=SCHEMA, entry=TableEntry("people", "crm"))
    with pytest.raises(Exception, match="nope"):
        build_catalog(settings).sql("SELECT * FROM medallion.trusted.nope")


def test_concurrent_registrations_lose_no_entry(settings):
    catalog = build_catalog(settings)
    names = [f"t{i}" for i in range(20)]
    threads = [
        threading.Thread(
            target=catalog.register, args=("raw", n), kwargs={"schema": SCHEMA, "entry": TableEntry("d", "o")}
        )
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(catalog.entries()) == {f"medallion.raw.{n}" for n in names}
