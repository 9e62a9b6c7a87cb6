"""The landing sensor's queue flavour (`MEDALLION_LANDING_QUEUE_URL` set, on `local-aws`/`aws`).

Long-polls the SQS queue that EventBridge feeds with raw "Object Created" events. A message is deleted
only on the tick *after* the one that returned its run request: its receipt handle rides in the cursor,
and Dagster stores a tick's cursor only once that tick's run requests are recorded. If a tick is lost,
its messages reappear after the visibility timeout and yield the same run keys, which Dagster does not
run twice. Messages that cannot be read go to the dead-letter queue named by the queue's redrive policy.
Objects outside the raw bucket, a dataset's prefix or the dated layout are logged and skipped; objects
raw's ingest log already lists are skipped silently (their run would change nothing).
"""

import json
from dataclasses import dataclass
from typing import Any

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.defs.landing.folders import decode_cursor, encode_cursor
from medallion_platform.defs.landing.requests import already_in_raw, landing_run_request
from medallion_platform.ingestion.aws.events import PoisonMessage, parse_created_objects
from medallion_platform.ingestion.landing import dataset_for_key, landing_date
from medallion_platform.lake.lakehouse import Lakehouse

__all__ = ["QueueOptions", "queue_tick"]


@dataclass(frozen=True)
class QueueOptions:
    """How much one tick reads. `visibility_timeout` must exceed the time between two ticks, so a
    message is still hidden when the next tick deletes it (one that reappears earlier is harmless)."""

    max_messages: int = 100
    wait_seconds: int = 10
    visibility_timeout: int = 300


def queue_tick(
    context: dg.SensorEvaluationContext, lake: Lakehouse, contracts: dict[str, Contract], options: QueueOptions
) -> dg.SensorResult:
    """Deletes the messages of the last tick, then turns new messages into run requests."""
    from medallion_platform.ingestion.aws.clients import aws_client  # boto3 only when the queue is used

    settings = lake.settings
    sqs = aws_client(settings, "sqs")
    queue = str(settings.landing_queue_url)  # set: the dispatcher chose this flavour because of it
    _delete(context, sqs, queue, decode_cursor(context.cursor).get("pending", []))
    raw_bucket = settings.zone_roots["raw"].removeprefix("s3://").split("/", 1)[0]
    candidates: dict[str, tuple[str, str, str]] = {}  # run key -> dataset, key, etag
    pending: list[str] = []
    for message in _receive(sqs, queue, options):
        try:
            objects = parse_created_objects(message["Body"])
        except PoisonMessage as exc:
            _dead_letter(context, sqs, queue, message, str(exc))
            continue
        for obj in objects:
            dataset = _dataset_of(context, contracts, raw_bucket, obj.bucket, obj.key)
            if dataset is not None:
                candidates.setdefault(f"{obj.key}@{obj.etag}", (dataset, obj.key, obj.etag))
        pending.append(message["ReceiptHandle"])  # deleted next tick, once these requests are recorded
    requests = []
    for dataset in sorted({d for d, _, _ in candidates.values()}):
        taken = already_in_raw(lake, dataset, (k for d, k, _ in candidates.values() if d == dataset))
        requests += [
            landing_run_request(contracts[d], k, e)
            for d, k, e in candidates.values()
            if d == dataset and k not in taken
        ]
    cursor = encode_cursor({"flavour": "queue", "pending": pending})
    if not requests:
        return dg.SensorResult(skip_reason=f"{len(pending)} messages, no new landing objects", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _receive(sqs: Any, queue: str, options: QueueOptions) -> list[dict]:
    messages: list[dict] = []
    while len(messages) < options.max_messages:
        batch = sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=min(10, options.max_messages - len(messages)),
            WaitTimeSeconds=options.wait_seconds if not messages else 0,
            VisibilityTimeout=options.visibility_timeout,
        ).get("Messages", [])
        if not batch:
            break
        messages += batch
    return messages


def _dataset_of(context: Any, contracts: dict[str, Contract], raw_bucket: str, bucket: str, key: str) -> str | None:
    if bucket != raw_bucket:
        context.log.warning(f"ignored s3://{bucket}/{key}: not the raw bucket {raw_bucket}")
        return None
    dataset = dataset_for_key(key, contracts)
    if dataset is None:
        context.log.warning(f"ignored {key}: outside every dataset's landing prefix")
        return None
    if key.rsplit("/", 1)[-1].startswith((".", "_")):
        return None  # temporary and marker files are not data (as in list_landing_files)
    if landing_date(key) is None:
        context.log.warning(f"ignored {key}: not in the landing layout landing/{dataset}/YYYY/MM/DD/…")
        return None
    return dataset


def _delete(context: Any, sqs: Any, queue: str, handles: list[str]) -> None:
    for start in range(0, len(handles), 10):
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])]
        failed = sqs.delete_message_batch(QueueUrl=queue, Entries=entries).get("Failed", [])
        for failure in failed:  # an expired handle: the message reappears, and its run key is known
            context.log.warning(f"could not delete a landing message ({failure.get('Code')}); it will be re-read")


def _dead_letter(context: Any, sqs: Any, queue: str, message: dict, reason: str) -> None:
    policy = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]
    if "RedrivePolicy" not in policy:
        context.log.error(f"unreadable landing message {message['MessageId']} ({reason}) and no DLQ configured")
        return
    _arn, _aws, _sqs, _region, account, name = json.loads(policy["RedrivePolicy"])["deadLetterTargetArn"].split(":")
    dlq = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody=message["Body"],
        MessageAttributes={
            "medallion_reason": {"DataType": "String", "StringValue": reason[:1000]},
            "medallion_source_message_id": {"DataType": "String", "StringValue": message["MessageId"]},
        },
    )
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    context.log.error(f"moved unreadable landing message {message['MessageId']} to the dead-letter queue: {reason}")
