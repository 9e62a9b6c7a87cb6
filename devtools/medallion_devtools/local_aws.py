"""The local AWS: moto's server on 127.0.0.1, with the resources the Pulumi program creates in AWS.

Names come from `naming.resource_names` (stack name + contracts), the one definition the Pulumi program
uses too, so the emulator and the cloud cannot drift. What differs on the emulator, and why:
- Firehose is a DirectPut delivery stream: moto does not feed Firehose from Kinesis, so the local
  forwarder (`forwarder.py`) does that hop.
- No Step Functions state machine or S3 Batch Operations job: moto cannot run S3 Control jobs, so the
  local tooling performs the copy with the same manifest semantics (`batch.py`).
- No KMS keys, bucket policies or VPC endpoints: the emulator does not enforce them.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from medallion_platform.ingestion.aws.events import LANDING_MAX_RECEIVE_COUNT, landing_event_pattern
from medallion_platform.naming import ResourceNames

__all__ = [
    "EMULATOR_CREDENTIALS",
    "EmulatorProcess",
    "LocalAws",
    "create_resources",
    "landing_event_pattern",  # defined in events.py (shared with infra_pulumi), re-exported for callers here
    "local_aws_environ",
    "start_emulator",
]

EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
START_TIMEOUT_S = 30.0
"""How long moto's server may take to answer after it is started."""


class EmulatorProcess:
    """moto's server in a process of its own (`python -m moto.server`), bound to 127.0.0.1, as S3 is another
    machine's. Not a thread of the caller's process: delta-rs calls that hold the GIL while they wait for
    the network (`DeltaTable.history`, for one) would wait on a server that cannot run until they return."""

    def __init__(self, port: int | None = None) -> None:
        self.host, self.port = "127.0.0.1", port or _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # one line per request otherwise
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self.process.returncode} on port {self.port}")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise TimeoutError(f"moto's server did not answer on {self.host}:{self.port} within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalAws:
    """A running emulator, bound to loopback only."""

    server: EmulatorProcess
    endpoint_url: str
    region: str = REGION

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=self.region, **_lower(EMULATOR_CREDENTIALS)
        )

    def stop(self) -> None:
        self.server.stop()


@dataclass(frozen=True)
class LocalResources:
    """What `create_resources` made: the names, plus the URLs and ARNs only known once created."""

    names: ResourceNames
    queue_url: str
    dlq_url: str
    account_id: str
    stream_arns: dict[str, str] = field(default_factory=dict)


def _lower(creds: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in creds.items()}


def start_emulator(port: int | None = None) -> LocalAws:
    """Starts moto's server on 127.0.0.1 (port 0 or None: a free port) in its own process; returns once it
    answers."""
    server = EmulatorProcess(port)
    return LocalAws(server=server, endpoint_url=f"http://{server.host}:{server.port}")


def create_resources(aws: LocalAws, names: ResourceNames, *, shards: int = 2) -> LocalResources:
    """Creates the stack's buckets, streams, delivery streams, queue + DLQ and landing rule (idempotent)."""
    s3, sqs, events = aws.client("s3"), aws.client("sqs"), aws.client("events")
    kinesis, firehose = aws.client("kinesis"), aws.client("firehose")
    account = aws.client("sts").get_caller_identity()["Account"]
    for bucket in names.buckets.values():
        _ignore(("BucketAlreadyOwnedByYou",), s3.create_bucket, Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=names.buckets["raw"], NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq_url = sqs.create_queue(QueueName=names.landing_dlq)["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=names.landing_queue,
        Attributes={
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": LANDING_MAX_RECEIVE_COUNT}),
        },
    )["QueueUrl"]
    events.put_rule(Name=names.landing_rule, EventPattern=json.dumps(landing_event_pattern(names.buckets["raw"])))
    events.put_targets(Rule=names.landing_rule, Targets=[{"Id": "landing-queue", "Arn": _queue_arn(sqs, queue_url)}])
    role = f"arn:aws:iam::{account}:role/{names.roles['firehose']}"
    stream_arns = {}
    for dataset, stream in names.streams.items():
        _ignore(("ResourceInUseException",), kinesis.create_stream, StreamName=stream, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
        stream_arns[dataset] = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        _ignore(
            ("ResourceInUseException",),
            firehose.create_delivery_stream,
            DeliveryStreamName=names.delivery_streams[dataset],
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": role,
                "BucketARN": f"arn:aws:s3:::{names.buckets['raw']}",
                # Firehose adds `YYYY/MM/DD/HH/` (UTC arrival time) after the prefix, as in AWS.
                "Prefix": names.landing_prefixes[dataset],
                "ErrorOutputPrefix": f"{names.firehose_error_prefix}{dataset}/",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
            },
        )
    return LocalResources(names, queue_url, dlq_url, account, stream_arns)


def local_aws_environ(aws: LocalAws, resources: LocalResources) -> dict[str, str]:
    """The `MEDALLION_*` (and emulator `AWS_*`) variables that point the platform at this emulator."""
    names = resources.names
    return {
        "MEDALLION_ENV": "local-aws",
        "MEDALLION_STACK": names.stack,
        "MEDALLION_PROJECT": names.project,
        "MEDALLION_RAW_BUCKET": names.buckets["raw"],
        "MEDALLION_TRUSTED_BUCKET": names.buckets["trusted"],
        "MEDALLION_REFINED_BUCKET": names.buckets["refined"],
        "MEDALLION_AWS_ENDPOINT_URL": aws.endpoint_url,
        "MEDALLION_AWS_REGION": aws.region,
        "MEDALLION_LANDING_QUEUE_URL": resources.queue_url,
        **EMULATOR_CREDENTIALS,
    }


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _ignore(codes: tuple[str, ...], call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in codes:
            raise
        return None
