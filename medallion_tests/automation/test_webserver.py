"""The Dagster UI serves the code location: assets, groups and checks, over its own GraphQL API.

Starts the real webserver on a free 127.0.0.1 port against workspace.yaml and stops it afterwards.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUERY = """{ assetNodes { assetKey { path } groupName hasAssetChecks
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    port = _free_port()
    home = tmp_path_factory.mktemp("dagster_home")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "MEDALLION_DATA_DIR": str(home / "data")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    deadline = time.monotonic() + 60
    while True:  # the code location may still be loading
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        if body.get("data", {}).get("assetNodes") or time.monotonic() > deadline:
            return body
        time.sleep(1)


def test_ui_lists_every_asset_by_zone_with_blocking_checks(webserver):
    body = _graphql(webserver, QUERY)
    nodes = {tuple(n["assetKey"]["path"]): n for n in body["data"]["assetNodes"]}
    raw = {("raw", "order_events"), ("raw", "customers"), ("raw", "products"), ("raw", "payments")}
    assert {k for k in nodes if k[0] == "raw"} == raw
    assert ("refined", "daily_revenue") in nodes and ("trusted", "order_events_quarantine") in nodes
    assert all(n["groupName"] == key[0] for key, n in nodes.items())
    checks = nodes[("trusted", "order_events")]["assetChecksOrError"]["checks"]
    contract_checks = [c for c in checks if not c["name"].startswith(("quarantine_rate_", "volume"))]
    assert {c["name"] for c in contract_checks} >= {"reconciliation", "key_unique"}
    assert all(c["blocking"] for c in contract_checks)
    # the quality anomaly checks warn and never block (zones/quality.py)
    quality = [c for c in checks if c not in contract_checks]
    assert {c["name"] for c in quality} >= {"volume", "quarantine_rate_allowed"}
    assert not [c for c in quality if c["blocking"]]
