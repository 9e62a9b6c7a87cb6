"""The local Kinesis → Firehose hop lands records in Firehose's layout, once, from a checkpoint."""

import io
import json

import pytest

from medallion_platform.ingestion.aws.forwarder import S3Checkpoint, forward_stream
from medallion_platform.ingestion.aws.producer import jsonl_records, put_records
from medallion_platform.ingestion.aws.progress import Progress
from medallion_platform.ingestion.landing import landing_date

pytestmark = pytest.mark.aws


def _produce(stack, start: int, n: int) -> None:
    lines = [{"event_id": f"evt-{i:016x}", "n": i} for i in range(start, start + n)]
    put_records(
        stack.client("kinesis"),
        stack.names.streams["order_events"],
        jsonl_records(lines, ["event_id"]),
        progress=Progress("p", out=io.StringIO()),
    )


def _forward(stack):
    names = stack.names
    return forward_stream(
        stack.client("kinesis"),
        stack.client("firehose"),
        stream=names.streams["order_events"],
        delivery_stream=names.delivery_streams["order_events"],
        checkpoint=S3Checkpoint(stack.client("s3"), names.buckets["staging"], "_local-aws/forwarder/x.json"),
        progress=Progress("f", out=io.StringIO()),
    )


def _landed(stack) -> list[int]:
    s3 = stack.client("s3")
    out = []
    for key in stack.keys("raw", "landing/"):
        assert key.startswith("landing/order_events/") and landing_date(key) is not None
        body = s3.get_object(Bucket=stack.names.buckets["raw"], Key=key)["Body"].read().decode()
        out += [json.loads(line)["n"] for line in body.splitlines()]
    return sorted(out)


def test_forwards_each_record_once_and_resumes_from_the_checkpoint(stack):
    _produce(stack, 0, 700)
    first = _forward(stack)
    assert first.records == 700
    assert _landed(stack) == list(range(700))
    assert set(first.positions) == {"shardId-000000000000", "shardId-000000000001"}

    assert _forward(stack).records == 0  # nothing new: nothing delivered again
    _produce(stack, 700, 50)
    assert _forward(stack).records == 50
    assert _landed(stack) == list(range(750))
