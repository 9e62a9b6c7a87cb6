"""IAM: least-privilege roles for Firehose, S3 Batch Operations, Step Functions, EventBridge and the Dagster workers.

Every data statement names its buckets, prefixes and keys; KMS use is further tied to the calling
service (`kms:ViaService`). The only `*` resources are the AWS actions that support no resource
(S3 Batch Operations `CreateJob`, CloudWatch Logs delivery, X-Ray), listed in `NO_RESOURCE_ACTIONS`.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, PolicyStatement, log_group_name, policy_json, tags, zone_prefixes
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ResourceNames

__all__ = ["NO_RESOURCE_ACTIONS", "Iam", "IamArgs"]

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


@dataclass(frozen=True)
class IamArgs:
    """What the IAM layer needs: the config, the names, the keys and the contract datasets."""

    config: InfraConfig
    names: ResourceNames
    keys: Keys
    datasets: list[str]


class Iam(pulumi.ComponentResource):
    """Service roles, named by `medallion_platform.naming` so the emulator and the cloud agree."""

    def __init__(self, name: str, args: IamArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("medallion:infra:Iam", name, None, opts)
        self._name, self._args, self._arns = name, args, Arns(args.config)
        self._via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{args.config.region}.amazonaws.com"}}
        self.firehose = self._firehose()
        self.batch_operations = self._batch_operations()
        self.step_functions = self._step_functions()
        self.events_start_batch_copy = self._events_start_batch_copy()
        self.dagster_worker = self._role("dagster_worker", "ecs-tasks.amazonaws.com", self._worker_statements())
        self.register_outputs(
            {
                "firehose_role_arn": self.firehose.arn,
                "batch_operations_role_arn": self.batch_operations.arn,
                "step_functions_role_arn": self.step_functions.arn,
                "dagster_worker_role_arn": self.dagster_worker.arn,
            }
        )

    def _firehose(self) -> aws.iam.Role:
        """Firehose: read the project streams, write raw `landing/` and `errors/`, deliver its logs."""
        cfg, names, keys, a = self._args.config, self._args.names, self._args.keys, self._arns
        raw = names.buckets["raw"]
        statements: list[PolicyStatement] = [
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
                "Condition": {"StringEquals": {"kms:ViaService": f"kinesis.{cfg.region}.amazonaws.com"}},
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
                "Condition": self._via_s3,
            },
            {
                "Sid": "WriteDeliveryLogs",
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                "Resource": [a.log_group(log_group_name(cfg, "firehose"))],
            },
        ]
        return self._role("firehose", "firehose.amazonaws.com", statements)

    def _batch_operations(self) -> aws.iam.Role:
        """S3 Batch Operations: read staging exports, write reports there, copy into raw `landing/`."""
        names, keys, a = self._args.names, self._args.keys, self._arns
        raw, staging = names.buckets["raw"], names.buckets["staging"]
        statements: list[PolicyStatement] = [
            {
                "Sid": "ListStagingForManifest",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [a.bucket(staging)],
            },
            {"Sid": "ReadExports", "Effect": "Allow", "Action": _READ, "Resource": [a.objects(staging)]},
            {"Sid": "WriteReports", "Effect": "Allow", "Action": _WRITE, "Resource": [a.objects(staging, "_reports/")]},
            {"Sid": "LocateRaw", "Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [a.bucket(raw)]},
            {"Sid": "CopyIntoLanding", "Effect": "Allow", "Action": _WRITE, "Resource": [a.objects(raw, "landing/")]},
            {
                "Sid": "UseStagingAndRawKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [keys.staging.arn, keys.raw.arn],
                "Condition": self._via_s3,
            },
        ]
        return self._role("batch_operations", "batchoperations.s3.amazonaws.com", statements)

    def _step_functions(self) -> aws.iam.Role:
        """Step Functions: create and watch the copy jobs, pass the Batch Operations role, log, trace."""
        statements: list[PolicyStatement] = [
            {
                "Sid": "StartCopyJobs",
                "Effect": "Allow",
                "Action": ["s3:CreateJob"],
                "Resource": "*",
                "Condition": {"StringEquals": {"s3:RequestJobOperation": "S3PutObjectCopy"}},
            },
            {
                "Sid": "WatchCopyJobs",
                "Effect": "Allow",
                "Action": ["s3:DescribeJob"],
                "Resource": [self._arns.batch_jobs()],
            },
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
        return self._role("step_functions", "states.amazonaws.com", statements)

    def _events_start_batch_copy(self) -> aws.iam.Role:
        """EventBridge: start the batch-copy state machine, nothing else."""
        machine = self._arns.state_machine(self._args.names.batch_copy_state_machine)
        statement = {
            "Sid": "StartBatchCopy",
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": [machine],
        }
        return self._role("events_start_batch_copy", "events.amazonaws.com", [statement])

    def _worker_statements(self) -> list[PolicyStatement]:
        """Dagster workers: read landing, write each zone's table prefixes, read the landing queue."""
        cfg, names, keys, a = self._args.config, self._args.names, self._args.keys, self._arns
        statements: list[PolicyStatement] = [
            {
                "Sid": "ReadLanding",
                "Effect": "Allow",
                "Action": _READ,
                "Resource": [a.objects(names.buckets["raw"], "landing/")],
            }
        ]
        for zone, prefixes in zone_prefixes(self._args.datasets).items():
            statements += self._zone_table_statements(zone, prefixes)
        statements += [
            {
                "Sid": "UseZoneKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [keys.raw.arn, keys.trusted.arn, keys.refined.arn],
                "Condition": self._via_s3,
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

    def _zone_table_statements(self, zone: str, prefixes: list[str]) -> list[PolicyStatement]:
        """List the zone's table prefixes (raw also `landing/`) and read/write their objects."""
        bucket, a = self._args.names.buckets[zone], self._arns
        listed = ["landing/*", *(f"{p}*" for p in prefixes)] if zone == "raw" else [f"{p}*" for p in prefixes]
        listing: PolicyStatement = {
            "Sid": f"List{zone.capitalize()}",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [a.bucket(bucket)],
        }
        if prefixes != [""]:
            listing["Condition"] = {"StringLike": {"s3:prefix": listed}}
        return [
            listing,
            {
                "Sid": f"ReadWrite{zone.capitalize()}Tables",
                "Effect": "Allow",
                "Action": [*_READ, *_WRITE, "s3:DeleteObject"],
                "Resource": [a.objects(bucket, p) for p in prefixes],
            },
        ]

    def _role(self, key: str, service: str, statements: list[PolicyStatement]) -> aws.iam.Role:
        cfg, names = self._args.config, self._args.names
        role_name = names.roles.get(key, f"{names.project}-{names.stack}-{key.replace('_', '-')}")
        former = key.replace("_", "-")  # the child names before the `<component>-` prefix: aliased, stacks keep them
        slug = f"{self._name}-{former}"
        role = aws.iam.Role(
            f"{slug}-role",
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
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{former}-role")]),
        )
        aws.iam.RolePolicy(
            f"{slug}-policy",
            name=f"{role_name}-least-privilege",
            role=role.id,
            policy=policy_json(*statements),
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{former}-policy")]),
        )
        return role
