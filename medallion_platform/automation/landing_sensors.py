"""The landing sensor: new landing objects become runs of their raw asset, each object exactly once.

Two flavours behind one sensor, chosen at every evaluation from `Settings.from_env()`:

- **queue** (`MEDALLION_LANDING_QUEUE_URL` set, on `local-aws`/`aws`): long-polls the SQS queue that
  EventBridge feeds with raw "Object Created" events. A message is deleted only on the tick *after*
  the one that returned its run request: its receipt handle rides in the cursor, and Dagster stores
  a tick's cursor only once that tick's run requests are recorded. If a tick is lost, its messages
  reappear after the visibility timeout and yield the same run keys, which Dagster does not run twice.
  Messages that cannot be read go to the dead-letter queue (found through the queue's redrive policy).
- **folder** (`local`, or no queue configured): lists the landing folders of every contract. The
  cursor keeps, per dataset, the keys seen in the last `retention_days` landing dates and a floor
  below which folders are not looked at again (Firehose and the batch copy name folders by arrival
  date, so nothing new lands below the floor). It is zlib-compressed JSON.

Run keys are `<object key>@<ETag>` (locally the MD5 of the bytes, which is S3's ETag of a single-part
object), so a replayed event never makes a second run. Raw `order_events` is partitioned by landing
date (`YYYY-MM-DD` from the key); batch datasets are not partitioned.
"""

import base64
import datetime as dt
import hashlib
import json
import zlib
from typing import Any

import dagster as dg

from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.ingestion.aws.events import PoisonMessage, parse_created_objects
from medallion_platform.ingestion.landing import dataset_for_key, landing_date, list_landing_files
from medallion_platform.lake.storage import filesystem_for, join
from medallion_platform.settings import Settings
from medallion_platform.zones.keys import is_partitioned, source_keys

__all__ = ["build_landing_sensor", "decode_cursor", "encode_cursor", "landing_run_request"]


def build_landing_sensor(
    contracts: dict[str, Contract] | None = None,
    *,
    name: str = "landing_sensor",
    minimum_interval_seconds: int = 30,
    max_messages: int = 100,
    wait_seconds: int = 10,
    visibility_timeout: int = 300,
    retention_days: int = 7,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The landing sensor over `contracts` (default: all), targeting each source's raw, trusted and
    quarantine assets: one run parses a landed object once and promotes it in the same pass.

    `visibility_timeout` must exceed the time between two ticks, so a message is still hidden when
    the next tick deletes it (a message that reappears earlier is harmless: same run key).
    """
    contracts = contracts if contracts is not None else load_contracts()
    keys = [key for name in sorted(contracts) for key in source_keys(name)]

    @dg.sensor(
        name=name,
        asset_selection=keys,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="New landing objects (SQS events on AWS, the landing folders locally) → raw asset runs.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        settings = Settings.from_env()
        if settings.landing_queue_url and settings.env != "local":
            return _queue_tick(context, settings, contracts, max_messages, wait_seconds, visibility_timeout)
        return _folder_tick(context, settings, contracts, retention_days)

    return landing_sensor


def landing_run_request(contract: Contract, key: str, etag: str) -> dg.RunRequest:
    """The run that takes one landed object through raw into trusted (run key: object key + ETag)."""
    partitioned = is_partitioned(contract)
    return dg.RunRequest(
        run_key=f"{key}@{etag}",
        asset_selection=source_keys(contract.name),
        partition_key=landing_date(key) if partitioned else None,
        tags={"medallion/landing_key": key, "medallion/etag": etag, "medallion/dataset": contract.name},
    )


# -- cursor ------------------------------------------------------------------------------------
def encode_cursor(state: dict) -> str:
    """`z:` + base64 of zlib-compressed JSON (keys share long prefixes and compress well)."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return "z:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> dict:
    if not cursor:
        return {}
    if cursor.startswith("z:"):
        return json.loads(zlib.decompress(base64.b64decode(cursor[2:])))
    return json.loads(cursor)


# -- queue flavour -----------------------------------------------------------------------------
def _queue_tick(
    context: dg.SensorEvaluationContext,
    settings: Settings,
    contracts: dict[str, Contract],
    max_messages: int,
    wait_seconds: int,
    visibility_timeout: int,
) -> dg.SensorResult:
    from medallion_platform.ingestion.aws.clients import aws_client  # boto3 only when the queue is used

    sqs = aws_client(settings, "sqs")
    queue = str(settings.landing_queue_url)  # set: the caller chose the queue flavour because of it
    state = decode_cursor(context.cursor)
    _delete(context, sqs, queue, state.get("pending", []))

    raw_bucket = settings.zone_roots["raw"].removeprefix("s3://").split("/", 1)[0]
    requests: dict[str, dg.RunRequest] = {}
    pending: list[str] = []
    received = 0
    while received < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=min(10, max_messages - received),
            WaitTimeSeconds=wait_seconds if received == 0 else 0,
            VisibilityTimeout=visibility_timeout,
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        received += len(messages)
        for message in messages:
            try:
                objects = parse_created_objects(message["Body"])
            except PoisonMessage as exc:
                _dead_letter(context, sqs, queue, message, str(exc))
                continue
            for obj in objects:
                request = _request_for(context, contracts, raw_bucket, obj.bucket, obj.key, obj.etag)
                if request is not None:
                    requests.setdefault(str(request.run_key), request)
            pending.append(message["ReceiptHandle"])  # deleted next tick, once these requests are recorded

    cursor = encode_cursor({"flavour": "queue", "pending": pending})
    if not requests:
        return dg.SensorResult(skip_reason=f"{received} messages, no new landing objects", cursor=cursor)
    return dg.SensorResult(run_requests=list(requests.values()), cursor=cursor)


def _request_for(
    context: Any, contracts: dict[str, Contract], raw_bucket: str, bucket: str, key: str, etag: str
) -> dg.RunRequest | None:
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
    return landing_run_request(contracts[dataset], key, etag)


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


# -- folder flavour ----------------------------------------------------------------------------
def _folder_tick(
    context: dg.SensorEvaluationContext, settings: Settings, contracts: dict[str, Contract], retention_days: int
) -> dg.SensorResult:
    state = decode_cursor(context.cursor)
    datasets = state.get("datasets", {}) if state.get("flavour") == "folder" else {}
    requests: list[dg.RunRequest] = []
    for name, contract in sorted(contracts.items()):
        seen_state = datasets.get(name, {"floor": None, "seen": {}})
        floor, seen = seen_state["floor"], {d: set(keys) for d, keys in seen_state["seen"].items()}
        files, unrecognised = list_landing_files(settings, contract)
        for landing in files:
            if floor and landing.landing_date < floor:
                continue
            name_in_folder = landing.key.removeprefix(contract.source.landing_prefix)
            if name_in_folder in seen.get(landing.landing_date, ()):
                continue
            requests.append(landing_run_request(contract, landing.key, _md5(settings, landing.key)))
            seen.setdefault(landing.landing_date, set()).add(name_in_folder)
        logged = seen.setdefault("unrecognised", set())
        for key in unrecognised:
            if key not in logged:
                context.log.warning(f"ignored {key}: not in the landing layout landing/{name}/YYYY/MM/DD/…")
                logged.add(key)
        dates = sorted(d for d in seen if d != "unrecognised")
        if dates:
            newest = dt.date.fromisoformat(dates[-1])
            floor = max(floor or "", (newest - dt.timedelta(days=retention_days)).isoformat())
        datasets[name] = {
            "floor": floor,
            "seen": {d: sorted(keys) for d, keys in seen.items() if d == "unrecognised" or not floor or d >= floor},
        }
    cursor = encode_cursor({"flavour": "folder", "datasets": datasets})
    if not requests:
        return dg.SensorResult(skip_reason="no new landing files", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _md5(settings: Settings, key: str) -> str:
    fs, base = filesystem_for(settings.landing_root, settings)
    digest = hashlib.md5(usedforsecurity=False)
    with fs.open_input_stream(join(base, key), compression=None) as stream:
        while chunk := stream.read(8 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()
