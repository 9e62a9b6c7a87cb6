"""`medallion contracts check`: prepared contract changes classified against a deployed lake and a git ref,
with the trusted rows a tightened rule would quarantine and the refined columns each change reaches."""

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from medallion_platform.cli.main import main
from medallion_platform.contracts import CONTRACTS_DIR
from medallion_platform.zones.compat_check import EXIT_REFUSED, EXIT_SEMANTIC
from medallion_platform.zones.flow import ingest_and_promote
from medallion_tests.helpers import land


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture
def deployed(settings, lake, contracts, embedded, monkeypatch) -> Path:
    """A lake whose trusted customers holds 3 rows written under the packaged contract."""
    monkeypatch.setenv("MEDALLION_ENV", "local")
    monkeypatch.delenv("MEDALLION_CONTRACTS_DIR", raising=False)
    land(
        settings,
        "customers",
        "2026/11/01/a.csv",
        "customer_id,name,email,country,segment,updated_at\n"
        "cus-000001,Ann,a@x.io,DE,smb,2026-11-01T10:00:00Z\n"
        "cus-000002,Bob,b@x.io,FR,consumer,2026-11-01T10:00:00Z\n"
        "cus-000003,Cy,c@x.io,GB,consumer,2026-11-01T10:00:00Z\n",
    )
    ingest_and_promote(lake, embedded, contracts["customers"])
    return settings.data_dir


def _working_tree(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "customers.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _column(data: dict, name: str) -> dict:
    return next(c for c in data["columns"] if c["name"] == name)


def _additive_and_semantic(data: dict) -> None:
    data["columns"].append({"name": "phone", "type": "string"})
    _column(data, "segment")["allowed"] = ["smb", "enterprise"]  # two stored customers are `consumer`


def test_unchanged_contracts_are_compatible(deployed, tmp_path):
    code, out = _run("--data-dir", str(deployed), "contracts", "check", "--contracts", str(_working_tree(tmp_path, id)))
    assert code == 0
    assert out.splitlines()[0].startswith("contracts check against the lake at ") and ": compatible: 4 datasets" in out


def test_additive_and_tightened_changes_need_review(deployed, tmp_path):
    folder = _working_tree(tmp_path, _additive_and_semantic)
    code, out = _run("--data-dir", str(deployed), "contracts", "check", "--contracts", str(folder), "--json")
    assert code == EXIT_SEMANTIC == 3
    report = json.loads(out)
    found = {(c["dataset"], c["kind"], c["what"], c["column"]): c for c in report["changes"]}
    assert set(found) == {
        ("customers", "additive", "column_added", "phone"),
        ("customers", "semantic", "rule_tightened", "segment"),
    }
    tightened = found[("customers", "semantic", "rule_tightened", "segment")]
    assert tightened["affected_rows"] == 2
    assert tightened["reaches"] == ["customer_lifetime.segment"]
    assert found[("customers", "additive", "column_added", "phone")]["reaches"] == []
    assert "review" in report["summary"] and "2 trusted rows would be quarantined" in report["summary"]


def test_a_removed_column_is_refused_with_the_refined_columns_it_reaches(deployed, tmp_path):
    def edit(data: dict) -> None:
        _additive_and_semantic(data)
        data["columns"] = [c for c in data["columns"] if c["name"] != "country"]
        data["access"].pop("row_filter")  # both name the column: a contract naming a missing column does not load
        data["history"]["track"].remove("country")

    code, out = _run(
        "--data-dir", str(deployed), "contracts", "check", "--contracts", str(_working_tree(tmp_path, edit))
    )
    assert code == EXIT_REFUSED == 4
    summary, header, *rows = out.splitlines()
    assert "REFUSED" in summary and "1 breaking (0 with a migration)" in summary
    assert header.split() == ["dataset", "kind", "change", "column", "rows", "reaches", "detail"]
    removed = next(r for r in rows if "column_removed" in r)
    assert "breaking (refused)" in removed
    assert "daily_revenue.country,customer_lifetime.country" in removed
    assert "way forward:" in removed


def test_against_a_git_ref(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDALLION_ENV", "local")
    repo = tmp_path / "repo"
    folder = _working_tree(repo, lambda data: None)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "contracts")
    data = yaml.safe_load((folder / "customers.yaml").read_text())
    data["primary_key"] = ["email"]
    (folder / "customers.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    argv = ["--data-dir", str(tmp_path / "none"), "contracts", "check", "--contracts", str(folder)]
    code, out = _run(*argv, "--against", "git:HEAD", "--json")
    assert code == EXIT_REFUSED
    [change] = json.loads(out)["changes"]
    assert (change["what"], change["refused"]) == ("key_changed", True)
    assert change["reaches"] == ["daily_revenue.country", "customer_lifetime.country", "customer_lifetime.segment"]
    code, _ = _run(*argv, "--against", "git:no-such-ref")
    assert code == 2
