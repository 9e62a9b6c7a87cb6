"""The Dagster UI in a real browser (headless Chromium driven by Playwright), as a new user meets it.

After `medallion demo --orders 100 --days 2` in a fresh data directory, `medallion ui` serves `dagster dev` on
127.0.0.1 with a fresh instance. The tests then follow the README's first hour: the lineage with its three
zone groups and every asset, a trusted asset with its checks passed, row count and Delta version, the
automation page with the sensors running, "Materialize all" launched from the UI with every run it starts
succeeding, and no run of the sensors failing. Screenshots go to `.artifacts/ui/` (git-ignored); a failure
quotes the text the page shows (the run's error, a toast, the dialog).

Chromium comes from Debian (`.ci/run` installs it); Playwright drives it through `executable_path`, so no
browser is downloaded. Without Chromium or Playwright the tests skip, except in CI, where they fail.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from medallion_tests.backfills import backfill_outcome
from medallion_tests.servers import Server, free_port, wait_for_http

pytestmark = [pytest.mark.ui, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".artifacts" / "ui"
ZONES = {
    "raw": ["customers", "order_events", "payments", "products"],
    "trusted": [
        "customers",
        "customers_history",
        "customers_quarantine",
        "order_events",
        "order_events_quarantine",
        "payments",
        "payments_history",
        "payments_quarantine",
        "products",
        "products_quarantine",
    ],
    "refined": [
        "customer_lifetime",
        "daily_revenue",
        "daily_revenue_notebook",
        "product_performance",
        "segment_revenue",
    ],
}
CHECKS = (
    "key_unique",
    "reconciliation",
    "required_present",
    "values_allowed",
    "values_in_range",
    "values_match_pattern",
)
SENSORS = ("landing_sensor", "refined_touched_dates", "default_automation_condition_sensor")
RUN_WAIT_S = 150
"""How long every run "Materialize all" starts may take, all together (about 40 s on 2 cores)."""


def _chromium() -> str | None:
    return shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


class Ui:
    """The served UI: its base URL, GraphQL for bounded waits, and the server's log."""

    def __init__(self, base: str, server: Server, summary: dict[str, tuple[int, int]]) -> None:
        self.base = base
        self.server = server
        self.summary = summary
        self.started = time.time()

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self) -> list[dict]:
        data = self.graphql(
            "{ runsOrError(limit: 200) { ... on Runs { results { runId status jobName startTime "
            "tags { key value } } } } }"
        )
        return data["runsOrError"]["results"]


def _summary(printed: str) -> dict[str, tuple[int, int]]:
    """The demo's `table rows quarantined version location` lines → {table: (rows, version)}."""
    rows = re.findall(r"^(medallion\.\S+)\s+(\d+)\s+\S+\s+(\d+)\s+\S+$", printed, flags=re.M)
    return {name: (int(n), int(v)) for name, n, v in rows}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """A small demo, then `medallion ui` on a free port with a fresh Dagster home; stopped afterwards."""
    if _chromium() is None:
        _unavailable("Chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright", reason="Playwright is not installed (pip install the dev extra)")
    root = tmp_path_factory.mktemp("ui")
    data_dir, home = root / "data", root / "dagster_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "medallion_platform.cli", "--data-dir", str(data_dir)]
    demo = subprocess.run(
        [*cli, "demo", "--orders", "100", "--days", "2"], env=env, capture_output=True, text=True, timeout=240
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    port = free_port()
    server = Server([*cli, "ui", "--port", str(port)], log=root / "dagster-dev.log", env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/server_info", timeout=120, server=server)
        served = Ui(base, server, _summary(demo.stdout))
        _wait_for_code_location(served)
        yield served
    finally:
        server.stop()


def _wait_for_code_location(ui: Ui, timeout: float = 120) -> None:
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = ui.graphql(query)["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [
                e["locationOrLoadError"]
                for e in entries
                if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
            ]
            assert not errors, errors
            return
        time.sleep(1)
    raise AssertionError(f"the code location did not load within {timeout} s:\n{ui.server.tail()}")


@pytest.fixture(scope="module")
def page(ui: Ui) -> Iterator:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        # The "Join the Dagster community" dialog covers every page of a new browser; it is Dagster's, not ours.
        context.add_init_script("window.localStorage.setItem('communityNux', '1')")
        context.set_default_timeout(30_000)
        tab = context.new_page()
        try:
            yield tab
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _page_text(page) -> str:
    """What the page says about a problem: alerts, toasts, dialogs, else the start of the main text."""
    parts = []
    for selector in ("[role=alert]", "[class*=Toast]", "[role=dialog]", "[class*=NonIdealState]"):
        loc = page.locator(selector)
        parts += [loc.nth(i).inner_text() for i in range(min(loc.count(), 3)) if loc.nth(i).is_visible()]
    text = " | ".join(p.strip() for p in parts if p.strip())
    return text or page.locator("body").inner_text()[:1500]


def _open(page, ui: Ui, path: str, ready: str, name: str) -> None:
    """Opens `path` and waits for the text `ready`; on failure, the page's own words."""
    page.goto(ui.base + path)
    try:
        page.get_by_text(ready, exact=True).first.wait_for(timeout=45_000)
    except Exception as exc:
        _shot(page, f"{name}-failed")
        raise AssertionError(
            f"{path}: {ready!r} never showed ({type(exc).__name__}); the page says: {_page_text(page)}"
        ) from None
    page.wait_for_load_state("networkidle")
    _shot(page, name)


def _graph_nodes(page) -> list[str]:
    nodes = page.locator("foreignObject")
    return [(nodes.nth(i).text_content() or "") for i in range(nodes.count())]


def _asset_tree(text: str) -> dict[str, list[str]]:
    """The lineage page's asset tree, from its text: each group's name, then its assets' (full) names."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]  # each label is drawn twice
    tree: dict[str, list[str]] = {}
    zone = None
    for line in lines[lines.index(next(iter(ZONES))) :]:
        if line in ZONES:
            if line in tree:  # the graph's group boxes follow the tree
                break
            tree[line], zone = [], line
        elif zone is not None:
            tree[zone].append(line)
    return tree


def test_lineage_shows_the_three_zones_and_every_asset(page, ui):
    _open(page, ui, "/asset-groups", "Global asset lineage", "01-lineage-groups")
    try:  # the graph lays itself out after the page is idle
        for zone in ZONES:
            page.locator("foreignObject").filter(has_text=re.compile(f"^{zone}")).first.wait_for(state="attached")
    except Exception:
        _shot(page, "01-lineage-groups-failed")
    _shot(page, "01-lineage-groups")
    groups = [t for t in _graph_nodes(page) if t]
    for zone in ZONES:
        assert any(t.startswith(zone) for t in groups), f"group {zone} not in the lineage: {groups}"
    for zone in ZONES:  # the lineage's asset tree: each group opened by its caret, as a user would
        label = page.get_by_text(zone, exact=True).first
        box = label.bounding_box()
        assert box is not None, f"group {zone} not in the lineage's asset tree"
        page.mouse.click(box["x"] - 40, box["y"] + box["height"] / 2)
        page.get_by_text(ZONES[zone][-1], exact=True).first.wait_for()
    _shot(page, "02-lineage-assets")
    tree = _asset_tree(page.locator("body").inner_text())
    assert {zone: sorted(names) for zone, names in tree.items()} == ZONES, f"the lineage's asset tree: {tree}"
    # Each zone's catalog page lists its assets by key (the graph shows names only).
    for zone, names in ZONES.items():
        _open(page, ui, f"/assets/{zone}", names[0], f"03-catalog-{zone}")
        listed = page.locator("body").inner_text()
        missing = [n for n in names if not re.search(rf"(?m)^{n}$", listed)]
        assert not missing, f"{zone}: assets missing from the catalog page: {missing}"


def test_a_trusted_asset_shows_its_row_count_and_delta_version(page, ui):
    rows, version = ui.summary["medallion.trusted.customers"]
    _open(page, ui, "/assets/trusted/customers", "Row count", "04-trusted-customers")
    text = page.locator("body").inner_text()
    assert re.search(rf"Row count\s+{rows:,}\b|Row count\s+{rows}\b", text), f"row count {rows} not shown"
    assert re.search(rf"delta_version\s+.*?\s+{version}\b", text, flags=re.S), "delta_version not shown"


def _names(label: str, name: str) -> bool:
    """`label` is `name` as the UI shows it: whole, or cut in the middle ("quarantine_rat…lformed_record")."""
    head, cut, tail = label.partition("…")
    return label == name or (bool(cut) and len(label) > 8 and name.startswith(head) and name.endswith(tail))


def _checks(dataset: str) -> list[str]:
    """The checks of a trusted asset: the contract's (`CHECKS`) and the quality trend's (`volume`, one
    `quarantine_rate_<rule>` per rule the contract can fail)."""
    from medallion_platform.contracts import load_contracts
    from medallion_platform.zones.quality import contract_rules

    return [*CHECKS, "volume", *(f"quarantine_rate_{rule}" for rule in contract_rules(load_contracts()[dataset]))]


def test_a_trusted_asset_shows_its_checks_passed_and_the_demo_s_figures(page, ui):
    """Right after the demo: its checks passed (not re-running) and its metadata is the demo's load."""
    rows, _ = ui.summary["medallion.trusted.customers"]
    checks = _checks("customers")
    _open(page, ui, "/assets/trusted/customers?view=checks", f"Checks ({len(checks)})", "05-trusted-customers-checks")
    listed = [line.strip() for line in page.inner_text("body").splitlines()]
    for check in checks:
        assert any(_names(line, check) for line in listed), f"check {check} not listed"
    statuses = re.findall(
        r"(?m)^(Succeeded|Failed|Skipped|In [Pp]rogress|Not evaluated|Execution failed)$", page.inner_text("body")
    )
    assert statuses.count("Succeeded") == len(checks), f"check statuses: {statuses}"
    _open(page, ui, "/assets/trusted/customers", "Row count", "05b-trusted-customers-metadata")
    text = page.locator("body").inner_text()
    assert re.search(rf"rows_inserted\s+.*?\s+{rows}\b", text, flags=re.S), (
        f"rows_inserted is not the demo's {rows}: a later run overwrote the demo's metadata"
    )


def _sensor_states(page) -> dict[str, bool]:
    states = {}
    for name in SENSORS:
        row = page.locator("[data-index]").filter(has=page.get_by_text(name, exact=True)).first
        states[name] = row.locator("input[type=checkbox]").last.is_checked()
    return states


def test_the_automation_page_shows_the_sensors_running(page, ui):
    _open(page, ui, "/automation", "landing_sensor", "06-automation")
    states = _sensor_states(page)
    stopped = [name for name, on in states.items() if not on]
    assert not stopped, f"sensors not running: {stopped} (all: {states})"


def _unfinished(ui: Ui, since: float) -> tuple[list[dict], list[dict]]:
    runs = [r for r in ui.runs() if (r["startTime"] or time.time()) >= since - 1]
    backfills = ui.graphql(
        "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status timestamp } } } }"
    )["partitionBackfillsOrError"]["results"]
    busy = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "MANAGED")
    return [r for r in runs if r["status"] in busy], [b for b in backfills if b["status"] == "REQUESTED"]


def backfill_status_shown(page, base: str, backfill: str, name: str) -> str:
    """The status the backfill's page shows once it has finished: "Succeeded", "Failed" (Dagster 1.13's
    words for COMPLETED_SUCCESS and COMPLETED_FAILED) or "Canceled"."""
    page.goto(f"{base}/runs/b/{backfill}?tab=partitions")
    tag = page.get_by_text(re.compile(r"^(Succeeded|Failed|Canceled)$")).first
    tag.wait_for()
    page.wait_for_load_state("networkidle")
    _shot(page, f"{name}-backfill")
    return tag.inner_text().strip()


def _run_error(page, ui: Ui, run: dict) -> str:
    """The failed run's page, and the failure it shows."""
    page.goto(f"{ui.base}/runs/{run['runId']}")
    page.get_by_text("Failure", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    _shot(page, f"run-failed-{run['runId'][:8]}")
    lines = [ln for ln in page.inner_text("body").splitlines() if re.search(r"[Ee]rror|failed|does not exist", ln)]
    return " / ".join(lines[:4]) or _page_text(page)


def test_materialize_all_from_the_ui_launches_and_every_run_succeeds(page, ui):
    _open(page, ui, "/asset-groups", "Global asset lineage", "07-before-materialize-all")
    clicked = time.time()
    # Buttons' accessible names start with their icon's label: match the visible text.
    page.get_by_role("button").filter(has_text=re.compile("^Materialize all")).first.click()
    dialog = page.get_by_role("dialog")
    page.wait_for_timeout(2000)
    if dialog.count() and dialog.first.is_visible():
        # Partitioned assets open the launch dialog. Dagster 1.13's dialog opens with no partition picked
        # when every asset shares one partitions definition (LaunchAssetChoosePartitionsDialog), so one
        # click on "All" picks the partitions: since they start at the data's first date, that is a week
        # or so of days, not years of empty ones.
        _shot(page, "08-materialize-all-dialog")
        launch = dialog.get_by_role("button").filter(has_text=re.compile("^Launch")).first
        if not launch.is_enabled():
            dialog.get_by_text("All", exact=True).first.click()
            page.wait_for_timeout(1000)
        assert launch.is_enabled(), f"the launch button is disabled after picking all partitions: {_page_text(page)}"
        launch.click()
    page.wait_for_timeout(3000)
    _shot(page, "09-materialize-all-launched")
    deadline = time.monotonic() + RUN_WAIT_S
    while time.monotonic() < deadline:
        runs, backfills = _unfinished(ui, clicked)
        if not runs and not backfills:
            break
        time.sleep(2)
    else:
        raise AssertionError(f"runs still going after {RUN_WAIT_S} s: {runs} {backfills}")
    started = [r for r in ui.runs() if (r["startTime"] or 0) >= clicked - 1]
    assert started, f"'Materialize all' started no run; the page says: {_page_text(page)}"
    _open(page, ui, "/runs", "Runs", "10-runs")
    failed = [r for r in started if r["status"] != "SUCCESS"]
    assert not failed, "; ".join(f"{r['jobName']} {r['status']}: {_run_error(page, ui, r)}" for r in failed)
    # What the user sees next: the backfill completed without failures, and every asset materialized
    # (the demo had ingested everything, so each step found nothing new and still materialized).
    (backfill,) = [b for b in ui_backfills(ui) if b["timestamp"] >= clicked - 1]
    shown = backfill_status_shown(page, ui.base, backfill["id"], "10b")
    outcome = backfill_outcome(ui, backfill["id"])
    assert (backfill["status"], shown) == ("COMPLETED_SUCCESS", "Succeeded"), f"{backfill} shown {shown!r}: {outcome}"
    assert {asset: state for asset, state in outcome.items() if state != "ok"} == {}


def ui_backfills(ui: Ui) -> list[dict]:
    return ui.graphql(
        "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status timestamp } } } }"
    )["partitionBackfillsOrError"]["results"]


def test_no_sensor_run_fails_and_opening_the_ui_replays_nothing(page, ui):
    runs = ui.runs()
    by_sensor = [r for r in runs if any(t["key"] == "dagster/sensor_name" for t in r["tags"])]
    replayed = [r for r in by_sensor if {"key": "dagster/sensor_name", "value": "landing_sensor"} in r["tags"]]
    assert not replayed, f"the landing sensor replayed {len(replayed)} landing files the demo had ingested"
    failed = [r for r in by_sensor if r["status"] == "FAILURE"]
    assert not failed, "; ".join(f"{r['jobName']}: {_run_error(page, ui, r)}" for r in failed[:3])
