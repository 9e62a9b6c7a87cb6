"""Contracts load, and a malformed contract fails at load time naming the file, the field and the problem."""

from pathlib import Path

import pytest
import yaml

from medallion_platform.contracts import (
    CONTRACTS_DIR,
    CONTRACTS_DIR_VARIABLE,
    ContractError,
    contracts_dir,
    load_contract,
    load_contracts,
)


def test_packaged_contracts_load_with_their_rules():
    contracts = load_contracts()
    assert set(contracts) == {"order_events", "customers", "products", "payments"}
    events = contracts["order_events"]
    assert events.source.kind == "stream" and events.source.format == "jsonl"
    assert events.primary_key == ["event_id"]
    assert events.partition.column == "event_date"
    assert events.column("quantity").min == 1
    assert events.column("currency").allowed == ["EUR", "USD", "GBP"]
    assert events.column("unit_price").decimal == (12, 2)
    customers = contracts["customers"]
    assert customers.pii == ["name", "email"]
    assert customers.trusted_write.mode == "merge"
    assert customers.trusted_write.when_matched == "update_if_newer"


def _broken(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((CONTRACTS_DIR / "order_events.yaml").read_text())
    mutate(data)
    path = tmp_path / "order_events.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set_column(name, **values):
    def mutate(data):
        for col in data["columns"]:
            if col["name"] == name:
                col.update(values)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (_set_column("quantity", type="int32"), "columns[4].type", "unknown type 'int32'"),
        (_set_column("event_id", regex="([a-z"), "columns[0].regex", "regex does not compile"),
        (_set_column("currency", min=0), "columns[6]", "min/max apply to numeric columns"),
        (lambda d: d.update(primary_key=["order_number"]), "primary_key", "names unknown columns ['order_number']"),
        (lambda d: d.pop("owner"), "owner", "Field required"),
        (lambda d: d["source"].update(kind="ftp"), "source.kind", "Input should be 'stream' or 'batch'"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs are not permitted"),
        (lambda d: d["freshness"].update(warn_after="6h", fail_after="2h"), "freshness", "warn_after must be shorter"),
        (lambda d: d["freshness"].update(warn_after="soon"), "freshness.warn_after", "is not a duration"),
        (lambda d: d["source"].update(landing_prefix="landing/orders/"), "source.landing_prefix", "must be 'landing/"),
        (
            lambda d: d.update(name="orders", source={**d["source"], "landing_prefix": "landing/orders/"}),
            "name",
            "must match the file name",
        ),
        (_set_column("quantity", min=10, max=5), "columns[4]", "min (10.0) is greater than max (5.0)"),
    ],
)
def test_malformed_contract_names_file_field_and_problem(tmp_path, mutate, field, message):
    path = _broken(tmp_path, mutate)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    text = str(info.value)
    assert str(path) in text
    assert any(f == field and message in m for f, m in info.value.problems), text


def test_yaml_syntax_error_is_reported_with_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ncolumns: [unclosed\n")
    with pytest.raises(ContractError, match=r"broken\.yaml") as info:
        load_contract(path)
    assert info.value.problems[0][0] == "<yaml>"


def test_adding_a_source_is_one_yaml_file(tmp_path):
    data = yaml.safe_load((CONTRACTS_DIR / "products.yaml").read_text())
    data.update(name="suppliers", source={**data["source"], "landing_prefix": "landing/suppliers/"})
    (tmp_path / "suppliers.yaml").write_text(yaml.safe_dump(data))
    assert list(load_contracts(tmp_path)) == ["suppliers"]


def test_the_user_s_contracts_folder_drives_the_definitions(tmp_path, monkeypatch):
    """`MEDALLION_CONTRACTS_DIR` (the user's repository): the loader, and so the Dagster definitions, read it."""
    from medallion_platform.definitions import build_definitions

    folder = tmp_path / "contracts"
    folder.mkdir()
    for path in CONTRACTS_DIR.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    data = yaml.safe_load((CONTRACTS_DIR / "products.yaml").read_text())
    data.update(name="suppliers", source={**data["source"], "landing_prefix": "landing/suppliers/"})
    (folder / "suppliers.yaml").write_text(yaml.safe_dump(data))
    suppliers = {("raw", "suppliers"), ("trusted", "suppliers"), ("trusted", "suppliers_quarantine")}

    monkeypatch.delenv(CONTRACTS_DIR_VARIABLE, raising=False)
    assert contracts_dir() == CONTRACTS_DIR and "suppliers" not in load_contracts()
    keys = {tuple(k.path) for k in build_definitions().resolve_asset_graph().get_all_asset_keys()}
    assert not suppliers & keys

    monkeypatch.setenv(CONTRACTS_DIR_VARIABLE, str(folder))
    assert contracts_dir() == folder.resolve() and "suppliers" in load_contracts()
    keys = {tuple(k.path) for k in build_definitions().resolve_asset_graph().get_all_asset_keys()}
    assert suppliers <= keys
