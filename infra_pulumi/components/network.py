"""Network: two private VPCs, zone isolation over PrivateLink, shared endpoints, flow logs, VPN, DNS for on-premises.

VPC 1 holds subnet 1 (raw) and subnet 2 (trusted), the two compute subnets (Databricks clusters, Dagster
workers; created by the Databricks layer), two endpoint subnets with the shared interface endpoints and
the Route 53 Resolver inbound endpoint, and the VPN. VPC 2 holds subnet 3 (refined) and its endpoint
subnet. Every subnet has its own route table; nothing has a public IP, there is no internet or NAT gateway,
no peering, and both default security groups are emptied.

Zone isolation: each zone subnet reaches S3 only through its zone's S3 interface endpoint (PrivateLink),
whose policy names only the zone's bucket(s) and whose security group admits only that subnet (subnet 1's
also admits on-premises, for the staging uploads). The compute subnets reach the three zones, and
Databricks' own buckets, through an S3 gateway endpoint on their route table only. The bucket policies
(storage layer) accept exactly these endpoints.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, PolicyStatement, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ZONES, ResourceNames

__all__ = [
    "S3_DATA_ACTIONS",
    "SHARED_SERVICES",
    "ZONE_ENDPOINT_BUCKETS",
    "Network",
    "ZoneEndpoint",
    "resolver_ip",
    "workspace_root_bucket",
]

S3_DATA_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
)
_S3_READ = ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation")
ZONE_ENDPOINT_BUCKETS: dict[str, tuple[str, ...]] = {
    "raw": ("raw", "staging"),
    "trusted": ("trusted",),
    "refined": ("refined",),
}
"""Buckets each zone's S3 endpoint serves: raw's also carries the on-premises exports to staging."""
SHARED_SERVICES = ("sts", "kinesis-streams", "sqs", "logs", "kms", "ecr.api", "ecr.dkr")
"""Interface endpoints in the VPC 1 endpoint subnets: what workers, clusters and on-premises clients call."""


@dataclass
class ZoneEndpoint:
    """A zone subnet, its route table and its S3 interface endpoint."""

    zone: str
    subnet: aws.ec2.Subnet
    route_table: aws.ec2.RouteTable
    endpoint: aws.ec2.VpcEndpoint


class Network(pulumi.ComponentResource):
    """VPC 1 (subnets 1, 2, compute, endpoints), VPC 2 (subnet 3, endpoints), PrivateLink, flow logs, VPN, DNS."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Network", name, None, opts)
        self._config, self._names, self._arns = config, names, Arns(config)
        net, azs = config.network, config.network.availability_zones
        self.vpc1 = self._vpc("vpc1", net.vpc1_cidr, keys)
        self.vpc2 = self._vpc("vpc2", net.vpc2_cidr, keys)
        self.vpn_gateway = self._vpn_gateway() if config.vpn.enabled else None

        self.zones: dict[str, ZoneEndpoint] = {
            "raw": self._zone("subnet1", "raw", self.vpc1, net.subnet1_cidr, azs[0], list(config.vpn.on_prem_cidrs)),
            "trusted": self._zone("subnet2", "trusted", self.vpc1, net.subnet2_cidr, azs[1], []),
            "refined": self._zone("subnet3", "refined", self.vpc2, net.subnet3_cidr, azs[0], []),
        }
        self.subnet1, self.subnet2, self.subnet3 = (self.zones[z].subnet for z in ZONES)

        # Compute subnets (Databricks, Dagster workers) get this route table and the only S3 gateway endpoint.
        self.compute_route_table = self._route_table("compute", self.vpc1, on_prem=False)
        self.s3_compute_gateway = aws.ec2.VpcEndpoint(
            "compute-s3-gateway",
            vpc_id=self.vpc1.id,
            service_name=f"com.amazonaws.{config.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.compute_route_table.id],
            policy=self._compute_s3_policy(),
            tags=tags(config, Name=f"{config.project}-{config.stack}-compute-s3-gateway"),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.endpoint_subnets = [
            self._subnet(f"endpoints-{i + 1}", self.vpc1, cidr, az, "endpoints", on_prem=True)
            for i, (cidr, az) in enumerate(zip(net.endpoint_subnet_cidrs, azs, strict=True))
        ]
        self.vpc2_endpoint_subnet, _ = self._subnet(
            "vpc2-endpoints", self.vpc2, net.vpc2_endpoint_subnet_cidr, azs[0], "endpoints", on_prem=False
        )
        clients = [net.subnet1_cidr, net.subnet2_cidr, *net.databricks_subnet_cidrs, *config.vpn.on_prem_cidrs]
        self.shared_endpoint_sg = self._https_sg("shared-endpoints", self.vpc1, clients)
        self.interfaces = {service: self._shared_interface(service) for service in SHARED_SERVICES}
        self.sts_interface2 = self._interface(
            "sts-vpc2",
            "sts",
            self.vpc2,
            [self.vpc2_endpoint_subnet.id],
            self._https_sg("vpc2-endpoints", self.vpc2, [net.subnet3_cidr]),
            self._sts_policy(),
        )
        self.resolver = self._resolver() if config.vpn.enabled else None
        self.vpn_connection = self._vpn() if self.vpn_gateway is not None else None
        self.register_outputs(
            {
                "vpc1_id": self.vpc1.id,
                "vpc2_id": self.vpc2.id,
                "zone_endpoint_ids": {z: e.endpoint.id for z, e in self.zones.items()},
            }
        )

    # --- subnets, route tables, security groups ------------------------------------------------------

    def _vpc(self, name: str, cidr: str, keys: Keys) -> aws.ec2.Vpc:
        cfg = self._config
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            name,
            cidr_block=cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{name}"),
            opts=child,
        )
        # The default security group allows all traffic between its members: empty it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child)
        self._flow_logs(name, vpc, keys)
        return vpc

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, keys: Keys) -> None:
        cfg = self._config
        child = pulumi.ResourceOptions(parent=self)
        group_name = f"/{cfg.project}/{cfg.stack}/flow-logs/{name}"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            kms_key_id=keys.logs.arn,
            retention_in_days=cfg.log_retention_days,
            tags=tags(cfg),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            name=f"{cfg.project}-{cfg.stack}-{name}-flow-logs",
            assume_role_policy=policy_json(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": cfg.account_id}},
                }
            ),
            tags=tags(cfg),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=policy_json(
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [self._arns.log_group(group_name)],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags(cfg),
            opts=child,
        )

    def _route_table(self, name: str, vpc: aws.ec2.Vpc, *, on_prem: bool) -> aws.ec2.RouteTable:
        """A route table with only the local route (and, with `on_prem`, the VPN's propagated routes)."""
        cfg = self._config
        child = pulumi.ResourceOptions(parent=self)
        table = aws.ec2.RouteTable(
            f"{name}-rt", vpc_id=vpc.id, tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{name}"), opts=child
        )
        if on_prem and self.vpn_gateway is not None:
            aws.ec2.VpnGatewayRoutePropagation(
                f"{name}-vpn-propagation", vpn_gateway_id=self.vpn_gateway.id, route_table_id=table.id, opts=child
            )
        return table

    def _subnet(
        self, name: str, vpc: aws.ec2.Vpc, cidr: str, az: str, zone: str, *, on_prem: bool
    ) -> tuple[aws.ec2.Subnet, aws.ec2.RouteTable]:
        """A private subnet with its own route table."""
        cfg = self._config
        subnet = aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            map_public_ip_on_launch=False,
            assign_ipv6_address_on_creation=False,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{name}-{zone}", zone=zone),
            opts=pulumi.ResourceOptions(parent=self),
        )
        table = self._route_table(name, vpc, on_prem=on_prem)
        aws.ec2.RouteTableAssociation(
            f"{name}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=pulumi.ResourceOptions(parent=self)
        )
        return subnet, table

    def _https_sg(self, name: str, vpc: aws.ec2.Vpc, cidrs: list[str]) -> aws.ec2.SecurityGroup:
        cfg = self._config
        return aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{cfg.project}-{cfg.stack}-{name}",
            description=f"HTTPS to the {name} interface endpoints from their client subnets only",
            vpc_id=vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the endpoint's client subnets",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": cidrs,
                }
            ],
            egress=[],
            tags=tags(cfg),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- endpoints ------------------------------------------------------------------------------------

    def _zone(
        self, name: str, zone: str, vpc: aws.ec2.Vpc, cidr: str, az: str, extra_clients: list[str]
    ) -> ZoneEndpoint:
        """A zone subnet and its S3 interface endpoint (in the subnet; admits the subnet and `extra_clients`)."""
        subnet, table = self._subnet(name, vpc, cidr, az, zone, on_prem=vpc is self.vpc1)
        sg = self._https_sg(f"s3-{zone}-endpoint", vpc, [cidr, *extra_clients])
        # No private DNS: two S3 interface endpoints cannot both own s3.<region>.amazonaws.com in VPC 1, and
        # the zone clients address their endpoint by its own DNS name (AWS_ENDPOINT_URL_S3, outputs_to_env.py).
        endpoint = self._interface(
            f"s3-{zone}", "s3", vpc, [subnet.id], sg, self._zone_s3_policy(zone), private_dns=False
        )
        return ZoneEndpoint(zone, subnet, table, endpoint)

    def _shared_interface(self, service: str) -> aws.ec2.VpcEndpoint:
        policies = {
            "sts": self._sts_policy,
            "kinesis-streams": self._kinesis_policy,
            "sqs": self._sqs_policy,
            "logs": self._logs_policy,
            "kms": self._kms_policy,
            "ecr.api": self._ecr_policy,
            "ecr.dkr": self._ecr_policy,
        }
        return self._interface(
            service.replace(".", "-"),
            service,
            self.vpc1,
            [s.id for s, _ in self.endpoint_subnets],
            self.shared_endpoint_sg,
            policies[service](),
        )

    def _interface(
        self,
        label: str,
        service: str,
        vpc: aws.ec2.Vpc,
        subnet_ids: list[pulumi.Output[str]],
        sg: aws.ec2.SecurityGroup,
        policy: pulumi.Output[str],
        *,
        private_dns: bool = True,
    ) -> aws.ec2.VpcEndpoint:
        cfg = self._config
        return aws.ec2.VpcEndpoint(
            f"{label}-interface",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{cfg.region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=private_dns,
            subnet_ids=subnet_ids,
            security_group_ids=[sg.id],
            policy=policy,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{label}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- endpoint policies: own account's principals, own resources --------------------------------

    def _own_account(self) -> dict:
        return {"StringEquals": {"aws:PrincipalAccount": self._config.account_id}}

    def _bucket_resources(self, buckets: list[str]) -> list[str]:
        return [self._arns.bucket(b) for b in buckets] + [self._arns.objects(b) for b in buckets]

    def _zone_s3_policy(self, zone: str) -> pulumi.Output[str]:
        buckets = [self._names.buckets[b] for b in ZONE_ENDPOINT_BUCKETS[zone]]
        statements: list[PolicyStatement] = [
            {
                "Sid": f"OwnAccountTo{zone.capitalize()}ZoneOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(S3_DATA_ACTIONS),
                "Resource": self._bucket_resources(buckets),
                "Condition": self._own_account(),
            }
        ]
        if zone == "raw":
            # `medallion ingest batch --copy job` from on-premises: S3 Control through this endpoint
            statements.append(
                {
                    "Sid": "OwnAccountBatchCopyJobs",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:CreateJob", "s3:DescribeJob"],
                    "Resource": "*",
                    "Condition": self._own_account(),
                }
            )
        return policy_json(*statements)

    def _compute_s3_policy(self) -> pulumi.Output[str]:
        """The compute path: the three zones, plus what Databricks' security reference architecture lists."""
        dbx, cfg = self._config.databricks, self._config
        zones = [self._names.buckets[z] for z in ZONES]
        statements: list[PolicyStatement] = [
            {
                "Sid": "OwnAccountToZoneBuckets",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(S3_DATA_ACTIONS),
                "Resource": self._bucket_resources(zones),
                "Condition": self._own_account(),
            }
        ]
        if dbx.register:
            statements.append(
                {
                    "Sid": "DatabricksWorkspaceRootBucket",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": list(S3_DATA_ACTIONS),
                    "Resource": self._bucket_resources([workspace_root_bucket(cfg)]),
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": [cfg.account_id, dbx.aws_account_id]}},
                }
            )
        for sid, kinds, actions in (
            ("DatabricksArtifactsAndSystemTablesRead", ("artifacts", "systemTables"), _S3_READ),
            ("DatabricksDatasetsRead", ("datasets",), ("s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation")),
            ("DatabricksLogDelivery", ("logs",), ("s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation")),
        ):
            buckets = dbx.buckets(*kinds)
            if buckets:
                statements.append(
                    {
                        "Sid": sid,
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": list(actions),
                        "Resource": self._bucket_resources(buckets),
                    }
                )
        statements.append(
            {
                # ECR keeps image layers in this AWS-owned bucket: the workers' containers pull through S3.
                "Sid": "EcrImageLayers",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [self._arns.objects(f"prod-{cfg.region}-starport-layer-bucket")],
            }
        )
        return policy_json(*statements)

    def _sts_policy(self) -> pulumi.Output[str]:
        dbx = self._config.databricks
        return policy_json(
            {
                "Sid": "OwnAccountAssumesOwnRoles",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Resource": f"arn:aws:iam::{self._config.account_id}:role/*",
                "Condition": self._own_account(),
            },
            {
                "Sid": "OwnAccountIdentity",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["sts:GetCallerIdentity"],
                "Resource": "*",
                "Condition": self._own_account(),
            },
            {
                # Databricks' security reference architecture: its control-plane principals get cluster sessions.
                "Sid": "DatabricksPrincipals",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{dbx.aws_account_id}:root"]},
                "Action": ["sts:AssumeRole", "sts:GetSessionToken", "sts:TagSession"],
                "Resource": "*",
            },
        )

    def _kinesis_policy(self) -> pulumi.Output[str]:
        cfg, dbx = self._config, self._config.databricks
        return policy_json(
            {
                "Sid": "OwnAccountToProjectStreams",
                "Effect": "Allow",
                "Principal": "*",
                "Action": [
                    "kinesis:PutRecord",
                    "kinesis:PutRecords",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                ],
                "Resource": [self._arns.stream(s) for s in self._names.streams.values()],
                "Condition": self._own_account(),
            },
            {
                # Clusters ship their logs and usage to Databricks' own streams (security reference architecture).
                "Sid": "DatabricksOwnStreams",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{dbx.aws_account_id}:root"]},
                "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStream"],
                "Resource": [f"arn:aws:kinesis:{cfg.region}:{dbx.aws_account_id}:stream/*"],
            },
        )

    def _own_account_statement(self, sid: str, actions: list[str], resources: list[str]) -> pulumi.Output[str]:
        return policy_json(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": "*",
                "Action": actions,
                "Resource": resources,
                "Condition": self._own_account(),
            }
        )

    def _sqs_policy(self) -> pulumi.Output[str]:
        names, a = self._names, self._arns
        return self._own_account_statement(
            "OwnAccountToLandingQueues",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            ],
            [a.queue(names.landing_queue), a.queue(names.landing_dlq)],
        )

    def _logs_policy(self) -> pulumi.Output[str]:
        cfg = self._config
        return self._own_account_statement(
            "OwnAccountToOwnLogGroups",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"arn:aws:logs:{cfg.region}:{cfg.account_id}:log-group:*"],
        )

    def _kms_policy(self) -> pulumi.Output[str]:
        return self._own_account_statement(
            "OwnAccountToOwnKeys",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            [self._arns.keys()],
        )

    def _ecr_policy(self) -> pulumi.Output[str]:
        return self._own_account_statement(
            "OwnAccountPullsImages",
            [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            ["*"],
        )

    # --- on-premises --------------------------------------------------------------------------------

    def _resolver(self) -> aws.route53.ResolverEndpoint:
        """Inbound Resolver in the endpoint subnets: on-premises DNS forwards the AWS names here (fixed IPs)."""
        cfg = self._config
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            "resolver-inbound-sg",
            name=f"{cfg.project}-{cfg.stack}-resolver-inbound",
            description="DNS to the inbound Resolver from on-premises only",
            vpc_id=self.vpc1.id,
            ingress=[
                {
                    "description": f"DNS over {proto} from on-premises",
                    "protocol": proto,
                    "from_port": 53,
                    "to_port": 53,
                    "cidr_blocks": list(cfg.vpn.on_prem_cidrs),
                }
                for proto in ("udp", "tcp")
            ],
            egress=[],
            tags=tags(cfg),
            opts=child,
        )
        return aws.route53.ResolverEndpoint(
            "resolver-inbound",
            name=f"{cfg.project}-{cfg.stack}-inbound",
            direction="INBOUND",
            security_group_ids=[sg.id],
            ip_addresses=[
                {"subnet_id": subnet.id, "ip": resolver_ip(cidr)}
                for (subnet, _), cidr in zip(self.endpoint_subnets, cfg.network.endpoint_subnet_cidrs, strict=True)
            ],
            protocols=["Do53"],
            tags=tags(cfg),
            opts=child,
        )

    def _vpn_gateway(self) -> aws.ec2.VpnGateway:
        return aws.ec2.VpnGateway(
            "vpc1-vpn-gateway", vpc_id=self.vpc1.id, tags=tags(self._config), opts=pulumi.ResourceOptions(parent=self)
        )

    def _vpn(self) -> aws.ec2.VpnConnection:
        cfg, vpn = self._config, self._config.vpn
        child = pulumi.ResourceOptions(parent=self)
        assert self.vpn_gateway is not None
        customer = aws.ec2.CustomerGateway(
            "on-prem-customer-gateway",
            bgp_asn=str(vpn.bgp_asn),
            ip_address=vpn.customer_gateway_ip,
            type="ipsec.1",
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-on-prem"),
            opts=child,
        )
        # Both tunnels: IKEv2 only, AES-256-GCM, SHA2-256, DH group 20 in both phases.
        tunnel = {
            "ike_versions": ["ikev2"],
            "phase1_encryption_algorithms": ["AES256-GCM-16"],
            "phase2_encryption_algorithms": ["AES256-GCM-16"],
            "phase1_integrity_algorithms": ["SHA2-256"],
            "phase2_integrity_algorithms": ["SHA2-256"],
            "phase1_dh_group_numbers": [20],
            "phase2_dh_group_numbers": [20],
        }
        tunnels: dict[str, Any] = {f"tunnel{n}_{k}": v for n in (1, 2) for k, v in tunnel.items()}
        return aws.ec2.VpnConnection(
            "on-prem-vpn",
            vpn_gateway_id=self.vpn_gateway.id,
            customer_gateway_id=customer.id,
            type="ipsec.1",
            static_routes_only=False,
            **tunnels,
            tags=tags(cfg),
            opts=child,
        )


def resolver_ip(cidr: str) -> str:
    """The inbound Resolver's fixed address in an endpoint subnet: the 10th host (AWS reserves the first 4)."""
    return str(ipaddress.ip_network(cidr).network_address + 10)


def workspace_root_bucket(config: InfraConfig) -> str:
    """Name of the Databricks workspace root bucket (created only with `databricks.register`)."""
    return f"{config.project}-{config.stack}-databricks-root-{config.account_id}"
