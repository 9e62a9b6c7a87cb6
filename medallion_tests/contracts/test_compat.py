"""Contract changes classified (`contracts/compat.py`): each breaking kind named with its way forward."""

import pytest

from medallion_platform.contracts import Column, Contract, load_contracts
from medallion_platform.contracts.compat import breaking_problems, diff_contracts


@pytest.fixture(scope="module")
def customers() -> Contract:
    return load_contracts()["customers"]


def _columns(contract: Contract, *, drop: str = "", replace: Column | None = None, add: Column | None = None):
    columns = [c for c in contract.columns if c.name != drop]
    if replace is not None:
        columns = [replace if c.name == replace.name else c for c in columns]
    return columns + ([add] if add else [])


def _changed(contract: Contract, **update) -> list[tuple[str, str, str | None]]:
    return [(c.kind, c.what, c.column) for c in diff_contracts(contract, contract.model_copy(update=update))]


def test_nothing_changed_is_no_change(customers):
    assert diff_contracts(customers, customers) == []


def test_additive_changes(customers):
    phone = Column(name="phone", type="string")
    assert _changed(customers, columns=_columns(customers, add=phone)) == [("additive", "column_added", "phone")]
    wider = customers.column("segment").model_copy(update={"allowed": ["consumer", "smb", "enterprise", "public"]})
    assert _changed(customers, columns=_columns(customers, replace=wider)) == [("additive", "rule_relaxed", "segment")]


@pytest.mark.parametrize(
    ("change", "what", "message"),
    [
        ("removed", "column_removed", "column 'country' removed"),
        ("narrowed", "type_narrowed", "type timestamp -> date narrows it"),
        ("required", "required_column_added", "new column 'phone' is required"),
        ("renamed", "column_removed", "to rename it, add `renamed_from: name` to the new column"),
        ("key", "key_changed", "['customer_id'] -> ['email']"),
    ],
)
def test_each_breaking_kind_is_refused_with_its_message(customers, change, what, message):
    base = customers
    new = {
        "removed": lambda: base.model_copy(update={"columns": _columns(base, drop="country")}),
        "narrowed": lambda: base.model_copy(
            update={"columns": _columns(base, replace=base.column("updated_at").model_copy(update={"type": "date"}))}
        ),
        "required": lambda: base.model_copy(
            update={"columns": _columns(base, add=Column(name="phone", type="string", required=True))}
        ),
        "renamed": lambda: base.model_copy(
            update={
                "columns": [c.model_copy(update={"name": "full_name"}) if c.name == "name" else c for c in base.columns]
            }
        ),
        "key": lambda: base.model_copy(update={"primary_key": ["email"]}),
    }[change]()
    changes = diff_contracts(base, new)
    refused = [c for c in changes if c.refused]
    assert what in [c.what for c in refused]
    problems = breaking_problems(changes)
    assert any(message in text and "way forward:" in text for _, text in problems), problems


def test_a_declared_rename_is_a_migration_not_a_refusal(customers):
    renamed = [
        c.model_copy(update={"name": "full_name", "renamed_from": "name"}) if c.name == "name" else c
        for c in customers.columns
    ]
    changes = diff_contracts(
        customers, customers.model_copy(update={"columns": renamed, "pii": ["full_name", "email"]})
    )
    assert [(c.what, c.migration, c.refused) for c in changes if c.kind == "breaking"] == [
        ("column_renamed", "rename", False)
    ]
    assert breaking_problems(changes) == []


def test_tightened_rules_are_semantic(customers):
    tighter = customers.column("country").model_copy(update={"allowed": ["DE"], "regex": None})
    widened_type = customers.column("country").model_copy(update={"type": "string"})
    assert _changed(customers, columns=_columns(customers, replace=tighter))[0][:2] == ("semantic", "rule_tightened")
    assert _changed(customers, columns=_columns(customers, replace=widened_type)) == []


def test_renamed_from_must_not_name_a_kept_column(customers):
    data = customers.model_dump()
    data["columns"][1]["renamed_from"] = "email"
    with pytest.raises(ValueError, match="renamed_from names a column the contract still has"):
        Contract.model_validate(data)
