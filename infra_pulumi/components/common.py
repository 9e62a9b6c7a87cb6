"""Small shared pieces: ARNs built from names, policy documents, tags.

ARNs are built from the names in `medallion_platform.naming` so layers can refer to each other
without a dependency cycle (a role policy names a stream that the streaming layer creates later).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra_pulumi.config import InfraConfig

__all__ = [
    "Arns",
    "CarveOut",
    "PolicyStatement",
    "deny_for_principal",
    "deny_outside_endpoints",
    "log_group_name",
    "policy_json",
    "tags",
    "zone_prefixes",
]

PolicyStatement = dict[str, Any]
"""One IAM policy statement in its JSON form (`Sid`, `Effect`, `Action`, ...); values may hold Outputs."""


class Arns:
    """ARNs of the project's resources, derived from names, the account and the region."""

    def __init__(self, config: InfraConfig) -> None:
        self.account = config.account_id
        self.region = config.region

    def bucket(self, name: str) -> str:
        """ARN of a bucket (no account or region in S3 ARNs)."""
        return f"arn:aws:s3:::{name}"

    def objects(self, name: str, prefix: str = "") -> str:
        """ARN of the objects of a bucket under `prefix` (e.g. `landing/`)."""
        return f"arn:aws:s3:::{name}/{prefix}*"

    def role(self, name: str) -> str:
        """ARN of an IAM role in the project account."""
        return f"arn:aws:iam::{self.account}:role/{name}"

    def stream(self, name: str) -> str:
        """ARN of a Kinesis data stream."""
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{name}"

    def delivery_stream(self, name: str) -> str:
        """ARN of a Firehose delivery stream."""
        return f"arn:aws:firehose:{self.region}:{self.account}:deliverystream/{name}"

    def queue(self, name: str) -> str:
        """ARN of an SQS queue."""
        return f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def state_machine(self, name: str) -> str:
        """ARN of a Step Functions state machine."""
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    def executions(self, name: str) -> str:
        """ARN pattern of the executions of a state machine."""
        return f"arn:aws:states:{self.region}:{self.account}:execution:{name}:*"

    def log_group(self, name: str) -> str:
        """ARN of a CloudWatch log group and its streams."""
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}:*"

    def keys(self) -> str:
        """ARN pattern of the account's KMS keys in the region."""
        return f"arn:aws:kms:{self.region}:{self.account}:key/*"

    def batch_jobs(self) -> str:
        """ARN pattern of the account's S3 Batch Operations jobs."""
        return f"arn:aws:s3:{self.region}:{self.account}:job/*"


def policy_json(*statements: PolicyStatement) -> pulumi.Output[str]:
    """An IAM policy document (JSON) from statements that may hold Outputs."""
    return pulumi.Output.from_input(list(statements)).apply(
        lambda stmts: json.dumps({"Version": "2012-10-17", "Statement": stmts}, sort_keys=True)
    )


@dataclass(frozen=True)
class CarveOut:
    """A principal allowed from outside the project's endpoints; `actions` None = every action, else only those."""

    label: str
    arn: Any
    actions: tuple[str, ...] | None = None


def deny_outside_endpoints(
    service: str,
    resources: Sequence[Any],
    endpoint_ids: Sequence[Any],
    carve_outs: Sequence[CarveOut],
    *,
    extra_exemptions: dict[str, dict[str, Any]] | None = None,
) -> list[PolicyStatement]:
    """Resource-policy statements denying `service:*` unless the request came through `endpoint_ids`.

    With no `endpoint_ids` the Deny covers every request (a resource no endpoint serves). The named
    carve-outs are exempt: whole (`actions` None), or only for their `actions` (a second Deny with
    `NotAction` catches the rest). AWS service principals (log delivery, EventBridge) stay exempt via
    `aws:PrincipalIsAWSService`. `extra_exemptions` adds conditions (e.g. Databricks' own principal account).
    """
    outside = {"StringNotEquals": {"aws:SourceVpce": list(endpoint_ids)}} if endpoint_ids else {}
    statements: list[PolicyStatement] = [
        {
            "Sid": "DenyOutsideProjectVpcEndpoints" if endpoint_ids else "DenyAllButNamedPrincipals",
            "Effect": "Deny",
            "Principal": "*",
            "Action": f"{service}:*",
            "Resource": list(resources),
            "Condition": _merge_conditions(
                outside,
                extra_exemptions or {},
                {
                    "ArnNotEquals": {"aws:PrincipalArn": [c.arn for c in sorted(carve_outs, key=lambda c: c.label)]},
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            ),
        }
    ]
    for carve in sorted(carve_outs, key=lambda c: c.label):
        if carve.actions is None:
            continue
        statements.append(
            {
                "Sid": "Limit" + "".join(w.capitalize() for w in carve.label.split("_")) + "OutsideEndpoints",
                "Effect": "Deny",
                "Principal": "*",
                "NotAction": list(carve.actions),
                "Resource": list(resources),
                "Condition": {**outside, "ArnEquals": {"aws:PrincipalArn": carve.arn}},
            }
        )
    return statements


def deny_for_principal(
    sid: str, principal_arn: Any, actions: Sequence[str], resources: Sequence[Any]
) -> PolicyStatement:
    """A Deny of `actions` on `resources` for one principal, wherever the request comes from."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(actions),
        "Resource": list(resources),
        "Condition": {"ArnEquals": {"aws:PrincipalArn": principal_arn}},
    }


def _merge_conditions(*conditions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One IAM Condition block from several (keys under the same operator are combined, all must hold)."""
    merged: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        for operator, keys in condition.items():
            merged.setdefault(operator, {}).update(keys)
    return merged


def tags(config: InfraConfig, **extra: str) -> dict[str, str]:
    """Tags every resource carries: project, stack, and optional zone/layer."""
    return {"project": config.project, "stack": config.stack, "managed-by": "pulumi", **extra}


def log_group_name(config: InfraConfig, purpose: str) -> str:
    """Name of a project log group; vended-log prefix keeps the logs resource policy small."""
    return f"/aws/vendedlogs/{config.project}/{config.stack}/{purpose}"


def zone_prefixes(datasets: list[str]) -> dict[str, list[str]]:
    """Object prefixes the Dagster workers write per zone (tables at `<zone_root>/<table>/`).

    Raw and trusted tables are named after the contracts (trusted also keeps `<dataset>_quarantine`);
    refined tables come from code, so the worker gets the whole refined bucket.
    """
    return {
        "raw": [f"{d}/" for d in datasets],
        "trusted": [p for d in datasets for p in (f"{d}/", f"{d}_quarantine/")],
        "refined": [""],
    }
