"""Kinesis streams must be encrypted with a customer-managed key, not the AWS-managed alias/aws/kinesis."""

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class KinesisStreamUsesCustomerManagedKey(BaseResourceCheck):
    """encryption_type KMS and a kms_key_id that is not an alias/aws/* key."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the Kinesis stream is encrypted with a customer-managed KMS key (not alias/aws/*)",
            id="CKV_MDL_3",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_kinesis_stream"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        encryption = (conf.get("encryption_type") or [None])[0]
        key = (conf.get("kms_key_id") or [None])[0]
        if isinstance(key, list):  # a restored reference: ["aws_kms_key.x.arn"]
            key = key[0] if key else None
        if encryption != "KMS" or not key:
            return CheckResult.FAILED
        if str(key).startswith("alias/aws/") or ":alias/aws/" in str(key):
            return CheckResult.FAILED
        return CheckResult.PASSED


check = KinesisStreamUsesCustomerManagedKey()
