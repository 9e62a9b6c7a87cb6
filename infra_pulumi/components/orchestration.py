"""Orchestration: landing events for the Dagster sensor, and the batch copy of on-premises exports.

- raw "Object Created" under `landing/` → EventBridge rule → SQS queue (CMK, DLQ, redrive) → Dagster sensor.
- staging "Object Created" under `<batch dataset>/` → EventBridge rule → Step Functions, which starts an
  S3 Batch Operations copy of that export to `landing/<dataset>/…` in raw and polls it to completion.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

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
from medallion_platform.ingestion.aws.events import LANDING_MAX_RECEIVE_COUNT, landing_event_pattern
from medallion_platform.naming import ResourceNames

__all__ = ["QUEUE_DATA_ACTIONS", "Orchestration", "OrchestrationArgs", "batch_copy_definition"]

QUEUE_DATA_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
)
"""Queue actions that touch messages; the deploy role may do everything else (attributes, tags) from outside."""


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


@dataclass(frozen=True)
class OrchestrationArgs:
    """The buckets, roles and endpoints the orchestration layer wires together."""

    config: InfraConfig
    names: ResourceNames
    keys: Keys
    raw_bucket: aws.s3.Bucket
    staging_bucket: aws.s3.Bucket
    batch_role: aws.iam.Role
    step_functions_role: aws.iam.Role
    events_role: aws.iam.Role
    batch_datasets: Sequence[str]
    sqs_endpoint_ids: Sequence[pulumi.Input[str]]
    """The SQS interface endpoint(s): the only network path to the queues, but for EventBridge and admins."""


class Orchestration(pulumi.ComponentResource):
    """Landing queue and its rule; the batch-copy state machine and its rule."""

    def __init__(self, name: str, args: OrchestrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("medallion:infra:Orchestration", name, None, opts)
        self._name, self._args = name, args
        self.dead_letter_queue, self.queue = self._queues()
        self.landing_rule = self._landing_rule()
        self.log_group, self.state_machine = self._state_machine()
        self.staging_rule = self._staging_rule()
        self._queue_policies()
        self.register_outputs(
            {
                "landing_queue_url": self.queue.url,
                "landing_dlq_url": self.dead_letter_queue.url,
                "batch_copy_state_machine_arn": self.state_machine.arn,
            }
        )

    def _child(self, former_name: str) -> pulumi.ResourceOptions:
        """Parented here; aliased to the child's name before the `<component>-` prefix, so stacks keep it."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=former_name)])

    def _queues(self) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
        """The landing queue (CMK, long polling) and its DLQ, with a redrive that only it may use."""
        cfg, names, keys = self._args.config, self._args.names, self._args.keys
        dlq = aws.sqs.Queue(
            f"{self._name}-landing-dlq",
            name=names.landing_dlq,
            kms_master_key_id=keys.events.arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=14 * 24 * 3600,
            tags=tags(cfg),
            opts=self._child("landing-dlq"),
        )
        queue = aws.sqs.Queue(
            f"{self._name}-landing-queue",
            name=names.landing_queue,
            kms_master_key_id=keys.events.arn,
            kms_data_key_reuse_period_seconds=300,
            visibility_timeout_seconds=300,
            message_retention_seconds=4 * 24 * 3600,
            receive_wait_time_seconds=20,
            redrive_policy=dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": LANDING_MAX_RECEIVE_COUNT})
            ),
            tags=tags(cfg),
            opts=self._child("landing-queue"),
        )
        aws.sqs.RedriveAllowPolicy(
            f"{self._name}-landing-dlq-redrive-allow",
            queue_url=dlq.id,
            redrive_allow_policy=queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=self._child("landing-dlq-redrive-allow"),
        )
        return dlq, queue

    def _landing_rule(self) -> aws.cloudwatch.EventRule:
        """raw "Object Created" under `landing/` → the landing queue (pattern shared with the emulator)."""
        cfg, names = self._args.config, self._args.names
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-landing-object-created",
            name=names.landing_rule,
            description="Objects created under landing/ in raw, for the Dagster landing sensor",
            event_pattern=self._args.raw_bucket.bucket.apply(lambda b: json.dumps(landing_event_pattern(b))),
            tags=tags(cfg),
            opts=self._child("landing-object-created"),
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-landing-to-queue",
            rule=rule.name,
            arn=self.queue.arn,
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            retry_policy={"maximum_event_age_in_seconds": 24 * 3600, "maximum_retry_attempts": 185},
            opts=self._child("landing-to-queue"),
        )
        return rule

    def _state_machine(self) -> tuple[aws.cloudwatch.LogGroup, aws.sfn.StateMachine]:
        """The batch-copy state machine (logged with the logs CMK, traced)."""
        a = self._args
        cfg = a.config
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-batch-copy-logs",
            name=log_group_name(cfg, "states/batch-copy"),
            kms_key_id=a.keys.logs.arn,
            retention_in_days=cfg.log_retention_days,
            tags=tags(cfg),
            opts=self._child("batch-copy-logs"),
        )
        machine = aws.sfn.StateMachine(
            f"{self._name}-batch-copy",
            name=a.names.batch_copy_state_machine,
            type="STANDARD",
            role_arn=a.step_functions_role.arn,
            definition=pulumi.Output.all(
                a.staging_bucket.arn, a.raw_bucket.arn, a.keys.raw.arn, a.batch_role.arn
            ).apply(
                lambda v: batch_copy_definition(
                    cfg, staging_bucket_arn=v[0], raw_bucket_arn=v[1], raw_key_arn=v[2], batch_role_arn=v[3]
                )
            ),
            logging_configuration={
                "level": "ALL",
                "include_execution_data": True,
                "log_destination": log_group.arn.apply(lambda arn: f"{arn}:*"),
            },
            tracing_configuration={"enabled": True},
            tags=tags(cfg),
            opts=self._child("batch-copy"),
        )
        return log_group, machine

    def _staging_rule(self) -> aws.cloudwatch.EventRule:
        """staging "Object Created" under `<batch dataset>/` → the state machine."""
        a = self._args
        datasets = list(a.batch_datasets)
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-staging-export-created",
            name=a.names.staging_rule,
            description="On-premises export landed in staging: copy it to raw landing",
            event_pattern=a.staging_bucket.bucket.apply(
                lambda b: json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {"bucket": {"name": [b]}, "object": {"key": [{"prefix": f"{d}/"} for d in datasets]}},
                    }
                )
            ),
            tags=tags(a.config),
            opts=self._child("staging-export-created"),
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-staging-to-batch-copy",
            rule=rule.name,
            arn=self.state_machine.arn,
            role_arn=a.events_role.arn,
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            opts=self._child("staging-to-batch-copy"),
        )
        return rule

    def _queue_policies(self) -> None:
        """EventBridge (its rules only) sends; nothing else from outside the SQS endpoint; TLS only."""
        cfg = self._args.config
        carve_outs = [
            CarveOut("break_glass", cfg.break_glass_role_arn),
            CarveOut("deployer", cfg.deploy_role_arn),
        ]
        for queue, label, rules in (
            (self.queue, "landing", [self.landing_rule.arn]),
            (self.dead_letter_queue, "landing-dlq", [self.landing_rule.arn, self.staging_rule.arn]),
        ):
            outside = deny_outside_endpoints("sqs", [queue.arn], self._args.sqs_endpoint_ids, carve_outs)
            outside.append(
                deny_for_principal("DeployerNeverTouchesMessages", cfg.deploy_role_arn, QUEUE_DATA_ACTIONS, [queue.arn])
            )
            aws.sqs.QueuePolicy(
                f"{self._name}-{label}-queue-policy",
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
                    *outside,
                ),
                opts=self._child(f"{label}-queue-policy"),
            )
