"""Storage: the raw, trusted, refined, staging and access-log buckets (and the Databricks root bucket), locked down.

Every bucket: ACLs disabled, public access blocked, versioning with noncurrent versions expired after
`retention.noncurrentVersionDays` (at most 7), incomplete uploads aborted, access logs, and a policy
that denies plain HTTP and any request that did not come through the bucket's own endpoints (its zone's
S3 interface endpoint, and for the zones the compute gateway endpoint), except for named carve-outs:
service roles whose requests cannot (Firehose, S3 Batch Operations), the break-glass role, the deployer
(bucket configuration only) and Unity Catalog (its data actions only; raw read-only). Data buckets use
their own customer-managed key with an S3 bucket key and refuse SSE-C.
"""

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, CarveOut, PolicyStatement, deny_outside_endpoints, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ResourceNames

__all__ = ["BUCKET_CONFIG_ACTIONS", "BUCKET_ROLES", "EVENT_BUCKETS", "Storage"]

BUCKET_ROLES = ("raw", "trusted", "refined", "staging", "access_logs")
EVENT_BUCKETS = ("raw", "staging")
"""Buckets that send "Object Created" events to EventBridge (landing sensor, batch copy)."""
BUCKET_CONFIG_ACTIONS = ("s3:*Bucket*", "s3:*Configuration")
"""What the deploy role may do from outside the endpoints: bucket settings (policy, versioning, lifecycle,
encryption, logging, notifications, tags; HeadBucket needs s3:ListBucket), never object reads or writes."""


class Storage(pulumi.ComponentResource):
    """The five buckets and everything that secures them."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        endpoint_ids: Mapping[str, Sequence[pulumi.Input[str]]],
        carve_outs: Mapping[str, Sequence[CarveOut]],
        extra_statements: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Per bucket role: the endpoints it accepts, the principals allowed from outside them, and (e.g. for
        the Databricks root bucket, role `databricks_root`, given in `names.buckets`) a JSON policy to merge in."""
        super().__init__("medallion:infra:Storage", name, None, opts)
        self._config, self._names, self._arns = config, names, Arns(config)
        # SSE-S3 where the writer cannot use our keys: S3 log delivery, and Databricks' control plane on the
        # workspace root bucket (a customer key there is a separate Databricks storage-key configuration)
        bucket_keys = {**keys.data, "access_logs": None, "databricks_root": None}
        self.buckets: dict[str, aws.s3.Bucket] = {}
        extra = extra_statements or {}
        self.access_logs = self._bucket("access_logs", None, [], carve_outs.get("access_logs", []))
        roles = [r for r in names.buckets if r != "access_logs"]
        for role in roles:
            self.buckets[role] = self._bucket(
                role, bucket_keys[role], endpoint_ids.get(role, []), carve_outs.get(role, []), extra.get(role)
            )
        self.buckets["access_logs"] = self.access_logs
        self.register_outputs({f"{r}_bucket": b.bucket for r, b in self.buckets.items()})

    def _bucket(
        self,
        role: str,
        key: aws.kms.Key | None,
        endpoint_ids: Sequence[pulumi.Input[str]],
        carve_outs: Sequence[CarveOut],
        extra_policy: pulumi.Input[str] | None = None,
    ) -> aws.s3.Bucket:
        cfg, name = self._config, self._names.buckets[role]
        slug = role.replace("_", "-")
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{slug}-bucket",
            bucket=name,
            force_destroy=False,
            tags=tags(cfg, zone=role),
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect),
        )
        aws.s3.BucketOwnershipControls(
            f"{slug}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{slug}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # Server access logs can only be delivered to an SSE-S3 bucket; every other bucket uses its CMK.
        default: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn}
            if key is not None
            else {"sse_algorithm": "AES256"}
        )
        encryption_rule: aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict = {
            "apply_server_side_encryption_by_default": default,
            "bucket_key_enabled": key is not None,
            "blocked_encryption_types": ["SSE-C"],
        }
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{slug}-encryption",
            bucket=bucket.id,
            rules=[encryption_rule],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{slug}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{slug}-lifecycle",
            bucket=bucket.id,
            rules=self._lifecycle_rules(role),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        if role != "access_logs":
            aws.s3.BucketLogging(
                f"{slug}-logging",
                bucket=bucket.id,
                target_bucket=self.access_logs.id,
                target_prefix=f"{name}/",
                target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
                opts=child,
            )
        if role in EVENT_BUCKETS:
            aws.s3.BucketNotification(f"{slug}-eventbridge", bucket=bucket.id, eventbridge=True, opts=child)
        aws.s3.BucketPolicy(
            f"{slug}-policy",
            bucket=bucket.id,
            policy=self._policy(role, endpoint_ids, carve_outs, extra_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )
        return bucket

    def _lifecycle_rules(self, role: str) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
        cfg = self._config
        everything: aws.s3.BucketLifecycleConfigurationRuleFilterArgsDict = {"prefix": ""}
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": everything,
                "abort_incomplete_multipart_upload": {"days_after_initiation": 2},
            },
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": everything,
                "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_days},
            },
            {
                "id": "remove-expired-delete-markers",
                "status": "Enabled",
                "filter": everything,
                "expiration": {"expired_object_delete_marker": True},
            },
        ]
        expiring = {
            "raw": [("landing", "landing/", cfg.landing_retention_days), ("errors", "errors/", cfg.log_retention_days)],
            "staging": [("exports", "", cfg.landing_retention_days)],
            "access_logs": [("logs", "", cfg.log_retention_days)],
        }
        for label, prefix, days in expiring.get(role, []):
            rules.append(
                {
                    "id": f"{label}-retention",
                    "status": "Enabled",
                    "filter": {"prefix": prefix},
                    "expiration": {"days": days},
                }
            )
        return rules

    def _policy(
        self,
        role: str,
        endpoint_ids: Sequence[pulumi.Input[str]],
        carve_outs: Sequence[CarveOut],
        extra_policy: pulumi.Input[str] | None,
    ) -> pulumi.Output[str]:
        name = self._names.buckets[role]
        resources = [self._arns.bucket(name), self._arns.objects(name)]
        statements: list[PolicyStatement] = [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
        # No endpoint serves the access logs: there the Deny covers every request but the carve-outs'.
        statements += deny_outside_endpoints("s3", resources, endpoint_ids, carve_outs, **self._exempt(role))
        if role == "access_logs":
            statements.append(self._log_delivery(name))
        document = policy_json(*statements)
        if extra_policy is None:
            return document
        return pulumi.Output.all(document, extra_policy).apply(lambda docs: _merge_policies(*docs))

    def _exempt(self, role: str) -> dict:
        """The Databricks root bucket is also used by Databricks' control plane, from its own account."""
        if role != "databricks_root":
            return {}
        account = self._config.databricks.aws_account_id
        return {"extra_exemptions": {"StringNotEquals": {"aws:PrincipalAccount": account}}}

    def _log_delivery(self, name: str) -> PolicyStatement:
        return {
            "Sid": "S3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": self._arns.objects(name),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": self._config.account_id},
                "ArnLike": {
                    "aws:SourceArn": [
                        self._arns.bucket(b) for r, b in self._names.buckets.items() if r != "access_logs"
                    ]
                },
            },
        }


def _merge_policies(*documents: str) -> str:
    """One policy document with the statements of all `documents` (JSON)."""
    statements = [stmt for doc in documents for stmt in json.loads(doc)["Statement"]]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
