"""Kinesis → Firehose for the local AWS: the hop AWS makes itself and the emulator does not.

In AWS the delivery stream reads the Kinesis stream (`KinesisStreamAsSource`). moto does not connect
them, so on `local-aws` this forwarder reads every shard (GetRecords) and hands the records to the
delivery stream (PutRecordBatch), which writes `landing/<dataset>/YYYY/MM/DD/HH/<object>` in raw
exactly as Firehose does. Downstream nothing can tell the difference.

The last forwarded sequence number of each shard is checkpointed in the staging bucket (so the
checkpoint lives and dies with the emulator's state); a crash between a delivery and its checkpoint
re-delivers those records, which is Firehose's at-least-once contract too.
"""

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from medallion_platform.ingestion.aws.progress import Progress, Throughput

__all__ = ["ForwardSummary", "S3Checkpoint", "forward_stream"]

FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_BYTES = 4 * 2**20


class S3Checkpoint:
    """Sequence numbers by shard id, as one JSON object in S3."""

    def __init__(self, s3: Any, bucket: str, key: str):
        self.s3, self.bucket, self.key = s3, bucket, key

    def load(self) -> dict[str, str]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return {}
            raise
        return dict(json.loads(body))

    def save(self, positions: dict[str, str]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(positions, sort_keys=True).encode())


@dataclass(frozen=True)
class ForwardSummary:
    """What one forwarding pass moved."""

    stream: str
    delivery_stream: str
    throughput: Throughput
    batches: int
    positions: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.throughput.records


def forward_stream(
    kinesis: Any,
    firehose: Any,
    *,
    stream: str,
    delivery_stream: str,
    checkpoint: S3Checkpoint,
    max_attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> ForwardSummary:
    """Forwards every record after the checkpoint, shard by shard, until each shard is drained."""
    positions = checkpoint.load()
    progress = progress or Progress(f"forward {stream} → {delivery_stream}")
    delivered = 0
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = _iterator(kinesis, stream, shard_id, positions.get(shard_id))
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records = response["Records"]
            iterator = response.get("NextShardIterator")
            if not records:
                break  # drained (a closed shard also ends with no iterator)
            for batch in _batches(records):
                _deliver(firehose, delivery_stream, batch, max_attempts=max_attempts, sleep=sleep)
                delivered += 1
                positions[shard_id] = batch[-1]["SequenceNumber"]
                checkpoint.save(positions)
                progress.advance(len(batch), sum(len(r["Data"]) for r in batch))
    return ForwardSummary(stream, delivery_stream, progress.finish(), delivered, dict(positions))


def _iterator(kinesis: Any, stream: str, shard_id: str, after: str | None) -> str:
    kwargs: dict[str, Any] = {"StreamName": stream, "ShardId": shard_id}
    if after:
        kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
    else:
        kwargs.update(ShardIteratorType="TRIM_HORIZON")
    return kinesis.get_shard_iterator(**kwargs)["ShardIterator"]


def _batches(records: list[dict]) -> list[list[dict]]:
    out: list[list[dict]] = [[]]
    size = 0
    for record in records:
        n = len(record["Data"])
        if out[-1] and (len(out[-1]) >= FIREHOSE_MAX_RECORDS or size + n > FIREHOSE_MAX_BYTES):
            out.append([])
            size = 0
        out[-1].append(record)
        size += n
    return out


def _deliver(firehose: Any, delivery_stream: str, batch: list[dict], *, max_attempts: int, sleep) -> None:
    pending = [{"Data": r["Data"]} for r in batch]
    for attempt in range(max_attempts):
        response = firehose.put_record_batch(DeliveryStreamName=delivery_stream, Records=pending)
        if not response.get("FailedPutCount"):
            return
        pending = [rec for rec, res in zip(pending, response["RequestResponses"], strict=True) if res.get("ErrorCode")]
        sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))
    raise RuntimeError(f"{len(pending)} records still failed on {delivery_stream} after {max_attempts} attempts")
