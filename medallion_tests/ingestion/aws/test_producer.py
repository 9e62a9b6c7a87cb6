"""The Kinesis producer: API limits, partition spread, retry of just the failed records, summary."""

import io
import json

import pytest

from medallion_platform.ingestion.aws.producer import (
    MAX_BATCH_BYTES,
    ProducerError,
    Record,
    batches,
    jsonl_records,
    put_records,
)
from medallion_platform.ingestion.aws.progress import Progress
from medallion_tests.ingestion.aws.helpers import FlakyKinesis, stream_records


def _events(n: int) -> list[dict]:
    return [{"event_id": f"evt-{i:016x}", "order_id": f"ord-{i // 3:08d}", "n": i} for i in range(n)]


def test_batches_respect_count_and_size_limits():
    small = [Record(b"x" * 10, "k") for _ in range(1_201)]
    assert [len(b) for b in batches(small)] == [500, 500, 201]
    big = [Record(b"x" * (700 * 1024), f"k{i}") for i in range(20)]  # 7 fit in 5 MiB, not 8
    groups = list(batches(big))
    assert [len(b) for b in groups] == [7, 7, 6]
    assert all(sum(r.size for r in b) <= MAX_BATCH_BYTES for b in groups)
    with pytest.raises(ProducerError, match="1 MiB"):
        list(batches([Record(b"x" * (2**20), "k")]))


def test_jsonl_records_keys_and_framing():
    lines = ['{"event_id":"evt-1","x":1}', "", '{"broken', b'{"event_id":"evt-2"}\r\n']
    records = list(jsonl_records(lines, ["event_id"]))
    assert [r.partition_key for r in records][0::2] == ["evt-1", "evt-2"]
    assert len(records[1].partition_key) == 32  # a broken line gets a random key, and is still sent
    assert all(r.data.endswith(b"\n") and not r.data.endswith(b"\n\n") for r in records)
    assert records[2].data == b'{"event_id":"evt-2"}\n'


@pytest.mark.aws
def test_every_record_lands_once_spread_over_shards(stack):
    kinesis = stack.client("kinesis")
    stream = stack.names.streams["order_events"]
    out = io.StringIO()
    summary = put_records(
        kinesis,
        stream,
        jsonl_records(_events(1_234), ["event_id"]),
        total=1_234,
        progress=Progress("p", 1_234, out=out),
    )
    assert summary.records == 1_234 and summary.calls == 3 and summary.retried_records == 0
    got = stream_records(kinesis, stream)
    assert sorted(json.loads(r["Data"])["n"] for r in got) == list(range(1_234))
    per_shard = {s: sum(1 for r in got if r["ShardId"] == s) for s in summary.shards}
    assert per_shard == summary.shards and len(per_shard) == 2
    assert min(per_shard.values()) > 1_234 * 0.4  # MD5 of the event ids spreads evenly
    assert "1,234/1,234 (100%)" in out.getvalue()
    assert "records/s" in summary.line()


@pytest.mark.aws
def test_partial_failures_retry_only_the_failed_records(stack):
    flaky = FlakyKinesis(stack.client("kinesis"), every=3, failing_calls=2)
    stream = stack.names.streams["order_events"]
    delays: list[float] = []
    summary = put_records(
        flaky,
        stream,
        jsonl_records(_events(600), ["event_id"]),
        progress=Progress("p", out=io.StringIO()),
        sleep=delays.append,
    )
    # 500 → 167 failed → 56 failed → ok; then 100 → ok
    assert flaky.calls == [500, 167, 56, 100]
    assert summary.retried_records == 167 + 56 and summary.records == 600
    assert len(delays) == 2 and all(0 <= d <= 0.05 * 2**i for i, d in enumerate(delays))
    got = stream_records(stack.client("kinesis"), stream)
    assert sorted(json.loads(r["Data"])["n"] for r in got) == list(range(600))  # none lost, none twice


@pytest.mark.aws
def test_gives_up_after_max_attempts(stack):
    flaky = FlakyKinesis(stack.client("kinesis"), every=2, failing_calls=99)
    with pytest.raises(ProducerError, match="after 3 attempts"):
        put_records(
            flaky,
            stack.names.streams["order_events"],
            jsonl_records(_events(10), ["event_id"]),
            max_attempts=3,
            progress=Progress("p", out=io.StringIO()),
            sleep=lambda _s: None,
        )
