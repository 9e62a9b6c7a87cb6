"""Streaming and orchestration policy: Kinesis and Firehose encryption and layout, queues, rules, state machine."""

import datetime as dt
import json

from infra_pulumi.mocks import Recording
from medallion_platform.contracts import load_contracts
from medallion_platform.ingestion.aws.batch import TARGET_PREFIX, staging_key
from medallion_platform.ingestion.aws.events import landing_event_pattern
from medallion_platform.ingestion.landing import dataset_for_key, landing_date


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
    assert pattern == landing_event_pattern(recording.outputs["raw_bucket"]), "the emulator uses the same pattern"
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


def test_staged_exports_start_the_copy_and_land_where_raw_ingestion_reads_them(recording: Recording) -> None:
    """The layout `ingest batch` stages (`batch.staging_key`) meets the staging rule and the copy job's prefix."""
    contracts = load_contracts()
    rules = {r.inputs["name"]: r for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    pattern = json.loads(rules["medallion-test-staging-export-created"].inputs["eventPattern"])
    prefixes = [p["prefix"] for p in pattern["detail"]["object"]["key"]]
    (machine,) = recording.of_type("aws:sfn/stateMachine:StateMachine")
    copy = json.loads(machine.inputs["definition"])["States"]["CreateCopyJob"]["Parameters"]
    target_prefix = copy["Operation"]["S3PutObjectCopy"]["TargetKeyPrefix"]
    assert target_prefix == TARGET_PREFIX, "the state machine and `ingest batch --copy job|local` copy alike"
    assert copy["ClientRequestToken.$"] == "$.id", "a retried CreateJob or a redelivered event makes no second job"
    for dataset in sorted(n for n, c in contracts.items() if c.source.kind == "batch"):
        staged = staging_key(dataset, "export.csv", dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC))
        assert any(staged.startswith(p) for p in prefixes), staged
        landed = f"{target_prefix}/{staged}"  # S3 Batch Operations copies into the folder TargetKeyPrefix names
        assert landed == f"landing/{dataset}/2026/11/25/export.csv"
        assert landing_date(landed) == "2026-11-25" and dataset_for_key(landed, contracts) == dataset
    # what the tooling itself writes to staging must not start a copy
    for key in ("_manifests/batch-copy/m.csv", "_reports/batch-copy/job-1/results/failed.csv", "_local-aws/x.json"):
        assert not any(key.startswith(p) for p in prefixes), key


def test_queue_policies_allow_only_the_project_rules_and_deny_plain_http(recording: Recording) -> None:
    rule_arns = {r.state["arn"] for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    for policy in recording.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        stmts = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        assert set(stmts["EventBridgeRuleSends"]["Condition"]["ArnEquals"]["aws:SourceArn"]) <= rule_arns
        assert stmts["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _denies(policy: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"] if s["Effect"] == "Deny"}


def test_streams_deny_every_request_not_through_the_kinesis_endpoint(recording: Recording, config) -> None:
    policies = recording.of_type("aws:kinesis/resourcePolicy:ResourcePolicy")
    assert {p.inputs["resourceArn"] for p in policies} == {
        s.state["arn"] for s in recording.of_type("aws:kinesis/stream:Stream")
    }
    kinesis = recording.named("kinesis-streams-interface").id
    for policy in policies:
        outside = _denies(json.loads(policy.inputs["policy"]))["DenyOutsideProjectVpcEndpoints"]
        assert outside["Action"] == "kinesis:*" and outside["Principal"] == "*"
        assert outside["Condition"]["StringNotEquals"] == {"aws:SourceVpce": [kinesis]}
        exempt = set(outside["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
        assert exempt == {recording.outputs["firehose_role_arn"], config.break_glass_role_arn, config.deploy_role_arn}


def test_deployer_never_reads_or_writes_records(recording: Recording, config) -> None:
    for policy in recording.of_type("aws:kinesis/resourcePolicy:ResourcePolicy"):
        stmt = _denies(json.loads(policy.inputs["policy"]))["DeployerNeverTouchesRecords"]
        assert stmt["Condition"] == {"ArnEquals": {"aws:PrincipalArn": config.deploy_role_arn}}
        assert {"kinesis:PutRecords", "kinesis:GetRecords"} <= set(stmt["Action"])


def test_queues_deny_every_request_not_through_the_sqs_endpoint_but_eventbridge(recording: Recording, config) -> None:
    sqs = recording.named("sqs-interface").id
    for policy in recording.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        denies = _denies(json.loads(policy.inputs["policy"]))
        outside = denies["DenyOutsideProjectVpcEndpoints"]["Condition"]
        assert outside["StringNotEquals"] == {"aws:SourceVpce": [sqs]}
        assert outside["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}, "EventBridge delivers as a service"
        assert set(outside["ArnNotEquals"]["aws:PrincipalArn"]) == {config.break_glass_role_arn, config.deploy_role_arn}
        assert "sqs:ReceiveMessage" in denies["DeployerNeverTouchesMessages"]["Action"]
