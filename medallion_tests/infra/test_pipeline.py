"""Streaming and orchestration policy: Kinesis and Firehose encryption and layout, queues, rules, state machine."""

import json

from infra_pulumi.mocks import Recording
from medallion_platform.contracts import load_contracts


def _stream_datasets() -> list[str]:
    return sorted(n for n, c in load_contracts().items() if c.source.kind == "stream")


def test_a_kinesis_stream_per_stream_dataset_encrypted_with_the_streams_cmk(recording: Recording) -> None:
    streams = recording.of_type("aws:kinesis/stream:Stream")
    assert sorted(recording.outputs["kinesis_streams"]) == _stream_datasets()
    assert len(streams) == len(_stream_datasets())
    for stream in streams:
        assert stream.inputs["encryptionType"] == "KMS"
        assert stream.inputs["kmsKeyId"] == recording.outputs["streams_key_arn"]
        assert not stream.inputs["kmsKeyId"].startswith("alias/aws/")


def test_firehose_reads_its_stream_into_raw_landing_with_the_raw_key(recording: Recording) -> None:
    streams = {s.state["arn"]: s for s in recording.of_type("aws:kinesis/stream:Stream")}
    deliveries = recording.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    assert len(deliveries) == len(_stream_datasets())
    for delivery in deliveries:
        source = delivery.inputs["kinesisSourceConfiguration"]
        stream = streams[source["kinesisStreamArn"]]
        dataset = stream.inputs["tags"]["dataset"]
        s3 = delivery.inputs["extendedS3Configuration"]
        assert s3["bucketArn"] == f"arn:aws:s3:::{recording.outputs['raw_bucket']}"
        assert s3["prefix"] == f"landing/{dataset}/!{{timestamp:yyyy/MM/dd/HH}}/"
        assert s3["errorOutputPrefix"] == (
            f"errors/firehose/{dataset}/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/"
        )
        assert s3["kmsKeyArn"] == recording.outputs["raw_key_arn"]
        assert s3["cloudwatchLoggingOptions"]["enabled"] is True
        assert source["roleArn"] == s3["roleArn"] == recording.outputs["firehose_role_arn"]


def test_landing_queue_is_encrypted_with_a_dead_letter_queue(recording: Recording) -> None:
    queues = {q.inputs["name"]: q for q in recording.of_type("aws:sqs/queue:Queue")}
    main = queues[recording.outputs["landing_queue_url"].rsplit("/", 1)[1]]
    dlq = queues[recording.outputs["landing_dlq_url"].rsplit("/", 1)[1]]
    for queue in (main, dlq):
        assert queue.inputs["kmsMasterKeyId"] == recording.outputs["events_key_arn"]
    redrive = json.loads(main.inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq.state["arn"] and 1 <= redrive["maxReceiveCount"] <= 10


def test_landing_rule_sends_raw_object_created_under_landing_to_the_queue(recording: Recording) -> None:
    rules = {r.inputs["name"]: r for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    rule = rules["medallion-test-raw-object-created"]
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [recording.outputs["raw_bucket"]]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "landing/"}]
    targets = {t.inputs["rule"]: t for t in recording.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    assert targets[rule.inputs["name"]].inputs["arn"] == recording.outputs["landing_queue_arn"]


def test_staging_rule_starts_the_batch_copy_for_batch_datasets(recording: Recording) -> None:
    rules = {r.inputs["name"]: r for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    pattern = json.loads(rules["medallion-test-staging-export-created"].inputs["eventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [recording.outputs["staging_bucket"]]
    batch = sorted(n for n, c in load_contracts().items() if c.source.kind == "batch")
    assert pattern["detail"]["object"]["key"] == [{"prefix": f"{d}/"} for d in batch]
    targets = {t.inputs["rule"]: t for t in recording.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    assert (
        targets["medallion-test-staging-export-created"].inputs["arn"]
        == recording.outputs["batch_copy_state_machine_arn"]
    )


def test_state_machine_logs_everything_traces_and_copies_staging_to_raw_landing(recording: Recording) -> None:
    (machine,) = recording.of_type("aws:sfn/stateMachine:StateMachine")
    logging = machine.inputs["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["logDestination"].endswith(":*")
    assert machine.inputs["tracingConfiguration"]["enabled"] is True
    definition = json.loads(machine.inputs["definition"])
    copy = definition["States"]["CreateCopyJob"]["Parameters"]
    assert copy["RoleArn"] == recording.outputs["batch_operations_role_arn"]
    assert copy["Operation"]["S3PutObjectCopy"]["TargetResource"] == f"arn:aws:s3:::{recording.outputs['raw_bucket']}"
    assert copy["Operation"]["S3PutObjectCopy"]["TargetKeyPrefix"] == "landing"
    generator = copy["ManifestGenerator"]["S3JobManifestGenerator"]
    assert generator["SourceBucket"] == f"arn:aws:s3:::{recording.outputs['staging_bucket']}"
    assert "DescribeJob" in definition["States"], "the state machine waits for the job"


def test_queue_policies_allow_only_the_project_rules_and_deny_plain_http(recording: Recording) -> None:
    rule_arns = {r.state["arn"] for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    for policy in recording.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        stmts = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        assert set(stmts["EventBridgeRuleSends"]["Condition"]["ArnEquals"]["aws:SourceArn"]) <= rule_arns
        assert stmts["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
