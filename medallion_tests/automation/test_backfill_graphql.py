"""The UI's "Materialize all" as a backfill launched through Dagster's GraphQL API (what its dialog sends), on
a new user's lake: every asset over every partition, the backfill completed without failures and every asset
materialized afterwards. Once with the sensors stopped, once with them running and ingesting the landing
files while the backfill starts (the sensors' runs find the files first; the backfill's find nothing new).

Starts `medallion ui` (webserver + daemon) on a free 127.0.0.1 port; every wait is bounded.
"""

import time

import pytest

from medallion_tests.backfills import backfill_outcome, serve_fresh_lake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BACKFILL_WAIT_S = 300
"""How long the whole backfill may take (about a minute on 2 busy cores)."""

LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""


@pytest.mark.parametrize("sensors", ["stopped", "racing"])
def test_a_backfill_of_every_asset_completes_and_materializes_every_asset(tmp_path, sensors):
    with serve_fresh_lake(tmp_path, sensors=sensors) as served:
        if sensors == "racing":  # the landing sensor has asked for its runs: the backfill races them
            deadline = time.monotonic() + 120
            while not served.sensor_runs("landing_sensor") and time.monotonic() < deadline:
                time.sleep(1)
            assert served.sensor_runs("landing_sensor"), f"the landing sensor asked for no run:\n{served.server.tail()}"
        keys = [{"path": path} for path in served.asset_keys()]
        launched = served.graphql(LAUNCH, {"params": {"assetSelection": keys, "allPartitions": True}})
        result = launched["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        status = served.wait_for_backfill(result["backfillId"], BACKFILL_WAIT_S)
        if sensors == "stopped":  # racing, the sensor's later runs (one per object, behind the backfill) go on
            served.wait_until_idle(BACKFILL_WAIT_S)
        outcome = backfill_outcome(served, result["backfillId"])
        failed = [r for r in served.runs() if r["status"] == "FAILURE"]
        assert status == "COMPLETED_SUCCESS", f"backfill {status}; assets: {outcome}; failed runs: {failed}"
        assert {name: state for name, state in outcome.items() if state != "ok"} == {}
        assert not failed, failed
