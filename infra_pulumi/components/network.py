"""Network: two private VPCs, peering between them, PrivateLink endpoints, flow logs, optional VPN.

VPC 1 holds subnets 1 (raw access) and 2 (trusted access) in two AZs, the interface endpoints for
S3, STS and Kinesis, and the VPN to on-premises. VPC 2 holds subnet 3 (refined access). Nothing gets
a public IP, there is no internet or NAT gateway, and both default security groups are emptied.
"""

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, PolicyStatement, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ResourceNames

__all__ = ["Network"]

_S3_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
]


class Network(pulumi.ComponentResource):
    """VPC 1 (subnets 1, 2), VPC 2 (subnet 3), endpoints, peering, flow logs and the optional VPN."""

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
        child = pulumi.ResourceOptions(parent=self)

        self.vpc1 = self._vpc("vpc1", net.vpc1_cidr, keys)
        self.vpc2 = self._vpc("vpc2", net.vpc2_cidr, keys)
        self.subnet1 = self._subnet("subnet1", self.vpc1, net.subnet1_cidr, azs[0], "raw")
        self.subnet2 = self._subnet("subnet2", self.vpc1, net.subnet2_cidr, azs[1], "trusted")
        self.subnet3 = self._subnet("subnet3", self.vpc2, net.subnet3_cidr, azs[0], "refined")
        self.route_table1 = aws.ec2.RouteTable("vpc1-private-rt", vpc_id=self.vpc1.id, tags=tags(config), opts=child)
        self.route_table2 = aws.ec2.RouteTable("vpc2-private-rt", vpc_id=self.vpc2.id, tags=tags(config), opts=child)
        for label, subnet, table in (
            ("subnet1", self.subnet1, self.route_table1),
            ("subnet2", self.subnet2, self.route_table1),
            ("subnet3", self.subnet3, self.route_table2),
        ):
            aws.ec2.RouteTableAssociation(f"{label}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=child)

        # VPC 1 <-> VPC 2: peering (two VPCs, one region, no transit needed; see README).
        self.peering = aws.ec2.VpcPeeringConnection(
            "vpc1-vpc2-peering",
            vpc_id=self.vpc1.id,
            peer_vpc_id=self.vpc2.id,
            auto_accept=True,
            tags=tags(config, Name=f"{names.project}-{names.stack}-vpc1-vpc2"),
            opts=child,
        )
        aws.ec2.Route(
            "vpc1-to-vpc2",
            route_table_id=self.route_table1.id,
            destination_cidr_block=net.vpc2_cidr,
            vpc_peering_connection_id=self.peering.id,
            opts=child,
        )
        aws.ec2.Route(
            "vpc2-to-vpc1",
            route_table_id=self.route_table2.id,
            destination_cidr_block=net.vpc1_cidr,
            vpc_peering_connection_id=self.peering.id,
            opts=child,
        )

        # Gateway endpoints: the free, in-VPC path to S3 for both VPCs.
        self.s3_gateway1 = self._gateway_s3("vpc1", self.vpc1, self.route_table1)
        self.s3_gateway2 = self._gateway_s3("vpc2", self.vpc2, self.route_table2)

        # Interface endpoints in VPC 1 across subnets 1 and 2 (two AZs); reachable from on-prem.
        ingress_cidrs = [net.vpc1_cidr, net.vpc2_cidr, *config.vpn.on_prem_cidrs]
        self.endpoint_sg1 = self._endpoint_sg("vpc1", self.vpc1, ingress_cidrs)
        subnets1 = [self.subnet1.id, self.subnet2.id]
        self.s3_interface = self._interface(
            "s3",
            self.vpc1,
            subnets1,
            self.endpoint_sg1,
            self._s3_policy(),
            # In-VPC S3 traffic keeps using the gateway endpoint; the interface serves on-prem (Resolver).
            dns_options={"dns_record_ip_type": "ipv4", "private_dns_only_for_inbound_resolver_endpoint": True},
            depends_on=[self.s3_gateway1],
        )
        self.sts_interface = self._interface("sts", self.vpc1, subnets1, self.endpoint_sg1, self._sts_policy())
        self.kinesis_interface = self._interface(
            "kinesis-streams", self.vpc1, subnets1, self.endpoint_sg1, self._kinesis_policy()
        )
        # VPC 2 needs STS for credentials; S3 goes through its gateway endpoint.
        self.endpoint_sg2 = self._endpoint_sg("vpc2", self.vpc2, [net.vpc2_cidr])
        self.sts_interface2 = self._interface(
            "sts", self.vpc2, [self.subnet3.id], self.endpoint_sg2, self._sts_policy(), suffix="-vpc2"
        )

        self.vpn_connection = self._vpn() if config.vpn.enabled else None
        self.s3_endpoint_ids = [self.s3_interface.id, self.s3_gateway1.id, self.s3_gateway2.id]
        self.register_outputs(
            {
                "vpc1_id": self.vpc1.id,
                "vpc2_id": self.vpc2.id,
                "subnet_ids": [self.subnet1.id, self.subnet2.id, self.subnet3.id],
                "s3_endpoint_ids": self.s3_endpoint_ids,
            }
        )

    # --- building blocks -------------------------------------------------------------------------

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
        return vpc

    def _subnet(self, name: str, vpc: aws.ec2.Vpc, cidr: str, az: str, zone: str) -> aws.ec2.Subnet:
        cfg = self._config
        return aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            map_public_ip_on_launch=False,
            assign_ipv6_address_on_creation=False,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{name}-{zone}", zone=zone),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _endpoint_sg(self, name: str, vpc: aws.ec2.Vpc, cidrs: list[str]) -> aws.ec2.SecurityGroup:
        cfg = self._config
        return aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            name=f"{cfg.project}-{cfg.stack}-{name}-endpoints",
            description="HTTPS to the interface endpoints from the project networks only",
            vpc_id=vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the project VPCs and on-premises",
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

    def _gateway_s3(self, name: str, vpc: aws.ec2.Vpc, table: aws.ec2.RouteTable) -> aws.ec2.VpcEndpoint:
        cfg = self._config
        return aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{cfg.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id],
            policy=self._s3_policy(),
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{name}-s3-gateway"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _interface(
        self,
        service: str,
        vpc: aws.ec2.Vpc,
        subnet_ids: list[pulumi.Output[str]],
        sg: aws.ec2.SecurityGroup,
        policy: pulumi.Output[str],
        *,
        suffix: str = "",
        dns_options: aws.ec2.VpcEndpointDnsOptionsArgsDict | None = None,
        depends_on: list[pulumi.Resource] | None = None,
    ) -> aws.ec2.VpcEndpoint:
        cfg = self._config
        return aws.ec2.VpcEndpoint(
            f"{service}-interface{suffix}",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{cfg.region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            dns_options=dns_options,
            subnet_ids=subnet_ids,
            security_group_ids=[sg.id],
            policy=policy,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-{service}{suffix}"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )

    # --- endpoint policies: own account's principals, own resources --------------------------------

    def _own_account(self) -> dict:
        return {"StringEquals": {"aws:PrincipalAccount": self._config.account_id}}

    def _s3_policy(self) -> pulumi.Output[str]:
        buckets = list(self._names.buckets.values())
        statements: list[PolicyStatement] = [
            {
                "Sid": "OwnAccountToProjectBuckets",
                "Effect": "Allow",
                "Principal": "*",
                "Action": _S3_ACTIONS,
                "Resource": [self._arns.bucket(b) for b in buckets] + [self._arns.objects(b) for b in buckets],
                "Condition": self._own_account(),
            }
        ]
        external = self._config.databricks.artifact_buckets
        if external:
            statements.append(
                {
                    "Sid": "ReadDatabricksRegionalArtifacts",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [self._arns.bucket(b) for b in external] + [self._arns.objects(b) for b in external],
                }
            )
        return policy_json(*statements)

    def _sts_policy(self) -> pulumi.Output[str]:
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
        )

    def _kinesis_policy(self) -> pulumi.Output[str]:
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
            }
        )

    # --- on-premises --------------------------------------------------------------------------------

    def _vpn(self) -> aws.ec2.VpnConnection:
        cfg, vpn = self._config, self._config.vpn
        child = pulumi.ResourceOptions(parent=self)
        gateway = aws.ec2.VpnGateway("vpc1-vpn-gateway", vpc_id=self.vpc1.id, tags=tags(cfg), opts=child)
        customer = aws.ec2.CustomerGateway(
            "on-prem-customer-gateway",
            bgp_asn=str(vpn.bgp_asn),
            ip_address=vpn.customer_gateway_ip,
            type="ipsec.1",
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-on-prem"),
            opts=child,
        )
        # Both tunnels: IKEv2 only, AES-256-GCM, SHA2-256, DH group 20 in both phases.
        ike, cipher, integrity, dh_groups = ["ikev2"], ["AES256-GCM-16"], ["SHA2-256"], [20]
        connection = aws.ec2.VpnConnection(
            "on-prem-vpn",
            vpn_gateway_id=gateway.id,
            customer_gateway_id=customer.id,
            type="ipsec.1",
            static_routes_only=False,
            tunnel1_ike_versions=ike,
            tunnel1_phase1_encryption_algorithms=cipher,
            tunnel1_phase2_encryption_algorithms=cipher,
            tunnel1_phase1_integrity_algorithms=integrity,
            tunnel1_phase2_integrity_algorithms=integrity,
            tunnel1_phase1_dh_group_numbers=dh_groups,
            tunnel1_phase2_dh_group_numbers=dh_groups,
            tunnel2_ike_versions=ike,
            tunnel2_phase1_encryption_algorithms=cipher,
            tunnel2_phase2_encryption_algorithms=cipher,
            tunnel2_phase1_integrity_algorithms=integrity,
            tunnel2_phase2_integrity_algorithms=integrity,
            tunnel2_phase1_dh_group_numbers=dh_groups,
            tunnel2_phase2_dh_group_numbers=dh_groups,
            tags=tags(cfg),
            opts=child,
        )
        aws.ec2.VpnGatewayRoutePropagation(
            "vpc1-vpn-propagation", vpn_gateway_id=gateway.id, route_table_id=self.route_table1.id, opts=child
        )
        return connection
