"""The code location: every graph change shows up here as a diff."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg

from medallion_platform.definitions import build_definitions

EXPECTED_ASSETS = {
    ("raw", "order_events"): ("raw", set(), True),
    ("raw", "customers"): ("raw", set(), False),
    ("raw", "products"): ("raw", set(), False),
    ("trusted", "order_events"): ("trusted", {("raw", "order_events")}, True),
    ("trusted", "order_events_quarantine"): ("trusted", {("raw", "order_events")}, True),
    ("trusted", "customers"): ("trusted", {("raw", "customers")}, False),
    ("trusted", "customers_quarantine"): ("trusted", {("raw", "customers")}, False),
    ("trusted", "products"): ("trusted", {("raw", "products")}, False),
    ("trusted", "products_quarantine"): ("trusted", {("raw", "products")}, False),
    ("raw", "payments"): ("raw", set(), True),
    ("trusted", "payments"): ("trusted", {("raw", "payments")}, True),
    ("trusted", "payments_quarantine"): ("trusted", {("raw", "payments")}, True),
    ("trusted", "payments_history"): ("trusted", {("trusted", "payments")}, False),
    ("trusted", "customers_history"): ("trusted", {("trusted", "customers")}, False),
    ("refined", "daily_revenue"): (
        "refined",
        {("trusted", "order_events"), ("trusted", "customers"), ("trusted", "products")},
        True,
    ),
    ("refined", "customer_lifetime"): ("refined", {("trusted", "order_events"), ("trusted", "customers")}, False),
    ("refined", "product_performance"): ("refined", {("trusted", "order_events"), ("trusted", "products")}, True),
    ("refined", "segment_revenue"): ("refined", {("trusted", "order_events"), ("trusted", "customers_history")}, True),
    ("refined", "daily_revenue_notebook"): (
        "refined",
        {("trusted", "order_events"), ("trusted", "customers"), ("trusted", "products")},
        False,
    ),
}


def _graph():
    return build_definitions().resolve_asset_graph()


def test_asset_keys_groups_deps_and_partitions():
    graph = _graph()
    seen = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        seen[tuple(key.path)] = (
            node.group_name,
            {tuple(p.path) for p in node.parent_keys},
            node.partitions_def is not None,
        )
    assert seen == EXPECTED_ASSETS


def test_metadata_owners_kinds_and_freshness_from_the_contract():
    graph = _graph()
    trusted = graph.get(dg.AssetKey(["trusted", "order_events"]))
    assert trusted.owners == ["team:commerce-data"]
    assert {"delta", "duckdb"} <= set(trusted.kinds)
    schema = trusted.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["event_id", "order_id", "customer_id"]
    policy = trusted.freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert policy.fail_window.to_timedelta() == timedelta(hours=6)
    assert policy.warn_window.to_timedelta() == timedelta(hours=2)
    customers = graph.get(dg.AssetKey(["trusted", "customers"]))
    assert customers.tags.get("medallion/pii") == "true"
    assert customers.metadata["pii_columns"] == "name,email"


def test_contract_checks_are_blocking():
    graph = _graph()
    names = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey(["trusted", "order_events"])}
    contract_checks = {
        "reconciliation",
        "key_unique",
        "required_present",
        "values_in_range",
        "values_allowed",
        "values_match_pattern",
    }
    rules = ("malformed_record", "required", "regex", "type", "min", "max", "allowed", "out_of_range")
    quality_checks = {"volume", *(f"quarantine_rate_{r}" for r in rules)}  # warnings: they never block
    assert names == contract_checks | quality_checks
    defs = build_definitions()
    specs = [s for a in defs.assets for s in getattr(a, "check_specs", [])]
    assert specs and all(s.blocking for s in specs if s.name in contract_checks)
    assert not [s for s in specs if s.name in quality_checks and s.blocking]


def test_sensors_and_schedules():
    defs = build_definitions()
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"landing_sensor", "refined_touched_dates", "default_automation_condition_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())  # automation on
    landing = sensors["landing_sensor"]
    step_keys = {
        dg.AssetKey([zone, f"{name}{suffix}"])
        for name in ("order_events", "customers", "products", "payments")
        for zone, suffix in (("raw", ""), ("trusted", ""), ("trusted", "_quarantine"))
    }
    assert landing.asset_selection.resolve(defs.resolve_asset_graph()) == step_keys
    assert landing.default_status == dg.DefaultSensorStatus.RUNNING
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert schedules == {"batch_sources_nightly": "0 3 * * *", "lake_maintenance_nightly": "30 4 * * *"}


def test_dagster_definitions_validate_passes():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_loading_definitions_touches_no_data_spark_or_network(tmp_path):
    code = (
        "import sys, socket\n"
        "def deny(*a, **k): raise AssertionError('network touched while loading definitions')\n"
        "socket.socket.connect = deny\n"
        "import medallion_platform.definitions as d\n"
        "assert 'pyspark' not in sys.modules, 'spark imported'\n"
        "print(len(list(d.defs.assets)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"MEDALLION_DATA_DIR": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "nowhere").exists()
