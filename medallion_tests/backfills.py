"""A fresh lake served by `medallion ui` (webserver + daemon), and what its backfills did, read over GraphQL.

Used by the browser test of "Materialize all" (`ui/test_materialize_all.py`), which launches the backfill the
way a user does and reads its outcome over the same GraphQL the UI uses. The lake is a new user's: `medallion generate`
writes landing files that nothing has ingested yet; with `sensors="stopped"` the three sensors are
stopped (`dagster sensor stop`) before the daemon starts, with `sensors="racing"` they run and ingest the
files while the backfill starts.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from medallion_tests.servers import Server, free_port, wait_for_http

__all__ = ["SENSORS", "Served", "backfill_outcome", "serve_fresh_lake"]

ROOT = Path(__file__).resolve().parents[1]
SENSORS = ("landing_sensor", "refined_touched_dates", "default_automation_condition_sensor")
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
"""Final backfill statuses (FAILING and CANCELING still have runs going)."""


@dataclass
class Served:
    """The served UI: its base URL, GraphQL, and the server's log."""

    base: str
    server: Server
    data_dir: Path
    started: float = field(default_factory=time.time)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self) -> list[dict]:
        data = self.graphql(
            "{ runsOrError(limit: 500) { ... on Runs { results { runId status jobName startTime "
            "tags { key value } } } } }"
        )
        return data["runsOrError"]["results"]

    def failures(self) -> dict[str, list[str]]:
        """Each failed run's job and id, with the error messages of its failed steps and of the run."""
        query = (
            "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename "
            "... on ExecutionStepFailureEvent { stepKey error { message stack } } "
            "... on RunFailureEvent { message } } } } }"
        )
        failed = {}
        for run in (r for r in self.runs() if r["status"] == "FAILURE"):
            events = self.graphql(query, {"id": run["runId"]})["logsForRun"].get("events", [])
            failed[f"{run['jobName']} {run['runId']}"] = [
                f"{e['stepKey']}: {e['error']['message']}{''.join(e['error']['stack'][-3:])}"
                if e["__typename"] == "ExecutionStepFailureEvent"
                else e["message"]
                for e in events
                if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")
            ]
        return failed

    def sensor_runs(self, sensor: str) -> list[dict]:
        tag = {"key": "dagster/sensor_name", "value": sensor}
        return [r for r in self.runs() if tag in r["tags"]]

    def asset_keys(self) -> list[list[str]]:
        return [n["assetKey"]["path"] for n in self.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]]

    def backfills(self) -> list[dict]:
        return self.graphql(
            "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status timestamp } } } }"
        )["partitionBackfillsOrError"]["results"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> str:
        """The backfill's final status (bounded wait)."""
        query = (
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"
        )
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            status = self.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]["status"]
            if status in FINISHED:
                return status
            time.sleep(2)
        raise AssertionError(f"backfill {backfill_id} still {status} after {timeout} s:\n{self.server.tail()}")

    def wait_until_idle(self, timeout: float) -> None:
        """Until no run is queued or going (the sensors' runs included)."""
        busy = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "MANAGED"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            going = [r for r in self.runs() if r["status"] in busy]
            if not going:
                return
            time.sleep(2)
        raise AssertionError(f"runs still going after {timeout} s: {going}")


class GraphQL(Protocol):
    def graphql(self, query: str) -> dict: ...


def backfill_outcome(served: GraphQL, backfill_id: str) -> dict[str, str]:
    """Per asset of the code location: "ok", or what the user would see missing: "never materialized" (the
    catalog), "not materialized by the backfill" or "12/36 partitions materialized" (the backfill's page)."""
    nodes = served.graphql("{ assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }")
    outcome = {
        "/".join(n["assetKey"]["path"]): "ok" if n["assetMaterializations"] else "never materialized"
        for n in nodes["assetNodes"]
    }
    statuses = served.graphql(
        f"{{ partitionBackfillOrError(backfillId: {json.dumps(backfill_id)}) {{ ... on PartitionBackfill {{ "
        "assetBackfillData { assetBackfillStatuses { "
        "... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted numPartitionsMaterialized } "
        "... on UnpartitionedAssetStatus { assetKey { path } materialized } } } } } }"
    )["partitionBackfillOrError"]["assetBackfillData"]["assetBackfillStatuses"]
    for status in statuses:
        name = "/".join(status["assetKey"]["path"])
        if outcome.get(name, "ok") != "ok":
            continue
        if "numPartitionsTargeted" in status:
            done, targeted = status["numPartitionsMaterialized"], status["numPartitionsTargeted"]
            outcome[name] = "ok" if done == targeted else f"{done}/{targeted} partitions materialized"
        else:
            outcome[name] = "ok" if status["materialized"] else "not materialized by the backfill"
    return outcome


@contextmanager
def serve_fresh_lake(
    root: Path, *, sensors: Literal["stopped", "racing"], orders: int = 100, days: int = 2
) -> Iterator[Served]:
    """Generated landing files (nothing ingested), then `medallion ui` on a free port; stopped afterwards.
    Two days of events: several landing partitions per source, a few dozen landing objects."""
    data_dir, home = root / "data", root / "dagster_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DAGSTER_"))}
    env |= {
        "DAGSTER_HOME": str(home),
        "MEDALLION_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    }
    cli = [sys.executable, "-m", "medallion_platform.cli", "--data-dir", str(data_dir)]
    generated = subprocess.run(
        [*cli, "generate", "--orders", str(orders), "--days", str(days)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    subprocess.run(
        [sys.executable, "-m", "medallion_platform.run.instance", str(home)], env=env, check=True, timeout=120
    )
    if sensors == "stopped":  # as `dagster sensor stop` would, before the daemon's first tick
        dagster = str(Path(sys.executable).parent / "dagster")
        for name in SENSORS:
            stop = subprocess.run(
                [dagster, "sensor", "stop", name, "-w", str(ROOT / "workspace.yaml")],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert stop.returncode == 0, stop.stdout + stop.stderr
    port = free_port()
    server = Server([*cli, "ui", "--port", str(port)], log=root / "dagster-dev.log", env=env, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/server_info", timeout=120, server=server)
        served = Served(base, server, data_dir)
        _wait_for_code_location(served)
        yield served
    finally:
        server.stop()


def _wait_for_code_location(served: Served, timeout: float = 120) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = served.graphql(query)["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            return
        time.sleep(1)
    raise AssertionError(f"the code location did not load within {timeout} s:\n{served.server.tail()}")
