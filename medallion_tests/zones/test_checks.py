"""The blocking contract checks fail when trusted breaks a rule, one case per rule, and the
reconciliation fails when any one of its terms is off."""

import dataclasses
import datetime as dt
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest

from medallion_platform.defs.checks.trusted import contract_check_results
from medallion_platform.lake.delta_io import WriteResult
from medallion_platform.lake.schema import trusted_schema
from medallion_platform.zones.trusted import PromoteResult, Promotion, Tally

KEY = dg.AssetKey(["trusted", "order_events"])


def _row(n: int, **overrides) -> dict:
    when = dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    row = {
        "event_id": f"evt-{n:016x}",
        "order_id": f"ord-{n:08d}",
        "customer_id": "cus-000001",
        "product_id": "prd-00001",
        "quantity": 1,
        "unit_price": Decimal("10.00"),
        "currency": "EUR",
        "status": "placed",
        "event_time": when,
        "event_date": when.date(),
        "_source_file": "landing/order_events/2026/11/01/10/a",
        "_source_line": n,
        "_ingested_at": when,
        "_batch_seq": 0,
        "_landing_date": "2026-11-01",
    }
    row.update(overrides)
    return row


def _results(lake, contract, rows: list[dict]) -> dict[str, dg.AssetCheckResult]:
    schema = pa.schema([f.with_nullable(True) for f in trusted_schema(contract)])
    lake.trusted(contract.name).append(pa.Table.from_pylist(rows, schema=schema), partition_by=["event_date"])
    results = contract_check_results(
        lake.trusted(contract.name), contract, KEY, reconciled=True, reconciliation={}, partitions=["2026-11-01"]
    )
    return {str(r.check_name): r for r in results}


BREACHES = {
    "key_unique": [_row(1), _row(1, _source_line=2)],
    "required_present": [_row(1), _row(2, customer_id=None)],
    "values_in_range": [_row(1), _row(2, quantity=0)],
    "values_allowed": [_row(1), _row(2, currency="JPY")],
    "values_match_pattern": [_row(1), _row(2, order_id="order-2")],
}


@pytest.mark.parametrize("check", sorted(BREACHES))
def test_each_contract_check_fails_on_its_breach_and_only_it(lake, contracts, check):
    results = _results(lake, contracts["order_events"], BREACHES[check])
    failed = sorted(name for name, r in results.items() if not r.passed)
    assert failed == [check]
    assert results[check].metadata["violations"].value == 1


def test_a_year_outside_the_valid_years_breaks_values_in_range(lake, contracts):
    far = dt.datetime(2150, 1, 1, tzinfo=dt.UTC)
    results = _results(
        lake, contracts["order_events"], [_row(1), _row(2, event_time=far, event_date=dt.date(2026, 11, 1))]
    )
    assert not results["values_in_range"].passed and results["key_unique"].passed


def test_clean_rows_pass_every_check(lake, contracts):
    assert all(r.passed for r in _results(lake, contracts["order_events"], [_row(1), _row(2)]).values())


BALANCED = PromoteResult(
    dataset="order_events", raw_rows=20, inserted=10, updated=2, in_batch_duplicates=3, redeliveries=1, quarantined=4
)
TERMS = ("raw_rows", "inserted", "updated", "in_batch_duplicates", "redeliveries", "quarantined")


@pytest.mark.parametrize("term", TERMS)
def test_the_reconciliation_check_fails_when_any_one_term_is_off(lake, contracts, term):
    assert BALANCED.reconciled
    broken = dataclasses.replace(BALANCED, **{term: getattr(BALANCED, term) + 1})
    check = contract_check_results(
        lake.trusted("order_events"),
        contracts["order_events"],
        KEY,
        reconciled=broken.reconciled,
        reconciliation=broken.as_metadata(),
    )[0]
    assert check.check_name == "reconciliation" and check.passed is False
    assert check.metadata[term].value == getattr(broken, term)


def _promotion(contract, written: WriteResult, **tally) -> Promotion:
    counts = {"raw_rows": 10, "valid_rows": 8, "distinct_keys": 7, "matched_keys": 2, "by_rule": {"type": 2}}
    counts.update(tally)
    plan = Promotion(
        contract=contract,
        tally=Tally(batches={("2026-11-01", 0)}, touched=["2026-11-01"], **counts),
        built_from_batch=True,
        quarantine=None,  # type: ignore[arg-type]
        trusted=None,  # type: ignore[arg-type]
        all_quarantine_scopes=True,
    )
    plan.quarantine = _written(WriteResult(version=1, inserted=2, source_rows=2))
    plan.trusted = _written(written)
    return plan


def _written(result: WriteResult):
    class Written:
        def written(self) -> WriteResult:
            return result

    return Written()


def test_a_write_that_inserts_a_matched_key_or_loses_a_row_breaks_the_reconciliation(contracts):
    contract = contracts["order_events"]
    # 7 distinct keys, 2 already in trusted: a correct insert-only MERGE inserts 5
    assert _promotion(contract, WriteResult(version=2, inserted=5)).result().reconciled
    assert not _promotion(contract, WriteResult(version=2, inserted=6)).result().reconciled  # a re-delivery inserted
    assert not _promotion(contract, WriteResult(version=2, inserted=4)).result().reconciled  # a row lost
    # a dedup that kept a duplicate: the write sees 8 rows for 7 keys and inserts 6
    assert not _promotion(contract, WriteResult(version=2, inserted=6, source_rows=8)).result().reconciled
    # quarantine wrote fewer rows than the rules failed
    plan = _promotion(contract, WriteResult(version=2, inserted=5))
    plan.quarantine = _written(WriteResult(version=1, inserted=1, source_rows=1))
    assert not plan.result().reconciled
