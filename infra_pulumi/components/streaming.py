"""Streaming: a Kinesis stream per stream dataset, and a Firehose that lands it in raw.

Firehose writes `landing/<dataset>/YYYY/MM/DD/HH/…` in the raw bucket with the raw key, and failed
records under `errors/firehose/<dataset>/<error type>/YYYY/MM/DD/HH/`, the layout the platform reads.
Each stream's resource policy denies every request that does not come through the project's Kinesis
endpoint, except Firehose's role (it reads from the AWS side), the break-glass role, and the deployer
for stream configuration only.
"""

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import (
    CarveOut,
    deny_for_principal,
    deny_outside_endpoints,
    log_group_name,
    policy_json,
    tags,
)
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ResourceNames

__all__ = ["STREAM_DATA_ACTIONS", "Streaming", "firehose_prefixes"]

STREAM_DATA_ACTIONS = (
    "kinesis:PutRecord",
    "kinesis:PutRecords",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:SubscribeToShard",
)
"""Record reads and writes; the deploy role may do everything else (describe, tag, retention) from outside."""


def firehose_prefixes(names: ResourceNames, dataset: str) -> tuple[str, str]:
    """(prefix, error prefix) of a dataset's Firehose delivery into raw."""
    landing = names.landing_prefixes[dataset]
    return (
        f"{landing}!{{timestamp:yyyy/MM/dd/HH}}/",
        f"{names.firehose_error_prefix}{dataset}/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/",
    )


class Streaming(pulumi.ComponentResource):
    """Kinesis streams (CMK) and their Firehose deliveries (raw CMK, error prefix, CloudWatch logging)."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        raw_bucket: aws.s3.Bucket,
        firehose_role: aws.iam.Role,
        kinesis_endpoint_ids: Sequence[pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Streaming", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            "firehose-logs",
            name=log_group_name(config, "firehose"),
            kms_key_id=keys.logs.arn,
            retention_in_days=config.log_retention_days,
            tags=tags(config),
            opts=child,
        )
        self.streams: dict[str, aws.kinesis.Stream] = {}
        self.delivery_streams: dict[str, aws.kinesis.FirehoseDeliveryStream] = {}
        for dataset, stream_name in names.streams.items():
            slug = dataset.replace("_", "-")
            stream = aws.kinesis.Stream(
                f"{slug}-stream",
                name=stream_name,
                encryption_type="KMS",
                kms_key_id=keys.streams.arn,
                retention_period=config.kinesis_retention_hours,
                stream_mode_details={"stream_mode": "ON_DEMAND"},
                tags=tags(config, dataset=dataset),
                opts=child,
            )
            log_stream = aws.cloudwatch.LogStream(
                f"{slug}-delivery-log", name=f"{dataset}-to-raw", log_group_name=self.log_group.name, opts=child
            )
            self._stream_policy(slug, stream, config, firehose_role, kinesis_endpoint_ids)
            prefix, error_prefix = firehose_prefixes(names, dataset)
            self.streams[dataset] = stream
            self.delivery_streams[dataset] = aws.kinesis.FirehoseDeliveryStream(
                f"{slug}-to-raw",
                name=names.delivery_streams[dataset],
                destination="extended_s3",
                kinesis_source_configuration={"kinesis_stream_arn": stream.arn, "role_arn": firehose_role.arn},
                extended_s3_configuration={
                    "role_arn": firehose_role.arn,
                    "bucket_arn": raw_bucket.arn,
                    "prefix": prefix,
                    "error_output_prefix": error_prefix,
                    "buffering_size": 64,
                    "buffering_interval": 300,
                    "compression_format": "GZIP",
                    "kms_key_arn": keys.raw.arn,
                    "cloudwatch_logging_options": {
                        "enabled": True,
                        "log_group_name": self.log_group.name,
                        "log_stream_name": log_stream.name,
                    },
                },
                tags=tags(config, dataset=dataset),
                opts=child,
            )
        self.register_outputs(
            {
                "streams": _names(self.streams),
                "delivery_streams": _names(self.delivery_streams),
            }
        )

    def _stream_policy(
        self,
        slug: str,
        stream: aws.kinesis.Stream,
        config: InfraConfig,
        firehose_role: aws.iam.Role,
        endpoint_ids: Sequence[pulumi.Input[str]],
    ) -> None:
        """Only through the Kinesis endpoint, but Firehose (AWS side), break-glass and the deployer (no records)."""
        carve_outs = [
            CarveOut("firehose", firehose_role.arn),
            CarveOut("break_glass", config.break_glass_role_arn),
            CarveOut("deployer", config.deploy_role_arn),
        ]
        aws.kinesis.ResourcePolicy(
            f"{slug}-stream-policy",
            resource_arn=stream.arn,
            policy=policy_json(
                *deny_outside_endpoints("kinesis", [stream.arn], endpoint_ids, carve_outs),
                deny_for_principal(
                    "DeployerNeverTouchesRecords", config.deploy_role_arn, STREAM_DATA_ACTIONS, [stream.arn]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _names(resources: Mapping[str, pulumi.CustomResource]) -> dict[str, pulumi.Output[str]]:
    return {k: r.name for k, r in resources.items()}  # type: ignore[attr-defined]
