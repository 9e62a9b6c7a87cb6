"""Databricks: the customer-managed VPC pieces of a workspace, its back-end PrivateLink, and its roles.

Registering these with a Databricks account (pulumi-databricks) is deliberately not done here; the
IDs and ARNs are stack outputs to paste into the account console or a later program (see README).
"""

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.components.network import Network
from infra_pulumi.config import InfraConfig
from medallion_platform.naming import ZONES, ResourceNames

__all__ = ["DATABRICKS_EGRESS_PORTS", "Databricks"]

DATABRICKS_EGRESS_PORTS: tuple[tuple[int, int, str], ...] = (
    (443, 443, "Databricks control plane, PrivateLink endpoints, S3/STS/Kinesis endpoints"),
    (2443, 2443, "FIPS-compliant control plane endpoints"),
    (6666, 6666, "secure cluster connectivity relay (PrivateLink)"),
    (8443, 8451, "control plane API, Unity Catalog logging and lineage"),
)
"""Egress the Databricks customer-managed VPC docs list, minus 3306 (legacy Hive metastore over the internet)."""

_EC2_READ = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeFleetHistory",
    "ec2:DescribeFleetInstances",
    "ec2:DescribeFleets",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNatGateways",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribePrefixLists",
    "ec2:DescribeReservedInstancesOfferings",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcs",
    "ec2:GetLaunchTemplateData",
    "ec2:GetSpotPlacementScores",
]
_EC2_WRITE = [
    "ec2:AssignPrivateIpAddresses",
    "ec2:AssociateIamInstanceProfile",
    "ec2:AttachVolume",
    "ec2:CancelSpotInstanceRequests",
    "ec2:CreateFleet",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:CreateTags",
    "ec2:CreateVolume",
    "ec2:DeleteFleets",
    "ec2:DeleteLaunchTemplate",
    "ec2:DeleteLaunchTemplateVersions",
    "ec2:DeleteTags",
    "ec2:DeleteVolume",
    "ec2:DetachVolume",
    "ec2:DisassociateIamInstanceProfile",
    "ec2:ModifyFleet",
    "ec2:ModifyLaunchTemplate",
    "ec2:ReplaceIamInstanceProfileAssociation",
    "ec2:RequestSpotInstances",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
]


class Databricks(pulumi.ComponentResource):
    """Workspace subnets and security group in VPC 1, back-end PrivateLink, cross-account and Unity Catalog roles."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        network: Network,
        keys: Keys,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Databricks", name, None, opts)
        self._config, self._names, self._arns = config, names, Arns(config)
        child = pulumi.ResourceOptions(parent=self)
        net = config.network

        self.subnets = []
        for i, (cidr, az) in enumerate(zip(net.databricks_subnet_cidrs, net.availability_zones, strict=True)):
            subnet = aws.ec2.Subnet(
                f"databricks-subnet-{i + 1}",
                vpc_id=network.vpc1.id,
                cidr_block=cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=tags(config, Name=f"{config.project}-{config.stack}-databricks-{az}", zone="databricks"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"databricks-subnet-{i + 1}-rta",
                subnet_id=subnet.id,
                route_table_id=network.route_table1.id,
                opts=child,
            )
            self.subnets.append(subnet)

        egress: list[aws.ec2.SecurityGroupEgressArgsDict] = [
            {
                "description": "all TCP within the workspace",
                "protocol": "tcp",
                "from_port": 0,
                "to_port": 65535,
                "self": True,
            },
            {
                "description": "all UDP within the workspace",
                "protocol": "udp",
                "from_port": 0,
                "to_port": 65535,
                "self": True,
            },
        ]
        egress += [
            {"description": why, "protocol": "tcp", "from_port": lo, "to_port": hi, "cidr_blocks": [net.vpc1_cidr]}
            for lo, hi, why in DATABRICKS_EGRESS_PORTS
        ]
        egress.append(
            {
                "description": "S3 through the gateway endpoint",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "prefix_list_ids": [network.s3_gateway1.prefix_list_id],
            }
        )
        self.security_group = aws.ec2.SecurityGroup(
            "databricks-workspace-sg",
            name=f"{config.project}-{config.stack}-databricks-workspace",
            description="Databricks compute: ingress only from itself, egress only on documented ports",
            vpc_id=network.vpc1.id,
            ingress=[
                {
                    "description": "all TCP from the workspace",
                    "protocol": "tcp",
                    "from_port": 0,
                    "to_port": 65535,
                    "self": True,
                },
                {
                    "description": "all UDP from the workspace",
                    "protocol": "udp",
                    "from_port": 0,
                    "to_port": 65535,
                    "self": True,
                },
            ],
            egress=egress,
            tags=tags(config),
            opts=child,
        )
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            "databricks-endpoints-sg",
            name=f"{config.project}-{config.stack}-databricks-endpoints",
            description="Databricks back-end PrivateLink endpoints: ingress from the workspace only",
            vpc_id=network.vpc1.id,
            ingress=[
                {
                    "description": why,
                    "protocol": "tcp",
                    "from_port": lo,
                    "to_port": hi,
                    "security_groups": [self.security_group.id],
                }
                for lo, hi, why in DATABRICKS_EGRESS_PORTS
            ],
            egress=[],
            tags=tags(config),
            opts=child,
        )
        endpoint_subnets = [network.subnet1.id, network.subnet2.id]
        self.workspace_endpoint = self._endpoint(
            "workspace", config.databricks.workspace_endpoint_service, endpoint_subnets
        )
        self.relay_endpoint = self._endpoint("relay", config.databricks.relay_endpoint_service, endpoint_subnets)

        self.cross_account_role = self._cross_account_role()
        self.unity_catalog_role = self._unity_catalog_role(keys)
        self.register_outputs(
            {
                "subnet_ids": [s.id for s in self.subnets],
                "security_group_id": self.security_group.id,
                "workspace_endpoint_id": self.workspace_endpoint.id,
                "relay_endpoint_id": self.relay_endpoint.id,
                "cross_account_role_arn": self.cross_account_role.arn,
                "unity_catalog_role_arn": self.unity_catalog_role.arn,
            }
        )

    def _endpoint(self, purpose: str, service_name: str, subnet_ids: list) -> aws.ec2.VpcEndpoint:
        cfg = self._config
        return aws.ec2.VpcEndpoint(
            f"databricks-{purpose}-endpoint",
            vpc_id=self.security_group.vpc_id,
            service_name=service_name,
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=subnet_ids,
            security_group_ids=[self.endpoint_security_group.id],
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-databricks-{purpose}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cross_account_role(self) -> aws.iam.Role:
        cfg, dbx = self._config, self._config.databricks
        child = pulumi.ResourceOptions(parent=self)
        role_name = self._names.roles["databricks_cross_account"]
        role = aws.iam.Role(
            "databricks-cross-account-role",
            name=role_name,
            assume_role_policy=policy_json(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{dbx.aws_account_id}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": dbx.account_id}},
                }
            ),
            tags=tags(cfg, role="databricks_cross_account"),
            opts=child,
        )
        in_region = {"StringEquals": {"aws:RequestedRegion": cfg.region}}
        aws.iam.RolePolicy(
            "databricks-cross-account-policy",
            name=f"{role_name}-customer-managed-vpc",
            role=role.id,
            policy=policy_json(
                {
                    "Sid": "DescribeCompute",
                    "Effect": "Allow",
                    "Action": _EC2_READ,
                    "Resource": "*",
                    "Condition": in_region,
                },
                {
                    "Sid": "ManageCompute",
                    "Effect": "Allow",
                    "Action": _EC2_WRITE,
                    "Resource": "*",
                    "Condition": in_region,
                },
                {
                    "Sid": "ManageWorkspaceSecurityGroup",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:AuthorizeSecurityGroupEgress",
                        "ec2:AuthorizeSecurityGroupIngress",
                        "ec2:RevokeSecurityGroupEgress",
                        "ec2:RevokeSecurityGroupIngress",
                    ],
                    "Resource": [self.security_group.arn],
                },
                {
                    "Sid": "SpotServiceLinkedRole",
                    "Effect": "Allow",
                    "Action": ["iam:CreateServiceLinkedRole", "iam:PutRolePolicy"],
                    "Resource": self._arns.role("aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"),
                    "Condition": {"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}},
                },
            ),
            opts=child,
        )
        return role

    def _unity_catalog_role(self, keys: Keys) -> aws.iam.Role:
        cfg, dbx, a = self._config, self._config.databricks, self._arns
        child = pulumi.ResourceOptions(parent=self)
        role_name = self._names.roles["unity_catalog"]
        external_id = {"StringEquals": {"sts:ExternalId": dbx.unity_catalog_external_id}}
        role = aws.iam.Role(
            "unity-catalog-role",
            name=role_name,
            assume_role_policy=policy_json(
                {
                    "Sid": "UnityCatalogAssumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": dbx.unity_catalog_principal_arn},
                    "Action": "sts:AssumeRole",
                    "Condition": external_id,
                },
                {
                    # Self-assume, written against the account root plus aws:PrincipalArn so the role can be
                    # created in one step (a trust naming the not-yet-existing role ARN is rejected).
                    "Sid": "SelfAssume",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{cfg.account_id}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {**external_id, "ArnEquals": {"aws:PrincipalArn": a.role(role_name)}},
                },
            ),
            tags=tags(cfg, role="unity_catalog"),
            opts=child,
        )
        buckets = [self._names.buckets[z] for z in ZONES]
        aws.iam.RolePolicy(
            "unity-catalog-policy",
            name=f"{role_name}-zone-buckets",
            role=role.id,
            policy=policy_json(
                {
                    "Sid": "ZoneObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": [a.objects(b) for b in buckets],
                },
                {
                    "Sid": "ZoneBuckets",
                    "Effect": "Allow",
                    "Action": [
                        "s3:ListBucket",
                        "s3:GetBucketLocation",
                        "s3:GetLifecycleConfiguration",
                        "s3:PutLifecycleConfiguration",
                    ],
                    "Resource": [a.bucket(b) for b in buckets],
                },
                {
                    "Sid": "ZoneKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": [keys.raw.arn, keys.curated.arn],
                    "Condition": {"StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"}},
                },
                {"Sid": "SelfAssume", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [a.role(role_name)]},
            ),
            opts=child,
        )
        return role
