"""Bucket policies must deny plain HTTP and deny requests that do not come through a VPC endpoint."""

import json
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _statements(conf: dict[str, Any]) -> list[dict[str, Any]]:
    policy = conf.get("policy", [None])
    policy = policy[0] if isinstance(policy, list) else policy
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError:
            return []
    if not isinstance(policy, dict):
        return []
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _denies_everyone_everything(stmt: dict[str, Any]) -> bool:
    return (
        stmt.get("Effect") == "Deny"
        and stmt.get("Principal") in ("*", {"AWS": "*"})
        and any(a in ("s3:*", "*") for a in _as_list(stmt.get("Action", [])))
    )


class S3PolicyDeniesInsecureTransport(BaseResourceCheck):
    """A Deny of s3:* for everyone when aws:SecureTransport is false."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the S3 bucket policy denies requests without TLS (aws:SecureTransport false)",
            id="CKV_MDL_1",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_s3_bucket_policy"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        for stmt in _statements(conf):
            bool_cond = stmt.get("Condition", {}).get("Bool", {})
            if _denies_everyone_everything(stmt) and str(bool_cond.get("aws:SecureTransport")).lower() == "false":
                return CheckResult.PASSED
        return CheckResult.FAILED


class S3PolicyDeniesOutsideVpcEndpoints(BaseResourceCheck):
    """A Deny of s3:* for everyone whose request did not come through one of the listed VPC endpoints."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the S3 bucket policy denies requests that do not come through the project's VPC endpoints",
            id="CKV_MDL_2",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["aws_s3_bucket_policy"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        for stmt in _statements(conf):
            condition = stmt.get("Condition", {})
            for operator in ("StringNotEquals", "StringNotEqualsIfExists"):
                endpoints = condition.get(operator, {}).get("aws:SourceVpce")
                if (
                    _denies_everyone_everything(stmt)
                    and endpoints
                    and all(str(e).startswith("vpce-") for e in _as_list(endpoints))
                ):
                    return CheckResult.PASSED
        return CheckResult.FAILED


check_tls = S3PolicyDeniesInsecureTransport()
check_vpce = S3PolicyDeniesOutsideVpcEndpoints()
