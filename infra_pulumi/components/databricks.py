"""Databricks: the customer-managed VPC pieces of a workspace, its back-end PrivateLink, and its AWS roles.

`Databricks` holds the compute subnets, the workspace security group, the back-end endpoints and the
cross-account role (Databricks' restricted policy); `UnityCatalogRole` holds the storage-credential role,
created after the credential when the workspace is registered (`databricks_workspace.py`), because its
trust carries the external id Databricks issues for that credential.
"""

import json

import pulumi
import pulumi_aws as aws

from infra_pulumi.components.common import Arns, PolicyStatement, policy_json, tags
from infra_pulumi.components.keys import Keys
from infra_pulumi.components.network import Network
from infra_pulumi.config import DATABRICKS_AMI_OWNER, InfraConfig
from medallion_platform.naming import ZONES, ResourceNames

__all__ = [
    "DATABRICKS_EGRESS_PORTS",
    "UNITY_CATALOG_ACTIONS",
    "UNITY_CATALOG_READ_ACTIONS",
    "Databricks",
    "UnityCatalogRole",
    "cross_account_statements",
]

DATABRICKS_EGRESS_PORTS: tuple[tuple[int, int, str], ...] = (
    (443, 443, "Databricks control plane, PrivateLink endpoints, S3/STS/Kinesis endpoints"),
    (2443, 2443, "FIPS-compliant control plane endpoints"),
    (6666, 6666, "secure cluster connectivity relay (PrivateLink)"),
    (8443, 8451, "control plane API, Unity Catalog logging and lineage"),
)
"""Egress the Databricks customer-managed VPC docs list, minus 3306 (legacy Hive metastore over the internet)."""
UNITY_CATALOG_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation")
UNITY_CATALOG_ACTIONS = (
    *UNITY_CATALOG_READ_ACTIONS,
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
)
"""What Databricks documents for a storage-credential role: object read/write, listing, lifecycle (raw: read only)."""
_EC2_UNTAGGED = (
    "ec2:CancelSpotInstanceRequests",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
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
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:GetSpotPlacementScores",
    "ec2:RequestSpotInstances",
    "ec2:DescribeFleetHistory",
    "ec2:ModifyFleet",
    "ec2:DeleteFleets",
    "ec2:DescribeFleetInstances",
    "ec2:DescribeFleets",
    "ec2:CreateFleet",
    "ec2:DeleteLaunchTemplate",
    "ec2:GetLaunchTemplateData",
    "ec2:CreateLaunchTemplate",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:ModifyLaunchTemplate",
    "ec2:DeleteLaunchTemplateVersions",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:AssignPrivateIpAddresses",
)
"""The actions Databricks' restricted policy leaves on `Resource: *` (describe, spot, fleets, launch templates)."""


def cross_account_statements(config: InfraConfig, *, vpc_id: str, security_group_id: str) -> list[PolicyStatement]:
    """Databricks' "customer-managed VPC with policy restrictions" cross-account policy.

    Instances, volumes and instance profiles only with the `Vendor: Databricks` tag; network interfaces,
    subnets and security groups only in our VPC; images only owned by Databricks' AMI account; rule
    changes only on the workspace security group. Same statements as pulumi-databricks'
    `get_aws_cross_account_policy(policy_type="restricted")`, with the image statement conditioned on the
    image owner (`ec2:Owner`) as Databricks' current docs write it (a shared AMI carries no tags here).
    """
    region, account = config.region, config.account_id
    ec2 = f"arn:aws:ec2:{region}:{account}"
    vpc = {"StringEquals": {"ec2:vpc": f"{ec2}:vpc/{vpc_id}"}}
    tagged = {"StringEquals": {"ec2:ResourceTag/Vendor": "Databricks"}}
    tagging = {"StringEquals": {"aws:RequestTag/Vendor": "Databricks"}}
    in_vpc = [f"{ec2}:network-interface/*", f"{ec2}:subnet/*", f"{ec2}:security-group/*"]
    images = [f"arn:aws:ec2:{region}::image/*"]
    instances, volumes = f"{ec2}:instance/*", f"{ec2}:volume/*"

    def allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> PolicyStatement:
        stmt: PolicyStatement = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
        return {**stmt, "Condition": condition} if condition else stmt

    return [
        # Databricks writes this statement without a condition; pinned to the region, as the workspace is
        allow(
            "NonResourceBasedPermissions", list(_EC2_UNTAGGED), ["*"], {"StringEquals": {"aws:RequestedRegion": region}}
        ),
        allow(
            "InstancePoolsSupport",
            [
                "ec2:AssociateIamInstanceProfile",
                "ec2:DisassociateIamInstanceProfile",
                "ec2:ReplaceIamInstanceProfileAssociation",
            ],
            [instances],
            tagged,
        ),
        allow("AllowEc2RunInstancePerTag", ["ec2:RunInstances"], [volumes, instances], tagging),
        allow(
            "AllowEc2RunInstanceImageByOwner",
            ["ec2:RunInstances"],
            images,
            {"StringEquals": {"ec2:Owner": DATABRICKS_AMI_OWNER}},
        ),
        allow("AllowEc2RunInstancePerVPCid", ["ec2:RunInstances"], in_vpc, vpc),
        {
            "Sid": "AllowEc2RunInstanceOtherResources",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances"],
            "NotResource": [*images, *in_vpc, volumes, instances],
        },
        allow("EC2TerminateInstancesTag", ["ec2:TerminateInstances"], [instances], tagged),
        allow("EC2AttachDetachVolumeTag", ["ec2:AttachVolume", "ec2:DetachVolume"], [instances, volumes], tagged),
        allow("EC2CreateVolumeByTag", ["ec2:CreateVolume"], [volumes], tagging),
        allow("EC2DeleteVolumeByTag", ["ec2:DeleteVolume"], [volumes], tagged),
        allow(
            "SpotServiceLinkedRole",
            ["iam:CreateServiceLinkedRole", "iam:PutRolePolicy"],
            [f"arn:aws:iam::{account}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"],
            {"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}},
        ),
        allow(
            "VpcNonresourceSpecificActions",
            [
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            [f"{ec2}:security-group/{security_group_id}"],
            vpc,
        ),
    ]


class Databricks(pulumi.ComponentResource):
    """Compute subnets and workspace security group in VPC 1, back-end PrivateLink, cross-account role."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        network: Network,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("medallion:infra:Databricks", name, None, opts)
        self._config, self._names, self._arns = config, names, Arns(config)
        net = config.network
        self.subnets = [
            self._subnet(i, cidr, az, network)
            for i, (cidr, az) in enumerate(zip(net.databricks_subnet_cidrs, net.availability_zones, strict=True))
        ]
        self.security_group = self._workspace_sg(network)
        self.endpoint_security_group = self._endpoint_sg(network)
        endpoint_subnets = [s.id for s, _ in network.endpoint_subnets]
        self.workspace_endpoint = self._endpoint(
            "workspace", config.databricks.workspace_endpoint_service, endpoint_subnets
        )
        self.relay_endpoint = self._endpoint("relay", config.databricks.relay_endpoint_service, endpoint_subnets)
        self.cross_account_role = self._cross_account_role(network)
        self.register_outputs(
            {
                "subnet_ids": [s.id for s in self.subnets],
                "security_group_id": self.security_group.id,
                "workspace_endpoint_id": self.workspace_endpoint.id,
                "relay_endpoint_id": self.relay_endpoint.id,
                "cross_account_role_arn": self.cross_account_role.arn,
            }
        )

    def _subnet(self, i: int, cidr: str, az: str, network: Network) -> aws.ec2.Subnet:
        """A compute subnet on the compute route table (the one with the S3 gateway endpoint)."""
        cfg = self._config
        child = pulumi.ResourceOptions(parent=self)
        subnet = aws.ec2.Subnet(
            f"databricks-subnet-{i + 1}",
            vpc_id=network.vpc1.id,
            cidr_block=cidr,
            availability_zone=az,
            map_public_ip_on_launch=False,
            tags=tags(cfg, Name=f"{cfg.project}-{cfg.stack}-databricks-{az}", zone="databricks"),
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"databricks-subnet-{i + 1}-rta",
            subnet_id=subnet.id,
            route_table_id=network.compute_route_table.id,
            opts=child,
        )
        return subnet

    def _workspace_sg(self, network: Network) -> aws.ec2.SecurityGroup:
        """Ingress only from itself; egress to itself, the endpoint subnets (documented ports) and S3 (gateway)."""
        cfg = self._config
        within: list[aws.ec2.SecurityGroupIngressArgsDict] = [
            {
                "description": f"all {p.upper()} within the workspace",
                "protocol": p,
                "from_port": 0,
                "to_port": 65535,
                "self": True,
            }
            for p in ("tcp", "udp")
        ]
        egress: list[aws.ec2.SecurityGroupEgressArgsDict] = [
            {
                "description": f"all {p.upper()} within the workspace",
                "protocol": p,
                "from_port": 0,
                "to_port": 65535,
                "self": True,
            }
            for p in ("tcp", "udp")
        ]
        egress += [
            {
                "description": why,
                "protocol": "tcp",
                "from_port": lo,
                "to_port": hi,
                "cidr_blocks": list(cfg.network.endpoint_subnet_cidrs),
            }
            for lo, hi, why in DATABRICKS_EGRESS_PORTS
        ]
        egress.append(
            {
                "description": "S3 through the compute gateway endpoint",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "prefix_list_ids": [network.s3_compute_gateway.prefix_list_id],
            }
        )
        return aws.ec2.SecurityGroup(
            "databricks-workspace-sg",
            name=f"{cfg.project}-{cfg.stack}-databricks-workspace",
            description="Databricks compute: ingress only from itself, egress only on documented ports",
            vpc_id=network.vpc1.id,
            ingress=within,
            egress=egress,
            tags=tags(cfg),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _endpoint_sg(self, network: Network) -> aws.ec2.SecurityGroup:
        """The back-end endpoints: the workspace SG on the documented ports; HTTPS (REST) from compute/on-prem."""
        cfg = self._config
        ingress: list[aws.ec2.SecurityGroupIngressArgsDict] = [
            {
                "description": why,
                "protocol": "tcp",
                "from_port": lo,
                "to_port": hi,
                "security_groups": [self.security_group.id],
            }
            for lo, hi, why in DATABRICKS_EGRESS_PORTS
        ]
        ingress.append(
            {
                # public access is off when registered: the REST API is reached through this endpoint only
                "description": "workspace REST API from the compute subnets (Dagster) and on-premises",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": [*cfg.network.databricks_subnet_cidrs, *cfg.vpn.on_prem_cidrs],
            }
        )
        return aws.ec2.SecurityGroup(
            "databricks-endpoints-sg",
            name=f"{cfg.project}-{cfg.stack}-databricks-endpoints",
            description="Databricks back-end PrivateLink endpoints: ingress from the workspace only",
            vpc_id=network.vpc1.id,
            ingress=ingress,
            egress=[],
            tags=tags(cfg),
            opts=pulumi.ResourceOptions(parent=self),
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

    def _cross_account_role(self, network: Network) -> aws.iam.Role:
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
        aws.iam.RolePolicy(
            "databricks-cross-account-policy",
            name=f"{role_name}-restricted",
            role=role.id,
            policy=pulumi.Output.all(network.vpc1.id, self.security_group.id).apply(
                lambda ids: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": cross_account_statements(cfg, vpc_id=ids[0], security_group_id=ids[1]),
                    },
                    sort_keys=True,
                )
            ),
            opts=child,
        )
        return role


class UnityCatalogRole(pulumi.ComponentResource):
    """The Unity Catalog storage-credential role: zone objects (raw read-only) and zone keys, via S3 only."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        keys: Keys,
        external_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`external_id`: the storage credential's (registered) or `databricks.unityCatalogExternalId`."""
        super().__init__("medallion:infra:UnityCatalogRole", name, None, opts)
        cfg, dbx, a = config, config.databricks, Arns(config)
        # the role and its policy used to be children of the Databricks component: aliased, so stacks keep them
        former_parent = pulumi.Alias(parent=pulumi.create_urn("databricks", "medallion:infra:Databricks"))
        child = pulumi.ResourceOptions(parent=self, aliases=[former_parent])
        role_name = names.roles["unity_catalog"]
        ext = {"StringEquals": {"sts:ExternalId": external_id}}
        self.role = aws.iam.Role(
            "unity-catalog-role",
            name=role_name,
            assume_role_policy=policy_json(
                {
                    "Sid": "UnityCatalogAssumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": dbx.unity_catalog_principal_arn},
                    "Action": "sts:AssumeRole",
                    "Condition": ext,
                },
                {
                    # Self-assume, written against the account root plus aws:PrincipalArn so the role can be
                    # created in one step (a trust naming the not-yet-existing role ARN is rejected).
                    "Sid": "SelfAssume",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{cfg.account_id}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {**ext, "ArnEquals": {"aws:PrincipalArn": a.role(role_name)}},
                },
            ),
            tags=tags(cfg, role="unity_catalog"),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            "unity-catalog-policy",
            name=f"{role_name}-zone-buckets",
            role=self.role.id,
            policy=policy_json(*_unity_catalog_statements(config, names, keys)),
            opts=child,
        )
        self.register_outputs({"role_arn": self.role.arn})


def _unity_catalog_statements(config: InfraConfig, names: ResourceNames, keys: Keys) -> list[PolicyStatement]:
    """Read every zone, write trusted and refined, list the zones, use the zone keys through S3, self-assume."""
    a, role_name = Arns(config), names.roles["unity_catalog"]
    buckets = {z: names.buckets[z] for z in ZONES}
    writable = [b for z, b in buckets.items() if z != "raw"]
    return [
        {
            "Sid": "ReadZoneObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [a.objects(b) for b in buckets.values()],
        },
        {
            "Sid": "WriteCuratedObjects",
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [a.objects(b) for b in writable],
        },
        {
            "Sid": "ListZoneBuckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [a.bucket(b) for b in buckets.values()],
        },
        {
            "Sid": "ManageCuratedBuckets",
            "Effect": "Allow",
            "Action": [
                "s3:ListBucketMultipartUploads",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            "Resource": [a.bucket(b) for b in writable],
        },
        {
            "Sid": "ZoneKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            "Resource": [keys.data[z].arn for z in ZONES],
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}},
        },
        {"Sid": "SelfAssume", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [a.role(role_name)]},
    ]
