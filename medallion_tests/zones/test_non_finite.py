"""Non-finite numbers are bad values: 'NaN', 'Infinity', '-Infinity' (and '1e999', which overflows to infinity)
in a numeric column fail its `type` rule on every engine, so they never reach trusted to defeat min/max."""

import pyarrow as pa
import pytest

from medallion_platform.contracts import Contract
from medallion_platform.zones.pii import PiiHasher
from medallion_platform.zones.trusted import transform

NON_FINITE = ["NaN", "nan", "Infinity", "-Infinity", "inf", "-Inf", "1e999", " NaN "]


def _contract() -> Contract:
    return Contract.model_validate(
        {
            "name": "readings",
            "description": "Meter readings.",
            "owner": "team:meters",
            "source": {"kind": "stream", "format": "jsonl", "landing_prefix": "landing/readings/"},
            "columns": [
                {"name": "reading_id", "type": "string", "required": True},
                {"name": "value", "type": "double", "min": 0, "max": 1000},
                {"name": "price", "type": "decimal(12,2)"},
            ],
            "primary_key": ["reading_id"],
            "freshness": {"warn_after": "1h", "fail_after": "2h"},
            "trusted_write": {"mode": "merge"},
        }
    )


def _raw() -> pa.Table:
    rows = [(f"v{i}", bad, "1.00") for i, bad in enumerate(NON_FINITE)]
    rows += [(f"p{i}", "2.5", bad) for i, bad in enumerate(NON_FINITE)]
    rows += [("ok1", "999.5", "3.10"), ("ok2", "0", None), ("ok3", "1e2", "-0.0")]
    n = len(rows)
    return pa.table(
        {
            "reading_id": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "_parse_error": pa.nulls(n, pa.string()),
            "_raw_record": pa.nulls(n, pa.string()),
            "_source_file": ["landing/readings/2026/11/01/a.jsonl"] * n,
            "_source_line": list(range(1, n + 1)),
            "_ingested_at": pa.array([0] * n, pa.timestamp("us", tz="UTC")),
            "_batch_seq": [1] * n,
            "_landing_date": ["2026-11-01"] * n,
        }
    )


def _check(engine) -> None:
    trusted, quarantine, valid = transform(engine, _raw(), _contract(), PiiHasher("k"))
    assert sorted(trusted.column("reading_id").to_pylist()) == ["ok1", "ok2", "ok3"]
    assert valid == 3
    failed = {r["reading_id"]: (r["_rule"], r["_column"], r["_raw_value"]) for r in quarantine.to_pylist()}
    for i, bad in enumerate(NON_FINITE):
        assert failed[f"v{i}"] == ("type", "value", bad)
        assert failed[f"p{i}"] == ("type", "price", bad)
    assert len(failed) == 2 * len(NON_FINITE)


def test_non_finite_numbers_fail_the_type_rule_embedded(embedded):
    _check(embedded)


@pytest.mark.spark
def test_non_finite_numbers_fail_the_type_rule_spark(spark_engine):
    _check(spark_engine)
