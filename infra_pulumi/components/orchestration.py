"""Orchestration: landing events for the Dagster sensor, and the batch copy of on-premises exports.

- raw "Object Created" under `landing/` → EventBridge rule → SQS queue (CMK, DLQ, redrive) → Dagster sensor.
- staging "Object Created" under `<batch dataset>/` → EventBridge rule → Step Functions, which starts an
  S3 Batch Operations copy of that export to `landing/<dataset>/…` in raw and polls it to completion.
"""

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import log_group_name, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.ingestion.aws.events import LANDING_MAX_RECEIVE_COUNT, landing_event_pattern
from medallion_platform.naming import ResourceNames

__all__ = ["Orchestration", "batch_copy_definition"]


def batch_copy_definition(
    config: InfraConfig, *, staging_bucket_arn: str, raw_bucket_arn: str, raw_key_arn: str, batch_role_arn: str
) -> str:
    """Amazon States Language: create an S3 Batch Operations copy job for the landed export, wait for it."""
    account = config.account_id
    create = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3control:createJob",
        "Parameters": {
            "AccountId": account,
            "ConfirmationRequired": False,
            "Priority": 10,
            "RoleArn": batch_role_arn,
            # the EventBridge event id: a retried task or a redelivered event gets the same job, not a second copy
            "ClientRequestToken.$": "$.id",
            "Description.$": "States.Format('copy {} to raw landing', $.detail.object.key)",
            "Operation": {
                "S3PutObjectCopy": {
                    "TargetResource": raw_bucket_arn,
                    "TargetKeyPrefix": "landing",
                    "SSEAwsKmsKeyId": raw_key_arn,
                    "NewObjectMetadata": {"SSEAlgorithm": "KMS"},
                    "BucketKeyEnabled": True,
                }
            },
            "ManifestGenerator": {
                "S3JobManifestGenerator": {
                    "ExpectedBucketOwner": account,
                    "SourceBucket": staging_bucket_arn,
                    "EnableManifestOutput": False,
                    "Filter": {"KeyNameConstraint": {"MatchAnyPrefix.$": "States.Array($.detail.object.key)"}},
                }
            },
            "Report": {
                "Bucket": staging_bucket_arn,
                "Prefix": "_reports/batch-copy",
                "Format": "Report_CSV_20180820",
                "Enabled": True,
                "ReportScope": "FailedTasksOnly",
            },
        },
        "ResultSelector": {"JobId.$": "$.JobId"},
        "ResultPath": "$.job",
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2}],
        "Next": "WaitForJob",
    }
    definition = {
        "Comment": "Copy an on-premises export from staging to raw landing with S3 Batch Operations",
        "StartAt": "CreateCopyJob",
        "TimeoutSeconds": 6 * 3600,
        "States": {
            "CreateCopyJob": create,
            "WaitForJob": {"Type": "Wait", "Seconds": 30, "Next": "DescribeJob"},
            "DescribeJob": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3control:describeJob",
                "Parameters": {"AccountId": account, "JobId.$": "$.job.JobId"},
                "ResultSelector": {"Status.$": "$.Job.Status"},
                "ResultPath": "$.status",
                "Next": "JobDone?",
            },
            "JobDone?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.status.Status", "StringEquals": "Complete", "Next": "Copied"},
                    {"Variable": "$.status.Status", "StringEquals": "Failed", "Next": "CopyFailed"},
                    {"Variable": "$.status.Status", "StringEquals": "Cancelled", "Next": "CopyFailed"},
                ],
                "Default": "WaitForJob",
            },
            "Copied": {"Type": "Succeed"},
            "CopyFailed": {"Type": "Fail", "Error": "BatchCopyFailed", "Cause": "S3 Batch Operations job failed"},
        },
    }
    return json.dumps(definition, sort_keys=True)


class Orchestration(pulumi.ComponentResource):
    """Landing queue and its rule; the batch-copy state machine and its rule."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        raw_bucket: aws.s3.Bucket,
        staging_bucket: aws.s3.Bucket,
        batch_role: aws.iam.Role,
        step_functions_role: aws.iam.Role,
        events_role: aws.iam.Role,
        batch_datasets: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Orchestration", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.dead_letter_queue = aws.sqs.Queue(
            "landing-dlq",
            name=names.landing_dlq,
            kms_master_key_id=keys.events.arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=14 * 24 * 3600,
            tags=tags(config),
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            "landing-queue",
            name=names.landing_queue,
            kms_master_key_id=keys.events.arn,
            kms_data_key_reuse_period_seconds=300,
            visibility_timeout_seconds=300,
            message_retention_seconds=4 * 24 * 3600,
            receive_wait_time_seconds=20,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": LANDING_MAX_RECEIVE_COUNT})
            ),
            tags=tags(config),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            "landing-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.id,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        self.landing_rule = aws.cloudwatch.EventRule(
            "landing-object-created",
            name=names.landing_rule,
            description="Objects created under landing/ in raw, for the Dagster landing sensor",
            event_pattern=raw_bucket.bucket.apply(lambda b: json.dumps(landing_event_pattern(b))),
            tags=tags(config),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            "landing-to-queue",
            rule=self.landing_rule.name,
            arn=self.queue.arn,
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            retry_policy={"maximum_event_age_in_seconds": 24 * 3600, "maximum_retry_attempts": 185},
            opts=child,
        )

        self.log_group = aws.cloudwatch.LogGroup(
            "batch-copy-logs",
            name=log_group_name(config, "states/batch-copy"),
            kms_key_id=keys.logs.arn,
            retention_in_days=config.log_retention_days,
            tags=tags(config),
            opts=child,
        )
        self.state_machine = aws.sfn.StateMachine(
            "batch-copy",
            name=names.batch_copy_state_machine,
            type="STANDARD",
            role_arn=step_functions_role.arn,
            definition=pulumi.Output.all(staging_bucket.arn, raw_bucket.arn, keys.raw.arn, batch_role.arn).apply(
                lambda v: batch_copy_definition(
                    config, staging_bucket_arn=v[0], raw_bucket_arn=v[1], raw_key_arn=v[2], batch_role_arn=v[3]
                )
            ),
            logging_configuration={
                "level": "ALL",
                "include_execution_data": True,
                "log_destination": self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            },
            tracing_configuration={"enabled": True},
            tags=tags(config),
            opts=child,
        )
        self.staging_rule = aws.cloudwatch.EventRule(
            "staging-export-created",
            name=names.staging_rule,
            description="On-premises export landed in staging: copy it to raw landing",
            event_pattern=staging_bucket.bucket.apply(
                lambda b: json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {
                            "bucket": {"name": [b]},
                            "object": {"key": [{"prefix": f"{d}/"} for d in batch_datasets]},
                        },
                    }
                )
            ),
            tags=tags(config),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            "staging-to-batch-copy",
            rule=self.staging_rule.name,
            arn=self.state_machine.arn,
            role_arn=events_role.arn,
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            opts=child,
        )
        for queue, label, rules in (
            (self.queue, "landing", [self.landing_rule.arn]),
            (self.dead_letter_queue, "landing-dlq", [self.landing_rule.arn, self.staging_rule.arn]),
        ):
            aws.sqs.QueuePolicy(
                f"{label}-queue-policy",
                queue_url=queue.id,
                policy=policy_json(
                    {
                        "Sid": "EventBridgeRuleSends",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue.arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rules}},
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": queue.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ),
                opts=child,
            )
        self.register_outputs(
            {
                "landing_queue_url": self.queue.url,
                "landing_dlq_url": self.dead_letter_queue.url,
                "batch_copy_state_machine_arn": self.state_machine.arn,
            }
        )
