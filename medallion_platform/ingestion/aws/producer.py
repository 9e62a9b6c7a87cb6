"""Kinesis producer: PutRecords within the API limits, retrying only the records that failed.

- Batches hold at most 500 records and 5 MiB (data + partition keys); one record at most 1 MiB.
- Partition keys come from the record's primary key (spread evenly over the shards by Kinesis's
  MD5 hashing); records without one get a random key.
- A partially failed call (`FailedRecordCount > 0`) is retried with only the failed records, after
  exponential backoff with full jitter, until `max_attempts`.
"""

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from medallion_platform.errors import ProducerError
from medallion_platform.ingestion.aws.progress import Progress, Throughput

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "ProduceSummary",
    "ProducerError",
    "Record",
    "jsonl_records",
    "put_records",
]

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 2**20
MAX_RECORD_BYTES = 2**20
MAX_PARTITION_KEY = 256


@dataclass(frozen=True)
class Record:
    """One Kinesis record: newline-terminated bytes and its partition key."""

    data: bytes
    partition_key: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass(frozen=True)
class ProduceSummary:
    """What a produce run did."""

    stream: str
    throughput: Throughput
    calls: int
    retried_records: int
    shards: dict[str, int]
    """Records accepted per shard id."""

    @property
    def records(self) -> int:
        return self.throughput.records

    def line(self) -> str:
        spread = ", ".join(f"{s}={n}" for s, n in sorted(self.shards.items()))
        return (
            f"{self.stream}: {self.throughput.line()}; {self.calls} PutRecords calls, "
            f"{self.retried_records} records retried; per shard: {spread}"
        )


def jsonl_records(lines: Iterable[str | bytes | dict], key_columns: Sequence[str] = ()) -> Iterator[Record]:
    """Records from JSON lines (or dicts), keyed by `key_columns`; lines that are not JSON are sent as they are."""
    for line in lines:
        if isinstance(line, dict):
            obj: Any = line
            text = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
        else:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None  # a broken record is still delivered: raw keeps it, trusted quarantines it
        values = [obj.get(c) for c in key_columns] if isinstance(obj, dict) else []
        key = "|".join(str(v) for v in values) if values and all(v is not None for v in values) else uuid.uuid4().hex
        yield Record((text + "\n").encode("utf-8"), key[:MAX_PARTITION_KEY])


def batches(records: Iterable[Record], *, max_records: int = MAX_BATCH_RECORDS, max_bytes: int = MAX_BATCH_BYTES):
    """Groups records into PutRecords batches within the count and size limits."""
    batch: list[Record] = []
    size = 0
    for record in records:
        if record.size > MAX_RECORD_BYTES:
            raise ProducerError(f"a record of {record.size:,} bytes exceeds the Kinesis limit of 1 MiB")
        if batch and (len(batch) >= max_records or size + record.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record.size
    if batch:
        yield batch


def put_records(
    client: Any,
    stream: str,
    records: Iterable[Record],
    *,
    total: int | None = None,
    max_attempts: int = 8,
    base_delay: float = 0.05,
    max_delay: float = 5.0,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProduceSummary:
    """Puts every record on `stream`; raises `ProducerError` if some still fail after `max_attempts`."""
    progress = progress or Progress(f"put {stream}", total)
    calls = retried = 0
    shards: dict[str, int] = {}
    for batch in batches(records):
        pending = batch
        for attempt in range(max_attempts):
            calls += 1
            response = client.put_records(
                StreamName=stream, Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in pending]
            )
            failed = []
            for record, result in zip(pending, response["Records"], strict=True):
                if result.get("ErrorCode"):
                    failed.append(record)
                else:
                    shards[result["ShardId"]] = shards.get(result["ShardId"], 0) + 1
                    progress.advance(1, record.size)
            if not failed:
                break
            retried += len(failed)
            pending = failed
            if attempt + 1 < max_attempts:
                sleep(random.uniform(0, min(max_delay, base_delay * 2**attempt)))  # full jitter
        else:
            raise ProducerError(
                f"{len(pending)} records still failed on {stream} after {max_attempts} attempts "
                f"(last error: {_last_error(response)})"
            )
    return ProduceSummary(stream, progress.finish(), calls, retried, shards)


def _last_error(response: dict) -> str:
    for result in response.get("Records", []):
        if result.get("ErrorCode"):
            return f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
    return "unknown"
