"""The emulator is loopback-only and holds the resources the Pulumi program creates, by the same names."""

import json
from pathlib import Path

import pytest
from medallion_devtools.local_aws import create_resources

from medallion_platform.ingestion.aws.clients import aws_client, deployment_names
from medallion_platform.settings import ConfigError, Settings

pytestmark = pytest.mark.aws


def _listening(port: int) -> set[str]:
    """The addresses a socket listens on at `port`, from the kernel's table (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_binds_loopback_only(local_aws):
    assert local_aws.endpoint_url == f"http://127.0.0.1:{local_aws.server.port}"
    assert local_aws.server.process.poll() is None  # its own process, as S3 is another machine
    assert _listening(local_aws.server.port) == {"0100007F"}  # 127.0.0.1, little-endian; nothing else


def test_resources_exist_under_the_shared_names(stack):
    names = stack.names
    s3, sqs, kinesis, firehose, events = (stack.client(s) for s in ("s3", "sqs", "kinesis", "firehose", "events"))
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert set(names.buckets.values()) <= buckets
    # raw "Object Created" under landing/ reaches the queue through EventBridge; other prefixes do not
    s3.put_object(Bucket=names.buckets["raw"], Key="elsewhere/x.json", Body=b"{}")
    s3.put_object(Bucket=names.buckets["raw"], Key="landing/customers/2026/11/01/c.csv", Body=b"a\n")
    got = sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in got["Messages"]]
    assert [b["detail"]["object"]["key"] for b in bodies] == ["landing/customers/2026/11/01/c.csv"]
    assert set(names.streams) == {"order_events", "payments"}  # the contracts whose ingestion is a stream
    for source in names.streams:
        summary = kinesis.describe_stream_summary(StreamName=names.streams[source])["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE"
        dest = firehose.describe_delivery_stream(DeliveryStreamName=names.delivery_streams[source])[
            "DeliveryStreamDescription"
        ]["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert dest["BucketARN"] == f"arn:aws:s3:::{names.buckets['raw']}"
        assert dest["Prefix"] == f"landing/{source}/"
    rule = events.describe_rule(Name=names.landing_rule)
    assert json.loads(rule["EventPattern"])["detail"]["bucket"]["name"] == [names.buckets["raw"]]
    targets = events.list_targets_by_rule(Rule=names.landing_rule)["Targets"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack.resources.queue_url, AttributeNames=["All"])["Attributes"]
    assert [t["Arn"] for t in targets] == [queue_arn["QueueArn"]]
    redrive = json.loads(queue_arn["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + names.landing_dlq)
    assert stack.resources.queue_url.endswith("/" + names.landing_queue)


def test_creating_twice_is_harmless(local_aws, stack):
    again = create_resources(local_aws, stack.names)
    assert again.queue_url == stack.resources.queue_url


def test_settings_reach_the_emulator_through_configuration_only(stack):
    settings = Settings.from_env(stack.environ)
    assert settings.env == "local-aws"
    assert settings.zone_roots["raw"] == f"s3://{stack.names.buckets['raw']}"
    assert deployment_names(settings) == stack.names
    s3 = aws_client(settings, "s3")
    s3.put_object(Bucket=stack.names.buckets["raw"], Key="hello.txt", Body=b"hi")
    assert stack.keys("raw") == ["hello.txt"]


def test_wrong_stack_is_reported(stack):
    with pytest.raises(ConfigError, match="MEDALLION_STACK"):
        deployment_names(Settings.from_env({**stack.environ, "MEDALLION_STACK": "other"}))
    with pytest.raises(ConfigError, match="MEDALLION_STACK is not set"):
        deployment_names(stack.settings.model_copy(update={"stack": None}))
