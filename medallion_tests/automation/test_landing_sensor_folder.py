"""The folder flavour of the landing sensor (env `local`): every landing file once, across restarts."""

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.defs.keys import source_keys
from medallion_platform.defs.landing.sensors import build_landing_sensor, decode_cursor
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.ingestion.landing import landing_date
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data


@pytest.fixture
def lakehouse(tmp_path: Path) -> LakehouseResource:
    """The sensor's resource: a local lake under `tmp_path/data`."""
    return LakehouseResource(data_dir=str(tmp_path / "data"), env="local")


@pytest.fixture
def local_env(lakehouse: LakehouseResource) -> Path:
    """The landing root (the raw zone) of that lake."""
    return Path(lakehouse.settings().landing_root)


def _tick(
    sensor: dg.SensorDefinition, cursor: str | None, instance: dg.DagsterInstance, lakehouse: LakehouseResource
) -> dg.SensorResult:
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lakehouse": lakehouse}))


def test_requests_each_landed_file_once_with_key_etag_and_partition(local_env: Path, lakehouse: LakehouseResource):
    manifest = generate_sample_data(local_env, SampleSpec(orders=60, days=2))
    sensor = build_landing_sensor(load_contracts())
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, None, instance, lakehouse)
        landed = sorted(k for keys in manifest.files.values() for k in keys)
        by_key = {r.tags["medallion/landing_key"]: r for r in first.run_requests}
        assert sorted(by_key) == landed
        for key, request in by_key.items():
            etag = hashlib.md5((local_env / key).read_bytes()).hexdigest()
            assert request.run_key == f"{key}@{etag}"
            dataset = key.split("/")[1]
            assert request.asset_selection == source_keys(dataset)
            assert request.partition_key == (landing_date(key) if dataset in ("order_events", "payments") else None)

        second = _tick(sensor, first.cursor, instance, lakehouse)
        assert not second.run_requests and second.skip_reason

        new_key = "landing/order_events/2026/11/02/23/late-object.json"
        (local_env / new_key).parent.mkdir(parents=True, exist_ok=True)
        (local_env / new_key).write_text('{"event_id":"evt-0000000000000001"}\n')
        third = _tick(sensor, second.cursor, instance, lakehouse)
        assert [r.tags["medallion/landing_key"] for r in third.run_requests] == [new_key]
        assert third.run_requests[0].partition_key == "2026-11-02"


def test_restart_with_the_stored_cursor_skips_nothing_and_repeats_nothing(
    local_env: Path, tmp_path: Path, lakehouse: LakehouseResource
):
    manifest = generate_sample_data(local_env, SampleSpec(orders=30, days=2))
    storage = tmp_path / "dagster_home"
    storage.mkdir()
    with dg.DagsterInstance.local_temp(str(storage)) as instance:
        before = _tick(build_landing_sensor(load_contracts()), None, instance, lakehouse)
        instance.run_storage.set_cursor_values({"landing_sensor": before.cursor})
    extra = "landing/products/2026/11/03/products_20261103.csv"
    (local_env / extra).parent.mkdir(parents=True)
    (local_env / extra).write_text("product_id\n")
    # as a new process would: a new instance over the same storage, a new sensor, the stored cursor
    with dg.DagsterInstance.local_temp(str(storage)) as instance:
        cursor = instance.run_storage.get_cursor_values({"landing_sensor"})["landing_sensor"]
        after = _tick(build_landing_sensor(load_contracts()), cursor, instance, lakehouse)
    assert [r.tags["medallion/landing_key"] for r in after.run_requests] == [extra]
    assert len(before.run_requests) == sum(len(keys) for keys in manifest.files.values())
    seen = {r.run_key for r in before.run_requests}
    assert not seen & {r.run_key for r in after.run_requests}


def test_cursor_stays_compact_and_old_folders_are_pruned(local_env: Path, lakehouse: LakehouseResource):
    contracts = {"order_events": load_contracts()["order_events"]}
    for day in range(1, 21):
        for hour in range(24):
            path = local_env / f"landing/order_events/2026/11/{day:02d}/{hour:02d}/obj-{day}-{hour}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n")
    sensor = build_landing_sensor(contracts, retention_days=3)
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, None, instance, lakehouse)
        assert len(first.run_requests) == 480
        state = decode_cursor(first.cursor)["datasets"]["order_events"]
        assert state["floor"] == "2026-11-17"
        assert sorted(state["seen"]) == ["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "unrecognised"]
        assert len(first.cursor) < 1_000  # 96 keys kept, compressed
        assert not _tick(sensor, first.cursor, instance, lakehouse).run_requests


def test_files_outside_the_layout_are_logged_once_and_ignored(
    local_env: Path, capfd: pytest.CaptureFixture, lakehouse: LakehouseResource
):
    stray = local_env / "landing/customers/loose-file.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("x\n")
    sensor = build_landing_sensor(load_contracts())
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, None, instance, lakehouse)
        assert not first.run_requests
        assert (
            "landing/customers/loose-file.csv"
            in decode_cursor(first.cursor)["datasets"]["customers"]["seen"]["unrecognised"][0]
        )
        assert "ignored landing/customers/loose-file.csv" in capfd.readouterr().err
        assert not _tick(sensor, first.cursor, instance, lakehouse).run_requests
        assert "loose-file.csv" not in capfd.readouterr().err


def test_without_a_cursor_objects_raw_already_took_are_not_requested(
    local_env: Path, lakehouse: LakehouseResource, tmp_path: Path
):
    """Opening the UI after `medallion demo` (or any CLI run): the first tick asks for nothing already in raw."""
    from medallion_platform.run.instance import prepare_instance
    from medallion_platform.run.materialize import materialize_all

    prepare_instance(tmp_path / "home")
    generate_sample_data(local_env, SampleSpec(orders=60, customers=30, products=20, days=1))
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        materialize_all(lakehouse.settings(), instance=instance)
        sensor = build_landing_sensor(load_contracts())
        first = _tick(sensor, None, instance, lakehouse)
        assert first.run_requests == [] and first.skip_reason
        late = "landing/order_events/2026/11/02/23/late-object.json"
        (local_env / late).parent.mkdir(parents=True, exist_ok=True)
        (local_env / late).write_text('{"event_id":"evt-0000000000000001"}\n')
        second = _tick(sensor, first.cursor, instance, lakehouse)
        assert [r.tags["medallion/landing_key"] for r in second.run_requests] == [late]
        # the runs list stays readable; people's own runs go ahead of the sensor's queue
        assert second.run_requests[0].tags == {"medallion/landing_key": late, "dagster/priority": "-1"}
