"""The plan exporter (Pulumi recording -> Terraform plan JSON for checkov) and the scan verdict."""

from pathlib import Path

import pytest

from infra_pulumi.mocks import Recorded, Recording
from infra_pulumi.scan.evaluate import evaluate, load_exceptions
from infra_pulumi.scan.export_plan import TERRAFORM_VERSION, snake, tf_type, to_terraform_plan

SCAN = Path(__file__).resolve().parents[2] / "infra_pulumi" / "scan"


@pytest.fixture(scope="module")
def plan(recording: Recording) -> dict:
    return to_terraform_plan(recording.resources, region="eu-central-1")


def _resource(plan: dict, address: str, section: str = "planned") -> dict:
    pool = (
        plan["planned_values"]["root_module"]["resources"]
        if section == "planned"
        else plan["configuration"]["root_module"]["resources"]
    )
    (found,) = [r for r in pool if r["address"] == address]
    return found


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("aws:s3/bucket:Bucket", "aws_s3_bucket"),
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws_s3_bucket_public_access_block"),
        ("aws:ec2/vpc:Vpc", "aws_vpc"),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", "aws_vpc_endpoint"),
        ("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "aws_kinesis_firehose_delivery_stream"),
        ("aws:cloudwatch/eventRule:EventRule", "aws_cloudwatch_event_rule"),
        ("aws:sfn/stateMachine:StateMachine", "aws_sfn_state_machine"),
    ],
)
def test_type_tokens_map_to_terraform_types(token: str, expected: str) -> None:
    assert tf_type(token) == expected


def test_camel_case_properties_become_snake_case() -> None:
    assert snake("kmsKeyId") == "kms_key_id"
    assert snake("extendedS3Configuration") == "extended_s3_configuration"
    assert snake("tunnel1IkeVersions") == "tunnel1_ike_versions"


def test_plan_has_the_fields_checkov_needs(plan: dict, recording: Recording) -> None:
    assert plan["terraform_version"] == TERRAFORM_VERSION and plan["format_version"]
    aws = [r for r in recording.resources if r.type.startswith("aws:")]
    assert len(plan["planned_values"]["root_module"]["resources"]) == len(aws)
    assert len(plan["resource_changes"]) == len(aws)
    assert len(plan["configuration"]["root_module"]["resources"]) == len(aws)


def test_nested_blocks_are_wrapped_and_plural_blocks_singular(plan: dict) -> None:
    enc = _resource(plan, "aws_s3_bucket_server_side_encryption_configuration.raw_encryption")["values"]
    (rule,) = enc["rule"]
    assert isinstance(rule["apply_server_side_encryption_by_default"], list)
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    versioning = _resource(plan, "aws_s3_bucket_versioning.raw_versioning")["values"]
    assert versioning["versioning_configuration"] == [{"status": "Enabled"}]
    tags = _resource(plan, "aws_s3_bucket.raw_bucket")["values"]["tags"]
    assert isinstance(tags, dict) and tags["zone"] == "raw", "maps are not blocks"


def test_references_between_resources_are_restored(plan: dict) -> None:
    policy = _resource(plan, "aws_s3_bucket_policy.raw_policy", "configuration")
    assert policy["expressions"]["bucket"]["references"][:2] == [
        "aws_s3_bucket.raw_bucket.id",
        "aws_s3_bucket.raw_bucket",
    ]
    assert "bucket" not in _resource(plan, "aws_s3_bucket_policy.raw_policy")["values"], "unknown until apply"
    enc = _resource(plan, "aws_s3_bucket_server_side_encryption_configuration.raw_encryption", "configuration")
    key_ref = enc["expressions"]["rule"][0]["apply_server_side_encryption_by_default"][0]["kms_master_key_id"]
    assert key_ref["references"][0] == "aws_kms_key.raw_key.arn"
    subnet = _resource(plan, "aws_subnet.subnet1", "configuration")
    assert subnet["expressions"]["vpc_id"]["references"][0] == "aws_vpc.vpc1.id"


def test_component_resources_are_not_exported() -> None:
    fake = [
        Recorded("medallion:infra:Storage", "storage", {}, {}, "storage-id"),
        Recorded("aws:s3/bucket:Bucket", "b", {"bucket": "b"}, {"arn": "arn:aws:s3:::b"}, "b"),
    ]
    plan = to_terraform_plan(fake, region="eu-west-1")
    assert [r["address"] for r in plan["resource_changes"]] == ["aws_s3_bucket.b"]


def _report(resources: int, failed: list[tuple[str, str]]) -> dict:
    return {
        "check_type": "terraform_plan",
        "summary": {"resource_count": resources, "passed": 10},
        "results": {"failed_checks": [{"resource": r, "check_id": c, "check_name": "n"} for r, c in failed]},
    }


def test_scan_fails_when_checkov_saw_no_resources() -> None:
    errors, _ = evaluate(_report(0, []), {})
    assert errors and "0 resources" in errors[0]


def test_scan_fails_on_an_exception_that_no_longer_fires() -> None:
    exceptions = {("aws_s3_bucket.a", "CKV_AWS_144"): "single region", ("aws_s3_bucket.gone", "CKV_AWS_1"): "old"}
    errors, _ = evaluate(_report(5, [("aws_s3_bucket.a", "CKV_AWS_144")]), exceptions)
    assert errors == [
        "STALE exception CKV_AWS_1 on aws_s3_bucket.gone: it no longer fires, remove it from exceptions.yaml"
    ]


def test_an_exception_for_a_resource_the_plan_lacks_is_not_stale() -> None:
    exceptions = {("aws_s3_bucket.databricks_root_bucket", "CKV_AWS_145"): "only when registering"}
    errors, _ = evaluate(_report(5, []), exceptions, {"aws_s3_bucket.raw_bucket"})
    assert errors == []


def test_scan_fails_on_unexcepted_failures_only() -> None:
    exceptions = {("aws_s3_bucket.a", "CKV_AWS_144"): "single region"}
    errors, counts = evaluate(
        _report(5, [("aws_s3_bucket.a", "CKV_AWS_144"), ("aws_s3_bucket.b", "CKV_AWS_144")]), exceptions
    )
    assert counts["excepted"] == 1 and counts["failed"] == 1
    assert errors == ["FAILED CKV_AWS_144 on aws_s3_bucket.b: n"]


def test_every_exception_names_resource_check_and_reason() -> None:
    exceptions = load_exceptions(SCAN / "exceptions.yaml")
    assert exceptions
    for (resource, check), reason in exceptions.items():
        assert "." in resource and check.startswith("CKV") and len(reason) > 40


def test_custom_checks_exist_for_tls_endpoint_and_kinesis_cmk() -> None:
    text = "".join(p.read_text() for p in (SCAN / "checks").glob("*.py"))
    for check_id in ("CKV_MDL_1", "CKV_MDL_2", "CKV_MDL_3"):
        assert f'id="{check_id}"' in text
