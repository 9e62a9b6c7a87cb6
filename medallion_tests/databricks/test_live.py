"""Against a real Databricks workspace only (opt-in, `databricks_live`): what the stand-in cannot show.

Set `DATABRICKS_HOST` (not loopback), `DATABRICKS_TOKEN`, `MEDALLION_DATABRICKS_CLUSTER_ID` (or
`MEDALLION_DATABRICKS_NEW_CLUSTER`), the zone buckets (`infra_pulumi/outputs_to_env.py`) and landed data,
then `.venv/bin/pytest -m databricks_live`. Skipped everywhere else (CI has no workspace).
"""

import os
from urllib.parse import urlparse

import dagster as dg
import pytest

from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.run.materialize import materialize_all
from medallion_platform.settings import Settings

HOST = os.environ.get("DATABRICKS_HOST", "")
LIVE = bool(HOST) and urlparse(HOST if "://" in HOST else f"https://{HOST}").hostname not in ("127.0.0.1", "localhost")

pytestmark = [
    pytest.mark.databricks_live,
    pytest.mark.skipif(not LIVE, reason="needs a real Databricks workspace (DATABRICKS_HOST, not loopback)"),
]


def test_every_step_runs_on_the_cluster_and_writes_with_sparks_own_delta_writer(tmp_path):
    settings = Settings.from_env()
    assert settings.env == "databricks" and settings.zone_roots["trusted"].startswith("s3://")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        report = materialize_all(settings, instance=instance)
    assert report.success, report.runs
    # A real cluster has Delta: the native writer commits (Spark's engineInfo), not delta-rs.
    delta = Lakehouse(settings).for_key(["refined", "daily_revenue"]).table()
    assert delta is not None
    (last,) = delta.history(1)
    assert "Databricks-Runtime" in str(last.get("engineInfo", "")), last
