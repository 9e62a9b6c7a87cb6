"""End to end on the emulator: Kinesis → forwarder → Firehose → landing → EventBridge → SQS → sensor →
raw → trusted (→ refined) in S3, and batch exports through staging and the copy, with exact counts."""

import gzip
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.landing.queue import QueueOptions
from medallion_platform.defs.landing.sensors import build_landing_sensor
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.engine import build_engine
from medallion_platform.ingestion.aws.commands import ingest_batch, ingest_stream
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.lakehouse import Lakehouse

pytestmark = [pytest.mark.aws, pytest.mark.timeout(240)]

SPEC = SampleSpec(orders=250, customers=40, products=12, days=3)


@pytest.fixture
def sample(tmp_path: Path):
    """The sample data, as an on-premises side would hold it: JSON lines for the app events, CSV exports."""
    root = tmp_path / "onprem"
    manifest = generate_sample_data(root, SPEC)
    lines = []
    for key in manifest.files["order_events"]:
        data = (root / key).read_bytes()
        lines += (gzip.decompress(data) if key.endswith(".gz") else data).decode().splitlines()
    half = len(lines) // 2
    parts = []
    for i, chunk in enumerate((lines[:half], lines[half:])):
        path = tmp_path / f"events-{i}.jsonl"
        path.write_text("\n".join(chunk) + "\n")
        parts.append(path)
    exports = {d: [root / k for k in manifest.files[d]] for d in ("customers", "products")}
    changes = []  # the payments table's change events, as the database's capture would put them on its stream
    for key in manifest.files["payments"]:
        data = (root / key).read_bytes()
        changes += (gzip.decompress(data) if key.endswith(".gz") else data).decode().splitlines()
    payments = tmp_path / "payments.jsonl"
    payments.write_text("\n".join(changes) + "\n")
    parts.append(payments)
    return manifest, parts, exports, len(lines)


class Tick:
    """The landing sensor as the daemon runs it: the cursor of each tick is stored in the instance."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.run_keys = instance, []

    def __call__(self) -> list[dg.RunRequest]:
        stored = self.instance.run_storage.get_cursor_values({"landing_sensor"}).get("landing_sensor")
        # a fresh definition: a restart each time; its resource resolves the stack's variables
        sensor = build_landing_sensor(load_contracts(), queue=QueueOptions(wait_seconds=1))
        context = dg.build_sensor_context(
            instance=self.instance, cursor=stored, resources={"lakehouse": LakehouseResource()}
        )
        result = sensor(context)
        self.instance.run_storage.set_cursor_values({"landing_sensor": result.cursor})
        requests = [r for r in result.run_requests if r.run_key not in self.run_keys]  # Dagster's run-key dedup
        self.run_keys += [r.run_key for r in result.run_requests]
        return requests


def _run(settings, engine, requests: list[dg.RunRequest], instance: dg.DagsterInstance) -> dict[str, set]:
    """Executes the sensor's run requests as real Dagster runs of the source steps (raw + trusted +
    quarantine, parsed once). Requests for the same dataset and landing date are coalesced into one run:
    each run takes every new object of its partition, so the data is the same as one run per object."""
    from medallion_platform.definitions import defs, platform_resources

    assert settings.env == "local-aws"  # the resources below resolve the same settings from the environment
    targets: dict[str, set] = defaultdict(set)
    runs: dict[tuple, dg.RunRequest] = {}
    for request in requests:
        dataset = request.asset_selection[0].path[1]
        targets[dataset].add(request.partition_key)
        runs.setdefault((dataset, request.partition_key or ""), request)
    for (_, partition), request in sorted(runs.items()):
        result = dg.materialize(
            list(defs.assets or []),
            selection=request.asset_selection,
            partition_key=partition or None,
            instance=instance,
            resources=platform_resources(),
            tags=request.tags,
            raise_on_error=False,
        )
        assert result.success, request.tags
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    return targets


def _count(table) -> int:
    data = table.read()
    return 0 if data is None else data.num_rows


def test_stream_and_batch_sources_reach_trusted_in_s3(stack_env, sample, tmp_path):
    stack, settings = stack_env, stack_env.settings
    lake = Lakehouse(settings)
    manifest, (*parts, payments), exports, produced = sample
    engine = build_engine("embedded")
    with dg.DagsterInstance.ephemeral() as instance:
        tick = Tick(instance)

        # -- stream, in two halves, with a sensor restart between them ----------------------------------
        first = ingest_stream(settings, "order_events", [parts[0]])
        assert first.forwarded is not None and first.forwarded.records == first.produced.records
        requests = tick()
        assert requests and all(r.partition_key for r in requests)
        ingest_stream(settings, "order_events", [parts[1]])
        requests += tick()  # a new sensor definition, resuming from the stored cursor
        landed = stack.keys("raw", "landing/order_events/")
        assert sorted(r.tags["medallion/landing_key"] for r in requests) == landed  # each object once
        assert tick() == []  # drained; the last messages are deleted now

        # -- change data: the payments table's change events through the same stream path ------------------
        changed = ingest_stream(settings, "payments", [payments])
        assert changed.produced.records == manifest.raw_rows["payments"]
        payment_requests = tick()
        landed = stack.keys("raw", "landing/payments/")
        assert sorted(r.tags["medallion/landing_key"] for r in payment_requests) == landed
        requests += payment_requests

        # -- batch exports: staging, the copy, the sensor ----------------------------------------------
        batch = ingest_batch(settings, "products", exports["products"])
        assert batch.copy == "local" and batch.landing_keys[0].startswith("landing/products/")
        batch = ingest_batch(settings, "customers", exports["customers"][:1])
        requests += tick()
        targets = _run(settings, engine, requests, instance)
        assert set(targets) == {"order_events", "products", "customers", "payments"}
        assert targets["customers"] == {None} and all(targets["order_events"])

        events = "order_events"
        assert _count(lake.raw(events)) == manifest.raw_rows[events] == produced
        assert _count(lake.trusted(events)) == manifest.valid_unique[events]
        assert _count(lake.quarantine(events)) == manifest.quarantined(events)
        assert _count(lake.trusted("products")) == manifest.valid_unique["products"]
        assert _count(lake.quarantine("products")) == manifest.quarantined("products")
        assert _count(lake.trusted("customers")) == SPEC.customers
        # changes applied newest-first per payment, deletes kept as tombstones, bad changes quarantined
        assert _count(lake.raw("payments")) == manifest.raw_rows["payments"]
        assert _count(lake.trusted("payments")) == manifest.valid_unique["payments"]
        assert _count(lake.quarantine("payments")) == manifest.quarantined("payments")
        deleted = pc.sum(lake.trusted("payments").read()["_deleted"]).as_py()
        assert deleted == manifest.deleted["payments"] > 0
        for zone in ("raw", "trusted"):
            assert settings.table_uri(zone, events).startswith(f"s3://{stack.names.buckets[zone]}/")

        # -- the later customer export: MERGE updates 20 customers and adds the late-known ones -----------
        ingest_batch(settings, "customers", exports["customers"][1:])
        _run(settings, engine, tick(), instance)
        customers = lake.trusted("customers").read()
        assert customers.num_rows == manifest.valid_unique["customers"]
        enterprise = customers.filter(pc.equal(customers["segment"], "enterprise")).column("customer_id").to_pylist()
        assert {f"cus-{i:06d}" for i in range(1, 21)} <= set(enterprise)

        # -- every record produced twice: raw doubles, trusted does not change ----------------------------
        before = lake.trusted(events).read().sort_by("event_id")
        again = ingest_stream(settings, "order_events", parts)
        assert again.produced.records == produced
        _run(settings, engine, tick(), instance)
        assert _count(lake.raw(events)) == 2 * produced
        after = lake.trusted(events).read().sort_by("event_id")
        assert after.drop_columns(["_promoted_at"] if "_promoted_at" in after.column_names else []).equals(
            before.drop_columns(["_promoted_at"] if "_promoted_at" in before.column_names else [])
        )
        assert tick() == []

        # -- refined through Dagster, if the full code location is there ----------------------------------
        _refined(settings, manifest)


def _refined(settings, manifest) -> None:
    try:
        from medallion_platform.run.materialize import materialize_all
        from medallion_platform.zones.refined import REFINED_TABLES
    except ImportError:  # the refined zone and code location are built in parallel
        return
    with dg.DagsterInstance.ephemeral() as instance:
        report = materialize_all(settings, instance=instance)
    assert report.success, report.runs
    for table in REFINED_TABLES:
        uri = settings.table_uri("refined", table.name)
        assert uri.startswith("s3://")
        from medallion_platform.lake.delta_io import DeltaTableIO

        assert _count(DeltaTableIO(uri, storage_options=settings.storage_options)) > 0
