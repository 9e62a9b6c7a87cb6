"""After the landing sensor ingests new files, the sensors and declarative automation materialize every
asset downstream within a bounded number of ticks.

The daemon's ticks are driven by hand, deterministically: each tick evaluates the landing sensor, the
refined-dates sensor and the automation conditions (`dg.evaluate_automation_conditions`, what the
automation condition sensor evaluates), then executes what they asked for, in-process, on one instance.
"""

import dagster as dg
import pytest

from medallion_platform.definitions import build_definitions, platform_resources
from medallion_platform.defs.notebooks import RUNS_ON
from medallion_platform.settings import Settings
from medallion_tests.helpers import event, jsonl, land

MAX_TICKS = 4
"""Landing → raw + trusted; then the refined dates and customer_lifetime; then nothing left to ask for."""

CUSTOMERS = (
    "customer_id,name,email,country,segment,updated_at\ncus-000001,Ana,a@example.com,DE,smb,2026-11-01T00:00:00Z\n"
)
PRODUCTS = (
    "product_id,name,category,list_price,currency,active,updated_at\n"
    "prd-00001,Kettle,kitchen,10.00,EUR,true,2026-11-01T00:00:00Z\n"
)


PAYMENT = {
    "payment_id": "pay-00000001",
    "order_id": "ord-00000001",
    "amount": "10.00",
    "currency": "EUR",
    "status": "authorized",
    "op": "c",
    "lsn": 1,
    "committed_at": "2026-11-01T10:00:00Z",
}


def _runs_here(assets_def: dg.AssetsDefinition) -> bool:
    return all(tags.get(RUNS_ON) != "databricks" for tags in assets_def.tags_by_key.values())


def _execute(request: dg.RunRequest, assets: list, settings: Settings, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(
        assets,
        selection=request.asset_selection,
        partition_key=request.partition_key,
        tags={k: v for k, v in request.tags.items() if k.startswith("dagster/asset_partition_range")},
        resources=platform_resources(settings),
        instance=instance,
        raise_on_error=False,
    )
    assert result.success, f"run of {request.asset_selection} {request.partition_key or request.tags} failed"


class Daemon:
    """The daemon's ticks, by hand: both sensors and the automation conditions, with their cursors kept."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
        self.settings, self.instance = settings, instance
        self.assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and _runs_here(a)]
        self.lakehouse = platform_resources(settings)["lakehouse"]
        self.sensors = [defs.get_sensor_def(name) for name in ("landing_sensor", "refined_touched_dates")]
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None

    def tick(self) -> list[dg.RunRequest]:
        """One tick: what the sensors and the automation conditions ask for."""
        requests: list[dg.RunRequest] = []
        for sensor in self.sensors:
            context = dg.build_sensor_context(
                instance=self.instance, cursor=self.cursors.get(sensor.name), resources={"lakehouse": self.lakehouse}
            )
            result = sensor(context)
            if result.cursor is not None:
                self.cursors[sensor.name] = result.cursor
            requests += result.run_requests or []
        evaluation = dg.evaluate_automation_conditions(
            defs=dg.Definitions(assets=self.assets, resources=platform_resources(self.settings)),
            instance=self.instance,
            cursor=self.automation_cursor,
        )
        self.automation_cursor = evaluation.cursor
        by_partition: dict[str | None, list[dg.AssetKey]] = {}
        for key in (k for a in self.assets for k in a.keys):
            for partition in evaluation.get_requested_partitions(key):
                by_partition.setdefault(partition, []).append(key)
        # as the daemon launches them: one run per partition, for every asset requested for it
        return requests + [dg.RunRequest(asset_selection=keys, partition_key=p) for p, keys in by_partition.items()]

    def run_until_quiet(self) -> int:
        """Ticks, executing what each asks for, until a tick asks for nothing; how many ticks asked."""
        for ticks in range(MAX_TICKS + 1):
            requests = self.tick()
            if not requests:
                return ticks
            for request in requests:
                _execute(request, self.assets, self.settings, self.instance)
        pytest.fail(f"still asking for runs after {MAX_TICKS} ticks")


def test_new_landing_files_reach_every_downstream_asset_within_bounded_ticks(settings: Settings, tmp_path):
    land(settings, "customers", "2026/11/01/c.csv", CUSTOMERS)
    land(settings, "products", "2026/11/01/p.csv", PRODUCTS)
    land(settings, "order_events", "2026/11/01/10/a.json", jsonl(event(1), event(2)))
    # a second object on the same landing date (its run finds nothing new) and a late event
    land(settings, "order_events", "2026/11/01/11/b.json", jsonl(event(3, event_time="2026-11-01T11:00:00Z")))
    land(settings, "order_events", "2026/11/03/09/c.json", jsonl(event(4, event_time="2026-11-02T10:00:00Z")))
    land(settings, "payments", "2026/11/01/10/p.json", jsonl(PAYMENT, {**PAYMENT, "op": "u", "lsn": 2}))
    defs = build_definitions()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        daemon = Daemon(settings, instance, defs)
        assert daemon.run_until_quiet() <= MAX_TICKS
        graph = defs.resolve_asset_graph()
        never = []
        for assets_def in defs.assets or []:
            if not isinstance(assets_def, dg.AssetsDefinition) or not _runs_here(assets_def):
                continue
            never += ["/".join(k.path) for k in assets_def.keys if instance.get_latest_materialization_event(k) is None]
        assert never == [], f"never materialized by the sensors and automation: {never}"
        landed = {"2026-11-01", "2026-11-03"}
        assert instance.get_materialized_partitions(dg.AssetKey(["trusted", "order_events"])) >= landed
        for table in ("daily_revenue", "product_performance"):
            key = dg.AssetKey(["refined", table])
            assert instance.get_materialized_partitions(key) >= {"2026-11-01", "2026-11-02"}, table
            assert graph.get(key).partitions_def is not None
        # a second landing later: the same guarantee from an instance that already holds everything
        land(settings, "order_events", "2026/11/04/08/d.json", jsonl(event(5, event_time="2026-11-04T08:00:00Z")))
        before = instance.get_latest_materialization_event(dg.AssetKey(["refined", "customer_lifetime"]))
        assert daemon.run_until_quiet() <= MAX_TICKS
        after = instance.get_latest_materialization_event(dg.AssetKey(["refined", "customer_lifetime"]))
        assert before is not None and after is not None and after.run_id != before.run_id
        assert "2026-11-04" in instance.get_materialized_partitions(dg.AssetKey(["refined", "daily_revenue"]))
