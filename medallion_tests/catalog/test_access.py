"""Masks and row filters from the contract, locally: `medallion sql` reads trusted customers (and its quarantine)
as the configured principal sees them: an analyst of one region sees only that region's rows with personal data
redacted, a PII reader sees everything in clear."""

import pytest
from deltalake import write_deltalake

from medallion_platform.catalog import EmbeddedCatalog
from medallion_platform.cli.main import main
from medallion_platform.lake.schema import trusted_schema
from medallion_platform.zones.entries import source_entries
from medallion_tests.catalog.access_cases import EXPECTED, customers_table, seen_by


@pytest.mark.parametrize(("reader", "groups"), list(EXPECTED), ids=[r for r, _ in EXPECTED])
def test_masks_and_filters_hold_for_analysts_and_lift_for_pii_readers(settings, contracts, reader, groups):
    contract = contracts["customers"]
    write_deltalake(settings.table_uri("trusted", "customers"), customers_table(contract))
    entry = source_entries(contract, settings.platform_principal)["trusted"]
    EmbeddedCatalog(settings).register("trusted", "customers", schema=trusted_schema(contract), entry=entry)
    as_reader = settings.model_copy(update={"principal": reader, "principal_groups": groups})
    assert seen_by(EmbeddedCatalog(as_reader)) == EXPECTED[(reader, groups)]


def test_medallion_sql_reads_as_the_configured_principal(settings, contracts, monkeypatch, capsys):
    contract = contracts["customers"]
    write_deltalake(settings.table_uri("trusted", "customers"), customers_table(contract))
    entry = source_entries(contract, settings.platform_principal)["trusted"]
    EmbeddedCatalog(settings).register("trusted", "customers", schema=trusted_schema(contract), entry=entry)
    monkeypatch.setenv("MEDALLION_PRINCIPAL", "ann")
    monkeypatch.setenv("MEDALLION_PRINCIPAL_GROUPS", "analysts-uk, other")
    query = "SELECT name, country FROM medallion.trusted.customers"
    assert main(["--data-dir", str(settings.data_dir), "sql", query]) == 0
    out = capsys.readouterr().out
    assert "[redacted]  GB" in out and "(1 rows)" in out and "Ben" not in out


def test_the_quarantine_is_filtered_as_its_trusted_table(contracts, settings):
    entries = source_entries(contracts["customers"], settings.platform_principal)
    assert entries["quarantine"].access == entries["trusted"].access is not None
    assert source_entries(contracts["order_events"], settings.platform_principal)["trusted"].access is None
