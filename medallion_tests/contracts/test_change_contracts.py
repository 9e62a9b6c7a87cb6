"""A contract's `changes` and `history`: what a change source and a history must declare, refused with the field."""

from pathlib import Path

import pytest
import yaml

from medallion_platform.contracts import CONTRACTS_DIR, ContractError, load_contract, load_contracts


def test_the_payments_change_source_and_the_customer_history_load():
    contracts = load_contracts()
    payments, customers = contracts["payments"], contracts["customers"]
    assert payments.changes is not None and payments.changes.sequence_by == ["committed_at", "lsn"]
    assert payments.changes.operation.delete == ["d"]
    assert [(o.column, o.direction) for o in payments.row_order] == [("committed_at", "desc"), ("lsn", "desc")]
    assert payments.history is not None and payments.history.built_from == "changes"
    assert customers.history is not None and customers.history.built_from == "snapshots"
    assert customers.row_order == customers.dedup_order


def _payments(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((CONTRACTS_DIR / "payments.yaml").read_text())
    mutate(data)
    path = tmp_path / "payments.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (
            lambda d: d["changes"]["operation"].update(column="kind"),
            "changes.operation.column",
            "unknown column 'kind'",
        ),
        (lambda d: d["changes"]["operation"].update(delete=["x"]), "changes.operation", "must be allowed by 'op'"),
        (lambda d: d["changes"]["operation"].update(update=["c"]), "changes.operation", "more than one operation"),
        (
            lambda d: d["changes"].update(sequence_by=["seen"]),
            "changes.sequence_by",
            "'seen' must be a required column",
        ),
        (lambda d: d["changes"].update(deletes="maybe"), "changes.deletes", "'soft' or 'hard'"),
        (lambda d: d["trusted_write"].update(when_matched="update"), "trusted_write", "newest-wins"),
        (
            lambda d: d["trusted_write"].update(newer_column="lsn"),
            "trusted_write.newer_column",
            "must be 'committed_at'",
        ),
        (lambda d: d.update(dedup_order=[{"column": "lsn"}]), "dedup_order", "ordered by changes.sequence_by"),
        (lambda d: d["history"].update(valid_from="lsn"), "history.valid_from", "must be a timestamp column"),
        (lambda d: d["history"].update(built_from="snapshots"), "history.built_from", "needs a batch source"),
        (lambda d: d["history"].update(track=["colour"]), "history.track", "unknown columns ['colour']"),
        (lambda d: d.pop("changes"), "history.built_from", "'changes' needs the contract's changes"),
    ],
)
def test_a_bad_change_or_history_declaration_names_the_field(tmp_path, mutate, field, message):
    path = _payments(tmp_path, mutate)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert any(f == field and message in m for f, m in info.value.problems), str(info.value)
