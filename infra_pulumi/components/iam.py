"""IAM: least-privilege roles for Firehose, S3 Batch Operations, Step Functions, EventBridge and the Dagster workers.

Every data statement names its buckets, prefixes and keys; KMS use is further tied to the calling
service (`kms:ViaService`). The only `*` resources are the AWS actions that support no resource
(S3 Batch Operations `CreateJob`, CloudWatch Logs delivery, X-Ray), listed in `NO_RESOURCE_ACTIONS`.
"""

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, PolicyStatement, log_group_name, policy_json, tags, zone_prefixes
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ResourceNames

__all__ = ["NO_RESOURCE_ACTIONS", "Iam"]

_LOG_DELIVERY = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
"""What Step Functions needs to deliver execution logs to CloudWatch."""

NO_RESOURCE_ACTIONS = frozenset(
    {
        "s3:CreateJob",
        *_LOG_DELIVERY,
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
)
"""Actions AWS authorizes only on `Resource: "*"`."""

_READ = ["s3:GetObject", "s3:GetObjectVersion"]
_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


class Iam(pulumi.ComponentResource):
    """Service roles, named by `medallion_platform.naming` so the emulator and the cloud agree."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        datasets: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Iam", name, None, opts)
        self._config, self._names, self._arns = config, names, Arns(config)
        a, b = self._arns, names.buckets
        via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}}
        raw, staging = b["raw"], b["staging"]

        firehose_statements: list[PolicyStatement] = [
            {
                "Sid": "ReadProjectStreams",
                "Effect": "Allow",
                "Action": [
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:ListShards",
                ],
                "Resource": [a.stream(s) for s in names.streams.values()],
            },
            {
                "Sid": "DecryptStreams",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [keys.streams.arn],
                "Condition": {"StringEquals": {"kms:ViaService": f"kinesis.{config.region}.amazonaws.com"}},
            },
            {
                "Sid": "LocateRaw",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": [a.bucket(raw)],
            },
            {
                "Sid": "WriteLandingAndErrors",
                "Effect": "Allow",
                "Action": [*_WRITE, "s3:GetObject"],
                "Resource": [a.objects(raw, names.landing_prefixes[d]) for d in names.streams]
                + [a.objects(raw, names.firehose_error_prefix)],
            },
            {
                "Sid": "EncryptRaw",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [keys.raw.arn],
                "Condition": via_s3,
            },
            {
                "Sid": "WriteDeliveryLogs",
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                "Resource": [a.log_group(log_group_name(config, "firehose"))],
            },
        ]
        self.firehose = self._role("firehose", "firehose.amazonaws.com", firehose_statements)

        batch_statements: list[PolicyStatement] = [
            {
                "Sid": "ListStagingForManifest",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [a.bucket(staging)],
            },
            {"Sid": "ReadExports", "Effect": "Allow", "Action": _READ, "Resource": [a.objects(staging)]},
            {
                "Sid": "WriteReports",
                "Effect": "Allow",
                "Action": _WRITE,
                "Resource": [a.objects(staging, "_reports/")],
            },
            {"Sid": "LocateRaw", "Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [a.bucket(raw)]},
            {
                "Sid": "CopyIntoLanding",
                "Effect": "Allow",
                "Action": _WRITE,
                "Resource": [a.objects(raw, "landing/")],
            },
            {
                "Sid": "UseRawKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [keys.raw.arn],
                "Condition": via_s3,
            },
        ]
        self.batch_operations = self._role("batch_operations", "batchoperations.s3.amazonaws.com", batch_statements)

        sfn_statements: list[PolicyStatement] = [
            {
                "Sid": "StartCopyJobs",
                "Effect": "Allow",
                "Action": ["s3:CreateJob"],
                "Resource": "*",
                "Condition": {"StringEquals": {"s3:RequestJobOperation": "S3PutObjectCopy"}},
            },
            {"Sid": "WatchCopyJobs", "Effect": "Allow", "Action": ["s3:DescribeJob"], "Resource": [a.batch_jobs()]},
            {
                "Sid": "PassBatchRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [self.batch_operations.arn],
                "Condition": {"StringEquals": {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}},
            },
            {"Sid": "DeliverExecutionLogs", "Effect": "Allow", "Action": _LOG_DELIVERY, "Resource": "*"},
            {
                "Sid": "Tracing",
                "Effect": "Allow",
                "Action": sorted(x for x in NO_RESOURCE_ACTIONS if x.startswith("xray:")),
                "Resource": "*",
            },
        ]
        self.step_functions = self._role("step_functions", "states.amazonaws.com", sfn_statements)

        self.events_start_batch_copy = self._role(
            "events_start_batch_copy",
            "events.amazonaws.com",
            [
                {
                    "Sid": "StartBatchCopy",
                    "Effect": "Allow",
                    "Action": ["states:StartExecution"],
                    "Resource": [a.state_machine(names.batch_copy_state_machine)],
                }
            ],
        )

        self.dagster_worker = self._role(
            "dagster_worker", "ecs-tasks.amazonaws.com", self._worker_statements(keys, datasets)
        )
        self.register_outputs(
            {
                "firehose_role_arn": self.firehose.arn,
                "batch_operations_role_arn": self.batch_operations.arn,
                "step_functions_role_arn": self.step_functions.arn,
                "dagster_worker_role_arn": self.dagster_worker.arn,
            }
        )

    def _worker_statements(self, keys: Keys, datasets: list[str]) -> list[PolicyStatement]:
        """Dagster workers: read landing, write each zone's table prefixes, read the landing queue."""
        cfg, names, a = self._config, self._names, self._arns
        statements: list[PolicyStatement] = [
            {
                "Sid": "ReadLanding",
                "Effect": "Allow",
                "Action": _READ,
                "Resource": [a.objects(names.buckets["raw"], "landing/")],
            }
        ]
        for zone, prefixes in zone_prefixes(datasets).items():
            bucket = names.buckets[zone]
            statements.append(
                {
                    "Sid": f"List{zone.capitalize()}",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [a.bucket(bucket)],
                    **(
                        {"Condition": {"StringLike": {"s3:prefix": ["landing/*", *(f"{p}*" for p in prefixes)]}}}
                        if zone == "raw"
                        else {"Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}}
                        if prefixes != [""]
                        else {}
                    ),
                }
            )
            statements.append(
                {
                    "Sid": f"ReadWrite{zone.capitalize()}Tables",
                    "Effect": "Allow",
                    "Action": [*_READ, *_WRITE, "s3:DeleteObject"],
                    "Resource": [a.objects(bucket, p) for p in prefixes],
                }
            )
        statements += [
            {
                "Sid": "UseZoneKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [keys.raw.arn, keys.curated.arn],
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"}},
            },
            {
                "Sid": "ConsumeLandingEvents",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                ],
                "Resource": [a.queue(names.landing_queue)],
            },
            {
                "Sid": "DecryptLandingEvents",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [keys.events.arn],
                "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{cfg.region}.amazonaws.com"}},
            },
        ]
        return statements

    def _role(self, key: str, service: str, statements: list[PolicyStatement]) -> aws.iam.Role:
        cfg = self._config
        role_name = self._names.roles.get(key, f"{self._names.project}-{self._names.stack}-{key.replace('_', '-')}")
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{key.replace('_', '-')}-role",
            name=role_name,
            assume_role_policy=policy_json(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": cfg.account_id}},
                }
            ),
            max_session_duration=3600,
            tags=tags(cfg, role=key),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{key.replace('_', '-')}-policy",
            name=f"{role_name}-least-privilege",
            role=role.id,
            policy=policy_json(*statements),
            opts=child,
        )
        return role
