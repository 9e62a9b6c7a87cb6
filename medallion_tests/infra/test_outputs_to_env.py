"""outputs_to_env: the stack outputs become the MEDALLION_* settings of the Dagster aws/databricks environments."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra_pulumi.mocks import Recording
from infra_pulumi.outputs_to_env import to_env
from medallion_platform.ingestion.aws.clients import deployment_names
from medallion_platform.settings import Settings

SCRIPT = Path(__file__).resolve().parents[2] / "infra_pulumi" / "outputs_to_env.py"


def test_aws_env_carries_buckets_queue_region_streams_and_batch_role(recording: Recording) -> None:
    out = recording.outputs
    env = to_env(out, env="aws")
    assert env["MEDALLION_ENV"] == "aws"
    assert env["MEDALLION_RAW_BUCKET"] == out["raw_bucket"]
    assert env["MEDALLION_TRUSTED_BUCKET"] == out["trusted_bucket"]
    assert env["MEDALLION_REFINED_BUCKET"] == out["refined_bucket"]
    assert env["MEDALLION_STAGING_BUCKET"] == out["staging_bucket"]
    assert env["MEDALLION_LANDING_QUEUE_URL"] == out["landing_queue_url"]
    assert env["MEDALLION_AWS_REGION"] == out["aws_region"]
    assert env["MEDALLION_KINESIS_STREAM_ORDER_EVENTS"] == out["kinesis_streams"]["order_events"]
    assert env["MEDALLION_BATCH_OPERATIONS_ROLE_ARN"] == out["batch_operations_role_arn"]
    assert "MEDALLION_UNITY_CATALOG_ROLE_ARN" not in env


def test_aws_env_names_the_stack_so_the_ingestion_commands_derive_the_deployed_names(recording: Recording) -> None:
    out = recording.outputs
    env = to_env(out, env="aws")
    assert (env["MEDALLION_STACK"], env["MEDALLION_PROJECT"]) == ("test", "medallion")
    assert env["MEDALLION_BUCKET_SUFFIX"] == out["aws_account_id"]
    names = deployment_names(Settings.from_env(env))  # what `medallion ingest` resolves from the .env
    assert names.buckets["staging"] == out["staging_bucket"]
    assert names.streams == out["kinesis_streams"]
    assert names.delivery_streams == out["firehose_delivery_streams"]
    assert out["landing_queue_url"].endswith(f"/{names.landing_queue}")
    assert out["batch_copy_state_machine_arn"].endswith(f":{names.batch_copy_state_machine}")


def test_databricks_env_adds_the_databricks_roles(recording: Recording) -> None:
    env = to_env(recording.outputs, env="databricks")
    assert env["MEDALLION_ENV"] == "databricks"
    assert env["MEDALLION_UNITY_CATALOG_ROLE_ARN"] == recording.outputs["unity_catalog_role_arn"]


def test_missing_outputs_are_reported_by_name(recording: Recording) -> None:
    partial = {k: v for k, v in recording.outputs.items() if k != "raw_bucket"}
    with pytest.raises(KeyError, match="raw_bucket"):
        to_env(partial, env="aws")


def test_script_turns_stack_output_json_into_a_dotenv_file(recording: Recording, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(recording.outputs))
    dotenv = tmp_path / ".env"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--env", "aws", "--outputs", str(outputs), "--out", str(dotenv)], check=True
    )
    parsed = dict(line.split("=", 1) for line in dotenv.read_text().splitlines() if not line.startswith("#"))
    assert parsed == to_env(recording.outputs, env="aws")


def test_compute_site_sets_no_endpoint_variables(recording: Recording) -> None:
    """Workers and clusters use the compute gateway and private DNS: an override would break them."""
    assert not [k for k in to_env(recording.outputs, env="aws") if k.startswith("AWS_ENDPOINT_URL")]


def test_on_prem_site_points_boto3_at_the_privatelink_endpoints(recording: Recording) -> None:
    out = recording.outputs
    env = to_env(out, env="aws", site="on-prem")
    assert env["AWS_ENDPOINT_URL_S3"] == out["s3_endpoint_urls"]["raw"]  # staging uploads go through subnet 1's
    assert env["AWS_ENDPOINT_URL_S3_CONTROL"] == out["s3_control_endpoint_url"]
    assert env["AWS_ENDPOINT_URL_KINESIS"] == out["kinesis_endpoint_url"]
    assert env["AWS_ENDPOINT_URL_STS"] == out["sts_endpoint_url"]


@pytest.mark.parametrize(("site", "zone"), [("subnet1", "raw"), ("subnet2", "trusted"), ("subnet3", "refined")])
def test_zone_sites_use_their_zone_endpoint(recording: Recording, site: str, zone: str) -> None:
    env = to_env(recording.outputs, env="aws", site=site)
    assert env["AWS_ENDPOINT_URL_S3"] == recording.outputs["s3_endpoint_urls"][zone]


def test_the_platform_clients_honour_the_endpoint_variables(recording: Recording, monkeypatch) -> None:
    """`medallion ingest` builds its boto3 clients without endpoint_url, so botocore's variables apply."""
    from medallion_platform.ingestion.aws.clients import aws_client

    env = to_env(recording.outputs, env="aws", site="on-prem")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(env)
    assert aws_client(settings, "s3").meta.endpoint_url == env["AWS_ENDPOINT_URL_S3"]
    assert aws_client(settings, "kinesis").meta.endpoint_url == env["AWS_ENDPOINT_URL_KINESIS"]
    assert aws_client(settings, "sts").meta.endpoint_url == env["AWS_ENDPOINT_URL_STS"]


def test_registered_databricks_env_names_the_workspace_catalog_and_platform_principal(
    registered: Recording, registered_config
) -> None:
    env = to_env(registered.outputs, env="databricks")
    assert env["DATABRICKS_HOST"] == registered.outputs["databricks_workspace_url"]
    assert env["MEDALLION_CATALOG"] == "medallion"
    assert env["MEDALLION_PLATFORM_PRINCIPAL"] == registered_config.databricks.platform_principal
    assert "DATABRICKS_HOST" not in to_env(registered.outputs, env="aws")
