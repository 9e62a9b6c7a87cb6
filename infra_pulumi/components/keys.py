"""Customer-managed KMS keys, one per blast radius, all with yearly rotation.

- `raw`, `trusted`, `refined`: one key per data zone (its bucket, and for raw the Firehose output).
- `staging`: the on-premises exports bucket.
- `streams`: the Kinesis streams. `events`: the SQS queues fed by EventBridge. `logs`: CloudWatch log groups.

Every key policy separates administrators from users. The deploy role and the break-glass role
administer (create, describe, rotate, change the policy, schedule deletion) and cannot use the key for
data. Users are named per key: the data-zone keys name the roles that read or write the zone
(`aws:PrincipalArn`, so the policy can be written before those roles exist), each only through S3
(`kms:ViaService`). Keys whose users are not known roles (staging uploaders, stream producers) delegate
use to IAM, but only through the one service the key serves.
"""

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import PolicyStatement, policy_json, tags
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ZONES, ResourceNames

__all__ = ["ADMIN_ACTIONS", "DATA_KEYS", "KEY_USERS", "USE_ACTIONS", "Keys"]

ADMIN_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
)
"""Key administration without Encrypt/Decrypt/GenerateDataKey/ReEncrypt."""
USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
DATA_KEYS = (*ZONES, "staging")
"""Keys that encrypt a data bucket (one per zone, and staging)."""


KEY_USERS: dict[str, tuple[str, ...]] = {
    "raw": ("firehose", "batch_operations", "dagster_worker", "unity_catalog"),
    "trusted": ("dagster_worker", "unity_catalog"),
    "refined": ("dagster_worker", "unity_catalog"),
    "staging": ("batch_operations",),
}
"""Roles (`names.roles` keys) allowed to use each data key, as the IAM layer grants them."""


class Keys(pulumi.ComponentResource):
    """The project's KMS keys and their aliases (`alias/<project>-<stack>-<purpose>`)."""

    def __init__(
        self, name: str, config: InfraConfig, names: ResourceNames, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("medallion:infra:Keys", name, None, opts)
        self._config = config
        # role ARNs from names: the roles are created later by the IAM layer (conditions need no existing principal)
        users = {
            key: [f"arn:aws:iam::{config.account_id}:role/{names.roles[r]}" for r in roles]
            for key, roles in KEY_USERS.items()
        }
        self.raw = self._key("raw", "raw bucket and Firehose output", self._role_users(users["raw"]))
        # The former shared `curated` key becomes the trusted key (aliased, so stacks keep it and its data);
        # refined objects written under it stay readable, the same roles use both keys, until rewritten.
        self.trusted = self._key("trusted", "trusted bucket", self._role_users(users["trusted"]), former="curated")
        self.refined = self._key("refined", "refined bucket", self._role_users(users["refined"]))
        self.staging = self._key(
            "staging", "on-premises exports (staging bucket)", self._role_users(users["staging"]), self._iam_users("s3")
        )
        self.streams = self._key("streams", "Kinesis data streams", self._iam_users("kinesis", "firehose"))
        self.events = self._key("events", "landing event queues", self._events_service(), self._iam_users("sqs"))
        self.logs = self._key("logs", "CloudWatch log groups", self._logs_service())
        self.data: Mapping[str, aws.kms.Key] = {z: getattr(self, z) for z in DATA_KEYS}
        self.register_outputs({k: getattr(self, k).arn for k in (*DATA_KEYS, "streams", "events", "logs")})

    def _admins(self) -> PolicyStatement:
        cfg = self._config
        return {
            "Sid": "AdministratorsManageButDoNotUse",
            "Effect": "Allow",
            "Principal": {"AWS": [cfg.deploy_role_arn, cfg.break_glass_role_arn]},
            "Action": list(ADMIN_ACTIONS),
            "Resource": "*",
        }

    def _role_users(self, arns: Sequence[str]) -> PolicyStatement:
        """Named roles use the key through S3 (the principal is the account; the role is the condition)."""
        cfg = self._config
        return {
            "Sid": "NamedRolesUseThroughS3",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{cfg.account_id}:root"},
            "Action": list(USE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": sorted(arns)},
                "StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"},
            },
        }

    def _iam_users(self, *services: str) -> PolicyStatement:
        """Account principals whose IAM policy allows it, only through `services` (e.g. "s3")."""
        cfg = self._config
        via = [f"{s}.{cfg.region}.amazonaws.com" for s in services]
        return {
            "Sid": "AccountPrincipalsUseThroughService",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{cfg.account_id}:root"},
            "Action": list(USE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": cfg.account_id, "kms:ViaService": via}},
        }

    def _events_service(self) -> PolicyStatement:
        return {
            "Sid": "EventBridgeEncryptsProjectQueues",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": self._config.account_id}},
        }

    def _logs_service(self) -> PolicyStatement:
        cfg = self._config
        return {
            "Sid": "CloudWatchLogsEncryptsProjectLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{cfg.region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{cfg.region}:{cfg.account_id}:log-group:*"
                }
            },
        }

    def _key(
        self, purpose: str, description: str, *use_statements: PolicyStatement, former: str | None = None
    ) -> aws.kms.Key:
        cfg = self._config
        aliases = [pulumi.Alias(name=f"{former}-key")] if former else []
        key = aws.kms.Key(
            f"{purpose}-key",
            description=f"{cfg.project}-{cfg.stack}: {description}",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=policy_json(self._admins(), *use_statements),
            tags=tags(cfg, purpose=purpose),
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, aliases=aliases),
        )
        aws.kms.Alias(
            f"{purpose}-key-alias",
            name=f"alias/{cfg.project}-{cfg.stack}-{purpose}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key
