"""Customer-managed KMS keys, one per blast radius, all with yearly rotation.

- `raw`: the raw and staging buckets and Firehose output (source-faithful data).
- `curated`: the trusted and refined buckets (separate from raw, as the architecture requires).
- `streams`: the Kinesis streams.
- `events`: the SQS queues fed by EventBridge (its key policy lets EventBridge encrypt).
- `logs`: CloudWatch log groups (flow logs, Firehose, Step Functions).
"""

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import policy_json, tags
from infra_pulumi.config import InfraConfig

__all__ = ["Keys"]


class Keys(pulumi.ComponentResource):
    """The project's KMS keys and their aliases (`alias/<project>-<stack>-<purpose>`)."""

    def __init__(self, name: str, config: InfraConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("medallion:infra:Keys", name, None, opts)
        self._config = config
        root = f"arn:aws:iam::{config.account_id}:root"
        self._admin = {
            "Sid": "AccountAdministersKeyThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        }
        log_groups = f"arn:aws:logs:{config.region}:{config.account_id}:log-group:*"
        logs_service = {
            "Sid": "CloudWatchLogsEncryptsProjectLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        }
        events_service = {
            "Sid": "EventBridgeEncryptsProjectQueues",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": config.account_id}},
        }
        self.raw = self._key("raw", "raw and staging buckets, Firehose output")
        self.curated = self._key("curated", "trusted and refined buckets")
        self.streams = self._key("streams", "Kinesis data streams")
        self.events = self._key("events", "landing event queues", events_service)
        self.logs = self._key("logs", "CloudWatch log groups", logs_service)
        self.register_outputs({k: getattr(self, k).arn for k in ("raw", "curated", "streams", "events", "logs")})

    def _key(self, purpose: str, description: str, *service_statements: dict) -> aws.kms.Key:
        cfg = self._config
        key = aws.kms.Key(
            f"{purpose}-key",
            description=f"{cfg.project}-{cfg.stack}: {description}",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=policy_json(self._admin, *service_statements),
            tags=tags(cfg, purpose=purpose),
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect),
        )
        aws.kms.Alias(
            f"{purpose}-key-alias",
            name=f"alias/{cfg.project}-{cfg.stack}-{purpose}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key
