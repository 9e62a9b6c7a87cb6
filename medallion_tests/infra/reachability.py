"""Which subnet reaches which bucket, computed from the recorded resources alone.

A subnet reaches a bucket when some S3 path exists and every policy on it lets an ordinary principal of
the account (a role that is no carve-out) read, write or list the bucket:

- route tables: the subnet's table (its association) carries an S3 gateway endpoint; or an S3 interface
  endpoint sits in the same VPC (local route), in a VPC the table routes to over peering, or, for
  on-premises, in the VPN's VPC;
- the endpoint's security groups admit TCP 443 from the subnet's CIDR (interface endpoints);
- the endpoint policy allows the request (no policy: AWS's default full access);
- the bucket policy does not deny it (an own-account principal needs no Allow there).

The policy evaluator understands the condition operators the program uses and fails on any other, so
a new kind of condition cannot silently count as "passes".
"""

import fnmatch
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from infra_pulumi.mocks import Recorded, Recording

__all__ = ["Source", "allows", "bucket_names", "matrix", "paths", "sources"]

EC2 = "aws:ec2/"
REQUESTS = (("s3:GetObject", "object"), ("s3:PutObject", "object"), ("s3:ListBucket", "bucket"))


@dataclass(frozen=True)
class Source:
    """Where requests start: a subnet of the program, or on-premises (over the VPN)."""

    name: str
    cidr: str
    vpc_id: str
    route_table_id: str | None


def sources(recording: Recording, on_prem_cidrs: tuple[str, ...] = ()) -> dict[str, Source]:
    """Every subnet of the recording (by logical name), and `on-prem` when a VPN exists."""
    tables = {
        a.inputs["subnetId"]: a.inputs["routeTableId"]
        for a in recording.of_type(f"{EC2}routeTableAssociation:RouteTableAssociation")
    }
    found = {
        s.name: Source(s.name, s.inputs["cidrBlock"], s.inputs["vpcId"], tables.get(s.id))
        for s in recording.of_type(f"{EC2}subnet:Subnet")
    }
    gateways = recording.of_type(f"{EC2}vpnGateway:VpnGateway")
    if gateways and on_prem_cidrs:
        found["on-prem"] = Source("on-prem", on_prem_cidrs[0], gateways[0].inputs["vpcId"], None)
    return found


def bucket_names(recording: Recording) -> dict[str, str]:
    """Bucket name by role (`raw`, ..., `access_logs`, `databricks_root`), from the stack outputs."""
    return {k.removesuffix("_bucket"): v for k, v in recording.outputs.items() if k.endswith("_bucket")}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


_POSITIVE = {
    "StringEquals": lambda want, got: got in want,
    "StringLike": lambda want, got: any(_like(w, got) for w in want),
    "ArnEquals": lambda want, got: got in want,
    "ArnLike": lambda want, got: any(_like(w, got) for w in want),
    "Bool": lambda want, got: str(got).lower() in [str(w).lower() for w in want],
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        base, if_exists = operator.removesuffix("IfExists"), operator.endswith("IfExists")
        for key, want in keys.items():
            got = context.get(key)
            if got is None:
                if if_exists or base in _NEGATED:
                    continue  # a missing key satisfies IfExists and negated operators, as in IAM
                return False
            want = [str(w) for w in _as_list(want)]
            if base in _POSITIVE:
                ok = _POSITIVE[base](want, got)
            elif base in _NEGATED:
                ok = not _POSITIVE[_NEGATED[base]](want, got)
            else:
                raise NotImplementedError(f"condition operator {operator} is not modelled: extend reachability.py")
            if not ok:
                return False
    return True


def _principal_matches(principal: Any, arn: str, account: str) -> bool:
    if principal in ("*", {"AWS": "*"}):
        return True
    if not isinstance(principal, dict) or "AWS" not in principal:
        return False  # a service principal: never an ordinary role
    return any(p in (arn, account, f"arn:aws:iam::{account}:root") for p in _as_list(principal["AWS"]))


def _matches(stmt: dict[str, Any], action: str, resource: str, context: dict[str, str], account: str) -> bool:
    if "Action" in stmt and not any(_like(a, action) for a in _as_list(stmt["Action"])):
        return False
    if "NotAction" in stmt and any(_like(a, action) for a in _as_list(stmt["NotAction"])):
        return False
    if "Resource" in stmt and not any(_like(r, resource) for r in _as_list(stmt["Resource"])):
        return False
    if "NotResource" in stmt and any(_like(r, resource) for r in _as_list(stmt["NotResource"])):
        return False
    if "Principal" in stmt and not _principal_matches(stmt["Principal"], context["aws:PrincipalArn"], account):
        return False
    return _condition_holds(stmt.get("Condition", {}), context)


def allows(document: str | None, action: str, resource: str, context: dict[str, str], *, need_allow: bool) -> bool:
    """IAM evaluation of one policy: an explicit Deny wins; with `need_allow`, an Allow must match."""
    if document is None:
        return True  # no endpoint policy: AWS's default full access
    account = context["aws:PrincipalAccount"]
    stmts = _as_list(json.loads(document)["Statement"])
    if any(s["Effect"] == "Deny" and _matches(s, action, resource, context, account) for s in stmts):
        return False
    return not need_allow or any(
        s["Effect"] == "Allow" and _matches(s, action, resource, context, account) for s in stmts
    )


def _sg_admits(recording: Recording, sg_ids: list[str], cidr: str) -> bool:
    source = ipaddress.ip_network(cidr)
    for sg in recording.of_type(f"{EC2}securityGroup:SecurityGroup"):
        if sg.id not in sg_ids:
            continue
        for rule in sg.inputs.get("ingress", []):
            ports = rule["protocol"] in ("tcp", "-1") and rule["fromPort"] <= 443 <= rule["toPort"]
            if ports and any(source.subnet_of(ipaddress.ip_network(c)) for c in rule.get("cidrBlocks", [])):
                return True
    return False


def _routes_to_vpc(recording: Recording, source: Source, vpc_id: str) -> bool:
    """Same VPC (local route), on-premises into the VPN's VPC, or a peering route from the source's table."""
    if source.vpc_id == vpc_id:
        return True
    peerings = {p.id: p.inputs for p in recording.of_type(f"{EC2}vpcPeeringConnection:VpcPeeringConnection")}
    for route in recording.of_type(f"{EC2}route:Route"):
        peering = peerings.get(route.inputs.get("vpcPeeringConnectionId", ""))
        if (
            route.inputs["routeTableId"] == source.route_table_id
            and peering
            and vpc_id
            in (
                peering["vpcId"],
                peering["peerVpcId"],
            )
        ):
            return True
    return False


def _usable_endpoints(recording: Recording, source: Source) -> list[Recorded]:
    """The S3 endpoints the source's packets can reach."""
    usable = []
    for ep in recording.of_type(f"{EC2}vpcEndpoint:VpcEndpoint"):
        if not ep.inputs["serviceName"].endswith(".s3"):
            continue
        if ep.inputs["vpcEndpointType"] == "Gateway":
            if source.route_table_id is not None and source.route_table_id in ep.inputs.get("routeTableIds", []):
                usable.append(ep)
        elif _routes_to_vpc(recording, source, ep.inputs["vpcId"]) and _sg_admits(
            recording, ep.inputs.get("securityGroupIds", []), source.cidr
        ):
            usable.append(ep)
    return usable


def paths(recording: Recording, source: Source, bucket: str, account: str) -> list[str]:
    """The endpoints (logical names) through which `source` can reach `bucket`; empty: unreachable."""
    policies = {p.inputs["bucket"]: p.inputs["policy"] for p in recording.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    principal = f"arn:aws:iam::{account}:role/an-ordinary-workload-role"
    found = []
    for ep in _usable_endpoints(recording, source):
        context = {
            "aws:PrincipalAccount": account,
            "aws:PrincipalArn": principal,
            "aws:SourceVpce": ep.id,
            "aws:SecureTransport": "true",
            "aws:PrincipalIsAWSService": "false",
        }
        for action, kind in REQUESTS:
            resource = f"arn:aws:s3:::{bucket}/some/key" if kind == "object" else f"arn:aws:s3:::{bucket}"
            if allows(ep.inputs.get("policy"), action, resource, context, need_allow=True) and allows(
                policies.get(bucket), action, resource, context, need_allow=False
            ):
                found.append(ep.name)
                break
    return found


def matrix(recording: Recording, account: str, on_prem_cidrs: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Source name -> the bucket roles it reaches."""
    buckets = bucket_names(recording)
    return {
        name: {role for role, bucket in buckets.items() if paths(recording, source, bucket, account)}
        for name, source in sources(recording, on_prem_cidrs).items()
    }
