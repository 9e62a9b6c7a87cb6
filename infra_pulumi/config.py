"""The stack's configuration: one frozen object, read once from `Pulumi.<stack>.yaml`.

`InfraConfig.from_values` turns the `config:` mapping of a stack file (keys such as `aws:region` and
`medallion:network`) into the typed object; `load_config` feeds it from `pulumi.Config` when the real
CLI runs the program. Tests build the object directly or from the stack files, so the same parser
serves the CLI, the tests and the scan.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from medallion_platform.settings import ConfigError

__all__ = [
    "DATABRICKS_AMI_OWNER",
    "ConfigError",
    "DatabricksConfig",
    "InfraConfig",
    "NetworkConfig",
    "VpnConfig",
    "load_config",
]

_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")
MAX_NONCURRENT_DAYS = 7
DATABRICKS_AMI_OWNER = "601306020600"
"""The AWS account that owns the Databricks runtime images (the image-owner condition of the cross-account role)."""
REGIONAL_BUCKET_KINDS = ("artifacts", "logs", "systemTables", "datasets")
"""Databricks' own regional buckets that clusters without internet reach through the S3 gateway endpoint."""


def _subnet_of(
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, vpc: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> bool:
    """`subnet.subnet_of(vpc)` with both sides narrowed to one IP version (mixed versions: TypeError, as ipaddress)."""
    if isinstance(subnet, ipaddress.IPv4Network) and isinstance(vpc, ipaddress.IPv4Network):
        return subnet.subnet_of(vpc)
    if isinstance(subnet, ipaddress.IPv6Network) and isinstance(vpc, ipaddress.IPv6Network):
        return subnet.subnet_of(vpc)
    raise TypeError(f"{subnet} and {vpc} are not of the same version")


@dataclass(frozen=True)
class NetworkConfig:
    """CIDRs and zones of the two VPCs. Subnets 1 and 2 (raw, trusted) sit in VPC 1, subnet 3 (refined) in VPC 2."""

    vpc1_cidr: str
    vpc2_cidr: str
    availability_zones: tuple[str, str]
    subnet1_cidr: str
    subnet2_cidr: str
    subnet3_cidr: str
    databricks_subnet_cidrs: tuple[str, str]
    endpoint_subnet_cidrs: tuple[str, str]
    """VPC 1 subnets (two AZs) that hold the shared interface endpoints and the Route 53 Resolver."""
    vpc2_endpoint_subnet_cidr: str
    """The VPC 2 subnet that holds its STS endpoint."""


@dataclass(frozen=True)
class VpnConfig:
    """Site-to-site VPN to VPC 1. Off when `customer_gateway_ip` is empty."""

    customer_gateway_ip: str
    bgp_asn: int
    on_prem_cidrs: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        """True when a customer gateway is configured."""
        return bool(self.customer_gateway_ip)


@dataclass(frozen=True)
class DatabricksConfig:
    """What Databricks publishes per account and region (see infra_pulumi/README.md for where to find each)."""

    account_id: str
    """Databricks account id: the external id of the cross-account role."""
    aws_account_id: str
    """Databricks' own AWS account, trusted by the cross-account role."""
    unity_catalog_principal_arn: str
    unity_catalog_external_id: str
    workspace_endpoint_service: str
    relay_endpoint_service: str
    regional_buckets: Mapping[str, tuple[str, ...]]
    """Databricks' regional buckets by kind (`REGIONAL_BUCKET_KINDS`), from Databricks' per-region table."""
    register: bool = False
    """Register the workspace and Unity Catalog objects with pulumi-databricks (`databricks.register`)."""
    metastore_id: str = ""
    """The region's Unity Catalog metastore the workspace is assigned to (needed when registering)."""
    client_id: str = ""
    """OAuth client id of the Databricks account service principal that registers (when registering)."""
    client_secret: Any = None
    """Its secret: `pulumi config set --secret medallion:databricksClientSecret` (a Pulumi secret)."""
    platform_principal: str = ""
    """The platform's own principal (application id), the only reader of raw (`MEDALLION_PLATFORM_PRINCIPAL`)."""
    catalog: str = "medallion"

    def buckets(self, *kinds: str) -> list[str]:
        """Regional bucket names of the given kinds (all kinds when none is given)."""
        return [b for kind in (kinds or REGIONAL_BUCKET_KINDS) for b in self.regional_buckets.get(kind, ())]


@dataclass(frozen=True)
class InfraConfig:
    """Everything a stack may vary. Stacks differ only in these values, never in code."""

    stack: str
    project: str
    region: str
    account_id: str
    deploy_role_arn: str
    break_glass_role_arn: str
    network: NetworkConfig
    vpn: VpnConfig
    databricks: DatabricksConfig
    landing_retention_days: int
    noncurrent_version_days: int
    log_retention_days: int
    kinesis_retention_hours: int
    protect: bool
    """Protect stateful resources (buckets, keys) from `pulumi destroy`."""

    @classmethod
    def from_values(cls, stack: str, values: Mapping[str, Any], *, project: str = "medallion") -> "InfraConfig":
        """Parse the `config:` mapping of `Pulumi.<stack>.yaml` (keys `aws:region`, `medallion:...`)."""
        src = f"Pulumi.{stack}.yaml"

        def need(key: str) -> Any:
            value = values.get(key)
            if value is None or value == "":
                raise ConfigError(f"{src}: `{key}` is missing; set it with `pulumi config set {key} <value>`")
            return value

        def field(obj: Mapping[str, Any], parent: str, name: str, default: Any = ...) -> Any:
            if name in obj and obj[name] is not None:
                return obj[name]
            if default is ...:
                raise ConfigError(f"{src}: `{parent}.{name}` is missing; add it under `{parent}:`")
            return default

        p = f"{project}:"
        net = need(p + "network")
        vpn = values.get(p + "vpn") or {}
        dbx = need(p + "databricks")
        ret = values.get(p + "retention") or {}
        cfg = cls(
            stack=stack,
            project=project,
            region=str(need("aws:region")),
            account_id=str(need(p + "accountId")),
            deploy_role_arn=str(need(p + "deployRoleArn")),
            break_glass_role_arn=str(need(p + "breakGlassRoleArn")),
            network=NetworkConfig(
                vpc1_cidr=field(net, p + "network", "vpc1Cidr"),
                vpc2_cidr=field(net, p + "network", "vpc2Cidr"),
                availability_zones=tuple(field(net, p + "network", "availabilityZones")),
                subnet1_cidr=field(net, p + "network", "subnet1Cidr"),
                subnet2_cidr=field(net, p + "network", "subnet2Cidr"),
                subnet3_cidr=field(net, p + "network", "subnet3Cidr"),
                databricks_subnet_cidrs=tuple(field(net, p + "network", "databricksSubnetCidrs")),
                endpoint_subnet_cidrs=tuple(field(net, p + "network", "endpointSubnetCidrs")),
                vpc2_endpoint_subnet_cidr=field(net, p + "network", "vpc2EndpointSubnetCidr"),
            ),
            vpn=VpnConfig(
                customer_gateway_ip=str(field(vpn, p + "vpn", "customerGatewayIp", "")),
                bgp_asn=int(field(vpn, p + "vpn", "bgpAsn", 65000)),
                on_prem_cidrs=tuple(field(vpn, p + "vpn", "onPremCidrs", ())),
            ),
            databricks=DatabricksConfig(
                account_id=str(field(dbx, p + "databricks", "accountId")),
                aws_account_id=str(field(dbx, p + "databricks", "awsAccountId")),
                unity_catalog_principal_arn=str(field(dbx, p + "databricks", "unityCatalogPrincipalArn")),
                unity_catalog_external_id=str(field(dbx, p + "databricks", "unityCatalogExternalId")),
                workspace_endpoint_service=str(field(dbx, p + "databricks", "workspaceEndpointService")),
                relay_endpoint_service=str(field(dbx, p + "databricks", "relayEndpointService")),
                regional_buckets={
                    kind: tuple(field(dbx.get("regionalBuckets") or {}, p + "databricks.regionalBuckets", kind, ()))
                    for kind in REGIONAL_BUCKET_KINDS
                },
                register=bool(field(dbx, p + "databricks", "register", False)),
                metastore_id=str(field(dbx, p + "databricks", "metastoreId", "")),
                client_id=str(field(dbx, p + "databricks", "clientId", "")),
                client_secret=values.get(p + "databricksClientSecret"),
                platform_principal=str(field(dbx, p + "databricks", "platformPrincipal", "")),
                catalog=str(field(dbx, p + "databricks", "catalog", "medallion")),
            ),
            landing_retention_days=int(field(ret, p + "retention", "landingDays", 30)),
            noncurrent_version_days=int(field(ret, p + "retention", "noncurrentVersionDays", MAX_NONCURRENT_DAYS)),
            log_retention_days=int(field(ret, p + "retention", "logDays", 365)),
            kinesis_retention_hours=int(field(ret, p + "retention", "kinesisHours", 24)),
            protect=bool(values.get(p + "protect", True)),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Reject values that would deploy something unsafe or broken, naming the key to fix."""
        src = f"Pulumi.{self.stack}.yaml"
        if not _ACCOUNT.match(self.account_id):
            raise ConfigError(f"{src}: `{self.project}:accountId` must be a 12-digit AWS account id")
        for key, arn in (("deployRoleArn", self.deploy_role_arn), ("breakGlassRoleArn", self.break_glass_role_arn)):
            if not _ROLE_ARN.match(arn):
                raise ConfigError(f"{src}: `{self.project}:{key}` must be an IAM role ARN, got {arn!r}")
        net = self.network
        if len(net.availability_zones) != 2 or len(set(net.availability_zones)) != 2:
            raise ConfigError(f"{src}: `{self.project}:network.availabilityZones` needs two different zones")
        for key, pair in (
            ("databricksSubnetCidrs", net.databricks_subnet_cidrs),
            ("endpointSubnetCidrs", net.endpoint_subnet_cidrs),
        ):
            if len(pair) != 2:
                raise ConfigError(f"{src}: `{self.project}:network.{key}` needs two CIDRs (two AZs)")
        vpc1, vpc2 = ipaddress.ip_network(net.vpc1_cidr), ipaddress.ip_network(net.vpc2_cidr)
        if vpc1.overlaps(vpc2):
            raise ConfigError(
                f"{src}: `{self.project}:network` VPC CIDRs overlap; on-premises routing needs disjoint ranges"
            )
        self._validate_subnets(src, vpc1, vpc2)
        if self.vpn.enabled and not self.vpn.on_prem_cidrs:
            raise ConfigError(f"{src}: `{self.project}:vpn.onPremCidrs` is required when a customer gateway is set")
        self._validate_registration(src)
        if not 1 <= self.noncurrent_version_days <= MAX_NONCURRENT_DAYS:
            raise ConfigError(
                f"{src}: `{self.project}:retention.noncurrentVersionDays` must be 1..{MAX_NONCURRENT_DAYS}"
            )

    def _validate_subnets(self, src: str, vpc1: Any, vpc2: Any) -> None:
        """Every subnet inside its VPC, and no two subnets overlapping."""
        net = self.network
        placed = [
            ("subnet1Cidr", net.subnet1_cidr, vpc1),
            ("subnet2Cidr", net.subnet2_cidr, vpc1),
            ("subnet3Cidr", net.subnet3_cidr, vpc2),
            ("vpc2EndpointSubnetCidr", net.vpc2_endpoint_subnet_cidr, vpc2),
            *(("databricksSubnetCidrs", c, vpc1) for c in net.databricks_subnet_cidrs),
            *(("endpointSubnetCidrs", c, vpc1) for c in net.endpoint_subnet_cidrs),
        ]
        seen: list[tuple[str, Any]] = []
        for name, cidr, vpc in placed:
            subnet = ipaddress.ip_network(cidr)
            if not _subnet_of(subnet, vpc):
                raise ConfigError(f"{src}: `{self.project}:network.{name}` {cidr} is not inside {vpc}")
            for other_name, other in seen:
                if subnet.overlaps(other):
                    raise ConfigError(f"{src}: `{self.project}:network.{name}` {cidr} overlaps `{other_name}` {other}")
            seen.append((name, subnet))

    def _validate_registration(self, src: str) -> None:
        """With `databricks.register` on, the account credentials and the metastore must be set."""
        dbx = self.databricks
        if not dbx.register:
            return
        for key, value in (
            ("databricks.metastoreId", dbx.metastore_id),
            ("databricks.clientId", dbx.client_id),
            ("databricks.platformPrincipal", dbx.platform_principal),
            ("databricksClientSecret", dbx.client_secret),
        ):
            if not value:
                raise ConfigError(
                    f"{src}: `{self.project}:{key}` is required when `{self.project}:databricks.register` is true"
                    + (" (set it with `pulumi config set --secret`)" if key == "databricksClientSecret" else "")
                )


# How each top-level key is read from pulumi.Config: structured values through get_object.
_KEYS: dict[str, str] = {
    "accountId": "str",
    "deployRoleArn": "str",
    "breakGlassRoleArn": "str",
    "network": "object",
    "vpn": "object",
    "databricks": "object",
    "retention": "object",
    "protect": "bool",
    "databricksClientSecret": "secret",
}


def load_config() -> InfraConfig:
    """Read the running stack's config once (only inside `pulumi up`/`preview`)."""
    import pulumi

    project = pulumi.get_project()
    cfg = pulumi.Config(project)
    getters: dict[str, Callable[[str], Any]] = {
        "str": cfg.get,
        "object": cfg.get_object,
        "bool": cfg.get_bool,
        "secret": cfg.get_secret,
    }
    values: dict[str, Any] = {"aws:region": pulumi.Config("aws").get("region")}
    for key, kind in _KEYS.items():
        value = getters[kind](key)
        if value is not None:
            values[f"{project}:{key}"] = value
    return InfraConfig.from_values(pulumi.get_stack(), values, project=project)
