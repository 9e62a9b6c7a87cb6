"""The Dagster UI's "Materialize all" on a new user's lake, in headless Chromium, as the user does it.

`medallion generate` writes landing files nothing has ingested; `medallion ui` serves them. The user opens the
lineage, clicks "Materialize all", "All" in the partitions dialog and "Launch backfill", then looks at the
backfill and the catalog: the backfill completed without failures and every asset has a materialization.
Once with the sensors stopped, once with them running and racing the backfill (the landing sensor's runs
ingest the files first, so the backfill's source steps find nothing new).

Chromium comes from Debian; see `test_dagster_ui.py` for how Playwright drives it.
"""

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medallion_tests.backfills import Served, backfill_outcome, serve_fresh_lake
from medallion_tests.ui.test_dagster_ui import SHOTS, _chromium, _page_text, _shot, _unavailable, backfill_status_shown

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]

BACKFILL_WAIT_S = 300
"""How long the whole backfill may take (about a minute on 2 busy cores)."""


@pytest.fixture
def browser_page() -> Iterator:
    if _chromium() is None:
        _unavailable("Chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright", reason="Playwright is not installed (pip install the dev extra)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_init_script("window.localStorage.setItem('communityNux', '1')")
        context.set_default_timeout(45_000)
        try:
            yield context.new_page()
        finally:
            browser.close()


def launch_materialize_all(page, served: Served, name: str) -> str:
    """The user's clicks: lineage, "Materialize all", "All", "Launch backfill". Returns the backfill's id."""
    page.goto(served.base + "/asset-groups")
    page.get_by_text("Global asset lineage", exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    before = {b["id"] for b in served.backfills()}
    page.get_by_role("button").filter(has_text=re.compile("^Materialize all")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.first.wait_for()
    launch = dialog.get_by_role("button").filter(has_text=re.compile("^Launch")).first
    launch.wait_for()
    dialog.get_by_text("All", exact=True).first.click()  # the dialog opens with no partition picked
    page.wait_for_timeout(1000)
    _shot(page, f"{name}-dialog")
    assert launch.is_enabled(), f"the launch button is disabled after picking all partitions: {_page_text(page)}"
    launch.click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [b for b in served.backfills() if b["id"] not in before]
        if new:
            return new[0]["id"]
        time.sleep(1)
    _shot(page, f"{name}-not-launched")
    raise AssertionError(f"'Materialize all' launched no backfill; the page says: {_page_text(page)}")


def _catalog_text(page, served: Served, name: str) -> str:
    texts = []
    for zone in ("raw", "trusted", "refined"):
        page.goto(f"{served.base}/assets/{zone}")
        page.wait_for_load_state("networkidle")  # the zone's name is in hidden measuring elements too
        _shot(page, f"{name}-catalog-{zone}")
        texts.append(page.locator("body").inner_text())
    return "\n".join(texts)


@pytest.mark.parametrize("sensors", ["stopped", "racing"])
def test_materialize_all_completes_and_every_asset_is_materialized(browser_page, tmp_path: Path, sensors: str):
    page, name = browser_page, f"20-materialize-all-sensors-{sensors}"
    with serve_fresh_lake(tmp_path, sensors=sensors) as served:
        if sensors == "racing":  # the landing sensor has asked for its runs: the backfill races them
            deadline = time.monotonic() + 120
            while not served.sensor_runs("landing_sensor") and time.monotonic() < deadline:
                time.sleep(1)
            assert served.sensor_runs("landing_sensor"), f"the landing sensor asked for no run:\n{served.server.tail()}"
        backfill = launch_materialize_all(page, served, name)
        status = served.wait_for_backfill(backfill, BACKFILL_WAIT_S)
        if sensors == "stopped":  # racing, the sensor's later runs (one per object, behind the backfill) go on
            served.wait_until_idle(BACKFILL_WAIT_S)
        shown = backfill_status_shown(page, served.base, backfill, name)
        catalog = _catalog_text(page, served, name)
        outcome = backfill_outcome(served, backfill)
        failed = served.failures()
        assert (status, shown) == ("COMPLETED_SUCCESS", "Succeeded"), (
            f"the backfill ended {status}, its page shows {shown!r}; assets: {outcome}; failed runs: {failed}\n"
            f"{served.server.tail()}"
        )
        assert {asset: state for asset, state in outcome.items() if state != "ok"} == {}
        assert not failed, json.dumps(failed, indent=1)  # the sensors' runs too, racing
        assert "Never materialized" not in catalog, re.findall(r"(?m)^.*\n.*Never materialized", catalog)
