"""The queue flavour of the landing sensor: S3 → EventBridge → SQS → run requests, each object once."""

import json
import time

import dagster as dg
import pytest

from medallion_platform.automation.landing_queue import QueueOptions
from medallion_platform.automation.landing_sensors import build_landing_sensor, decode_cursor
from medallion_platform.contracts import load_contracts
from medallion_platform.resources import LakehouseResource
from medallion_platform.settings import Settings
from medallion_platform.zones.keys import source_keys

pytestmark = pytest.mark.aws

EVENTS = "landing/order_events/2026/11/25/13/obj-a"
CUSTOMERS = "landing/customers/2026/11/25/customers_20261125.csv"


class StackLakehouse(LakehouseResource):
    """The lakehouse resource of a test stack: its settings, not the process environment's."""

    stack_environ: dict[str, str]

    def settings(self) -> Settings:
        return Settings.from_env(self.stack_environ)


def _sensor(**kwargs) -> dg.SensorDefinition:
    return build_landing_sensor(load_contracts(), queue=QueueOptions(wait_seconds=1, **kwargs))


def _tick(sensor, cursor, instance, stack) -> dg.SensorResult:
    """One evaluation, with the stack's lakehouse as the sensor's resource (no environment variables)."""
    resources = {"lakehouse": StackLakehouse(stack_environ=stack.environ)}
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def _put(stack, key: str, body: bytes = b"{}\n") -> str:
    return stack.client("s3").put_object(Bucket=stack.names.buckets["raw"], Key=key, Body=body)["ETag"].strip('"')


def _queue_counts(stack, url: str | None = None) -> tuple[int, int]:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url or stack.resources.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_object_created_events_become_run_requests_and_are_deleted_next_tick(stack):
    etags = {EVENTS: _put(stack, EVENTS), CUSTOMERS: _put(stack, CUSTOMERS, b"customer_id\n")}
    sensor = _sensor()
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, None, instance, stack)
        by_key = {r.tags["medallion/landing_key"]: r for r in first.run_requests}
        assert set(by_key) == {EVENTS, CUSTOMERS}
        assert by_key[EVENTS].run_key == f"{EVENTS}@{etags[EVENTS]}"
        assert by_key[EVENTS].partition_key == "2026-11-25"
        assert by_key[EVENTS].asset_selection == source_keys("order_events")
        assert by_key[CUSTOMERS].partition_key is None
        assert by_key[CUSTOMERS].asset_selection == source_keys("customers")
        # not deleted yet: the run requests are not recorded until this tick's result is stored
        assert len(decode_cursor(first.cursor)["pending"]) == 2
        assert _queue_counts(stack) == (0, 2)

        second = _tick(sensor, first.cursor, instance, stack)
        assert not second.run_requests
        assert _queue_counts(stack) == (0, 0)
        assert decode_cursor(second.cursor)["pending"] == []


def test_replayed_event_gives_the_same_run_key(stack):
    _put(stack, EVENTS)
    sensor = _sensor()
    sqs = stack.client("sqs")
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, None, instance, stack)
        # EventBridge delivers at least once: the same event again, twice
        body = json.dumps(
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {
                    "bucket": {"name": stack.names.buckets["raw"]},
                    "object": {"key": EVENTS, "etag": first.run_requests[0].run_key.rsplit("@", 1)[1]},
                },
            }
        )
        for _ in range(2):
            sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)
        replay = _tick(sensor, first.cursor, instance, stack)
    assert [r.run_key for r in replay.run_requests] == [first.run_requests[0].run_key]  # one, and the same


def test_a_lost_tick_loses_nothing_and_a_restart_repeats_nothing(stack, tmp_path):
    keys = [f"landing/order_events/2026/11/25/1{i}/obj-{i}" for i in range(5)]
    for key in keys[:3]:
        _put(stack, key)
    storage = tmp_path / "dagster_home"
    storage.mkdir()
    sensor = _sensor(visibility_timeout=1)
    with dg.DagsterInstance.local_temp(str(storage)) as instance:
        stored = _tick(sensor, None, instance, stack)
        instance.run_storage.set_cursor_values({"landing_sensor": stored.cursor})
        # a tick whose result is never stored (the process dies): its messages must come back
        for key in keys[3:]:
            _put(stack, key)
        lost = _tick(sensor, stored.cursor, instance, stack)
        assert {r.tags["medallion/landing_key"] for r in lost.run_requests} == set(keys[3:])
    time.sleep(1.2)  # the visibility timeout of the lost tick's messages runs out
    with dg.DagsterInstance.local_temp(str(storage)) as instance:  # a new process, same instance storage
        cursor = instance.run_storage.get_cursor_values({"landing_sensor"})["landing_sensor"]
        resumed = _tick(_sensor(), cursor, instance, stack)
        assert {r.tags["medallion/landing_key"] for r in resumed.run_requests} == set(keys[3:])
        assert {r.run_key for r in resumed.run_requests} == {r.run_key for r in lost.run_requests}
        assert not {r.run_key for r in resumed.run_requests} & {r.run_key for r in stored.run_requests}
        final = _tick(_sensor(), resumed.cursor, instance, stack)
        assert not final.run_requests
    assert _queue_counts(stack) == (0, 0)


def test_poison_messages_go_to_the_dead_letter_queue(stack, capfd):
    sqs = stack.client("sqs")
    queue, dlq = stack.resources.queue_url, stack.resources.dlq_url
    sqs.send_message(QueueUrl=queue, MessageBody="this is not json")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"source": "aws.s3", "detail-type": "Object Created"}))
    _put(stack, EVENTS)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(_sensor(), None, instance, stack)
    assert [r.tags["medallion/landing_key"] for r in result.run_requests] == [EVENTS]
    assert _queue_counts(stack, dlq) == (2, 0)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert sorted(m["Body"][:16] for m in dead) == sorted(['{"source": "aws.', "this is not json"])
    assert all(m["MessageAttributes"]["medallion_reason"]["StringValue"] for m in dead)
    assert _queue_counts(stack) == (0, 1)  # only the good message waits for the next tick's delete
    assert "to the dead-letter queue" in capfd.readouterr().err


def test_objects_outside_known_prefixes_are_logged_and_ignored(stack, capfd):
    _put(stack, "landing/unknown_feed/2026/11/25/x.json")
    _put(stack, "landing/customers/no-date.csv")
    _put(stack, "landing/order_events/2026/11/25/13/.tmp-part")
    with dg.DagsterInstance.ephemeral() as instance:
        first = _tick(_sensor(), None, instance, stack)
        assert not first.run_requests
        err = capfd.readouterr().err
        assert "ignored landing/unknown_feed/2026/11/25/x.json" in err
        assert "ignored landing/customers/no-date.csv" in err
        _tick(_sensor(), first.cursor, instance, stack)
    assert _queue_counts(stack) == (0, 0)
