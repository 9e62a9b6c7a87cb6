"""Network policy: placement, no public IPs, closed default SGs, flow logs, endpoints and their policies, VPN, DNS."""

import ipaddress

import pytest

from infra_pulumi.components.network import SHARED_SERVICES
from infra_pulumi.mocks import Recording
from medallion_tests.infra.helpers import as_list, doc, make_config, statements

EC2 = "aws:ec2/"
ZONE_SUBNETS = {"raw": "subnet1", "trusted": "subnet2", "refined": "subnet3"}
ZONE_BUCKETS = {"raw": {"raw", "staging"}, "trusted": {"trusted"}, "refined": {"refined"}}
"""What each zone's S3 endpoint may name: written out here, not read from the code under test."""


def _vpc_ids(recording: Recording) -> dict[str, str]:
    return {r.name: r.id for r in recording.of_type(f"{EC2}vpc:Vpc")}


def _endpoints(recording: Recording) -> dict[str, dict]:
    return {r.name: r.inputs for r in recording.of_type(f"{EC2}vpcEndpoint:VpcEndpoint")}


def _route_table_of(recording: Recording) -> dict[str, str]:
    """Subnet logical name -> route table id."""
    subnets = {s.id: s.name for s in recording.of_type(f"{EC2}subnet:Subnet")}
    return {
        subnets[a.inputs["subnetId"]]: a.inputs["routeTableId"]
        for a in recording.of_type(f"{EC2}routeTableAssociation:RouteTableAssociation")
    }


def test_subnets_1_and_2_in_vpc1_subnet_3_in_vpc2(recording: Recording, config) -> None:
    vpcs, net = _vpc_ids(recording), config.network
    placement = {name: recording.named(name).inputs for name in ("subnet1", "subnet2", "subnet3")}
    assert placement["subnet1"]["vpcId"] == vpcs["vpc1"] and placement["subnet1"]["cidrBlock"] == net.subnet1_cidr
    assert placement["subnet2"]["vpcId"] == vpcs["vpc1"] and placement["subnet2"]["cidrBlock"] == net.subnet2_cidr
    assert placement["subnet3"]["vpcId"] == vpcs["vpc2"] and placement["subnet3"]["cidrBlock"] == net.subnet3_cidr
    assert placement["subnet1"]["availabilityZone"] != placement["subnet2"]["availabilityZone"]


def test_no_public_ips_and_no_internet_path(recording: Recording) -> None:
    subnets = recording.of_type(f"{EC2}subnet:Subnet")
    assert len(subnets) == 8  # 3 zone, 2 compute, 2 + 1 endpoint subnets
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    internet = {f"{EC2}internetGateway:InternetGateway", f"{EC2}natGateway:NatGateway", f"{EC2}eip:Eip"}
    assert not [r for r in recording.resources if r.type in internet]


def test_every_subnet_has_its_own_route_table_but_the_compute_pair(recording: Recording) -> None:
    tables = _route_table_of(recording)
    compute = {tables["databricks-subnet-1"], tables["databricks-subnet-2"]}
    assert len(compute) == 1
    others = [t for name, t in tables.items() if not name.startswith("databricks-subnet-")]
    assert len(set(others)) == len(others) and not compute & set(others)


def test_no_route_leaves_the_vpcs_but_the_vpn(recording: Recording) -> None:
    assert recording.of_type(f"{EC2}route:Route") == [], "only local routes (and VPN propagation)"
    assert recording.of_type(f"{EC2}vpcPeeringConnection:VpcPeeringConnection") == [], "no flow needs VPC 1 <-> 2"


def test_default_security_groups_are_closed(recording: Recording) -> None:
    defaults = recording.of_type(f"{EC2}defaultSecurityGroup:DefaultSecurityGroup")
    assert {d.inputs["vpcId"] for d in defaults} == set(_vpc_ids(recording).values())
    for sg in defaults:
        assert sg.inputs.get("ingress", []) == [] and sg.inputs.get("egress", []) == []


def test_flow_logs_on_both_vpcs_to_encrypted_log_groups_with_retention(recording: Recording, config) -> None:
    logs = recording.outputs["logs_key_arn"]
    groups = {g.state["arn"]: g for g in recording.of_type("aws:cloudwatch/logGroup:LogGroup")}
    flows = recording.of_type(f"{EC2}flowLog:FlowLog")
    assert {f.inputs["vpcId"] for f in flows} == set(_vpc_ids(recording).values())
    for flow in flows:
        assert flow.inputs["trafficType"] == "ALL"
        group = groups[flow.inputs["logDestination"]]
        assert group.inputs["kmsKeyId"] == logs
        assert group.inputs["retentionInDays"] == config.log_retention_days


@pytest.mark.parametrize("zone", sorted(ZONE_SUBNETS))
def test_each_zone_has_an_s3_interface_endpoint_in_its_subnet(recording: Recording, config, zone: str) -> None:
    ep = _endpoints(recording)[f"s3-{zone}-interface"]
    subnet = recording.named(ZONE_SUBNETS[zone])
    assert ep["serviceName"] == f"com.amazonaws.{config.region}.s3" and ep["vpcEndpointType"] == "Interface"
    assert ep["subnetIds"] == [subnet.id] and ep["vpcId"] == subnet.inputs["vpcId"]
    assert ep["privateDnsEnabled"] is False, "clients use the endpoint's own DNS name (AWS_ENDPOINT_URL_S3)"


@pytest.mark.parametrize("zone", sorted(ZONE_SUBNETS))
def test_zone_endpoint_policy_names_only_its_zone_buckets(recording: Recording, config, zone: str) -> None:
    ep = recording.named(f"s3-{zone}-interface")
    named = {r.split(":::")[1].split("/")[0] for s in statements(ep) for r in as_list(s["Resource"]) if r != "*"}
    assert named == {recording.outputs[f"{b}_bucket"] for b in ZONE_BUCKETS[zone]}
    assert all(s["Condition"] == {"StringEquals": {"aws:PrincipalAccount": config.account_id}} for s in statements(ep))


def test_only_the_raw_endpoint_carries_s3_control_for_the_batch_copy(recording: Recording) -> None:
    for zone in ZONE_SUBNETS:
        control = [s for s in statements(recording.named(f"s3-{zone}-interface")) if s["Resource"] == "*"]
        assert [s["Action"] for s in control] == ([["s3:CreateJob", "s3:DescribeJob"]] if zone == "raw" else [])


@pytest.mark.parametrize("zone", sorted(ZONE_SUBNETS))
def test_zone_endpoint_security_group_admits_only_its_subnet(recording: Recording, config, zone: str) -> None:
    sg = recording.named(f"s3-{zone}-endpoint-sg").inputs
    (rule,) = sg["ingress"]
    on_prem = list(config.vpn.on_prem_cidrs) if zone == "raw" else []
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
    assert rule["cidrBlocks"] == [recording.named(ZONE_SUBNETS[zone]).inputs["cidrBlock"], *on_prem]
    assert sg["egress"] == []


def test_only_the_compute_route_table_has_an_s3_gateway(recording: Recording) -> None:
    gateways = [e for e in _endpoints(recording).values() if e["vpcEndpointType"] == "Gateway"]
    (gateway,) = gateways
    tables = _route_table_of(recording)
    assert gateway["routeTableIds"] == [tables["databricks-subnet-1"]]


def test_compute_gateway_policy_names_the_zones_and_databricks_regional_buckets(recording: Recording, config) -> None:
    policy = {s["Sid"]: s for s in statements(recording.named("compute-s3-gateway"))}
    zone_buckets = {r.split(":::")[1].split("/")[0] for r in policy["OwnAccountToZoneBuckets"]["Resource"]}
    assert zone_buckets == {recording.outputs[f"{z}_bucket"] for z in ZONE_SUBNETS}
    assert policy["OwnAccountToZoneBuckets"]["Condition"] == {
        "StringEquals": {"aws:PrincipalAccount": config.account_id}
    }
    databricks = {
        r.split(":::")[1].split("/")[0]
        for sid, s in policy.items()
        if sid.startswith("Databricks")
        for r in s["Resource"]
    }
    assert databricks == set(config.databricks.buckets())
    reads = ("DatabricksArtifactsAndSystemTablesRead", "DatabricksDatasetsRead")
    assert all(not {"s3:PutObject", "s3:DeleteObject"} & set(policy[sid]["Action"]) for sid in reads)
    assert "s3:GetObject" not in policy["DatabricksLogDelivery"]["Action"]


def test_shared_interface_endpoints_sit_in_the_endpoint_subnets_with_private_dns(recording: Recording, config) -> None:
    endpoints = _endpoints(recording)
    subnets = {recording.named("endpoints-1").id, recording.named("endpoints-2").id}
    for service in SHARED_SERVICES:
        ep = endpoints[f"{service.replace('.', '-')}-interface"]
        assert ep["serviceName"] == f"com.amazonaws.{config.region}.{service}"
        assert set(ep["subnetIds"]) == subnets and ep["privateDnsEnabled"] is True, service
    vpc2 = endpoints["sts-vpc2-interface"]
    assert vpc2["subnetIds"] == [recording.named("vpc2-endpoints").id]


def test_shared_endpoint_security_groups_admit_only_their_client_subnets(recording: Recording, config) -> None:
    net = config.network
    clients = {
        "shared-endpoints-sg": [
            net.subnet1_cidr,
            net.subnet2_cidr,
            *net.databricks_subnet_cidrs,
            *config.vpn.on_prem_cidrs,
        ],
        "vpc2-endpoints-sg": [net.subnet3_cidr],
    }
    for name, cidrs in clients.items():
        sg = recording.named(name).inputs
        (rule,) = sg["ingress"]
        assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
        assert rule["cidrBlocks"] == cidrs and sg["egress"] == []


def test_aws_endpoint_policies_allow_no_wildcard_action_and_only_own_or_databricks_principals(
    recording: Recording, config
) -> None:
    endpoints = [
        e
        for e in recording.of_type(f"{EC2}vpcEndpoint:VpcEndpoint")
        if e.inputs["serviceName"].startswith("com.amazonaws.eu")
    ]
    databricks_root = {"AWS": [f"arn:aws:iam::{config.databricks.aws_account_id}:root"]}
    for ep in endpoints:
        for stmt in statements(ep):
            assert stmt["Effect"] == "Allow"
            assert not any(a.endswith(":*") or a == "*" for a in as_list(stmt["Action"])), ep.name
            if stmt["Principal"] == databricks_root or stmt["Sid"].startswith(("Databricks", "Ecr")):
                continue
            assert stmt["Condition"] == {"StringEquals": {"aws:PrincipalAccount": config.account_id}}, ep.name


def test_kinesis_endpoint_allows_project_streams_and_databricks_own_streams(recording: Recording, config) -> None:
    policy = {s["Sid"]: s for s in statements(recording.named("kinesis-streams-interface"))}
    own = policy["OwnAccountToProjectStreams"]["Resource"]
    assert own and all(f":{config.account_id}:stream/medallion-{config.stack}-" in r for r in own)
    assert policy["DatabricksOwnStreams"]["Resource"] == [
        f"arn:aws:kinesis:{config.region}:{config.databricks.aws_account_id}:stream/*"
    ]


def test_resolver_inbound_endpoint_in_vpc1_answers_on_prem_only(recording: Recording, config) -> None:
    (resolver,) = recording.of_type("aws:route53/resolverEndpoint:ResolverEndpoint")
    assert resolver.inputs["direction"] == "INBOUND"
    subnets = {recording.named("endpoints-1").id, recording.named("endpoints-2").id}
    assert {a["subnetId"] for a in resolver.inputs["ipAddresses"]} == subnets
    ips = [a["ip"] for a in resolver.inputs["ipAddresses"]]
    assert ips == recording.outputs["resolver_inbound_ips"]
    for ip, cidr in zip(ips, config.network.endpoint_subnet_cidrs, strict=True):
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    sg = recording.named("resolver-inbound-sg").inputs
    assert {(r["protocol"], r["fromPort"]) for r in sg["ingress"]} == {("udp", 53), ("tcp", 53)}
    assert all(r["cidrBlocks"] == list(config.vpn.on_prem_cidrs) for r in sg["ingress"])


def test_endpoint_dns_names_are_stack_outputs(recording: Recording) -> None:
    out = recording.outputs
    for zone in ZONE_SUBNETS:
        assert (
            out["s3_endpoint_urls"][zone]
            == f"https://bucket.vpce-s3-{zone}-interface.s3.eu-central-1.vpce.amazonaws.com"
        )
    assert out["s3_control_endpoint_url"].startswith("https://control.vpce-s3-raw-interface.")
    assert out["kinesis_endpoint_url"].startswith("https://vpce-kinesis-streams-interface.")
    assert out["sts_endpoint_url"].startswith("https://vpce-sts-interface.")


def test_vpn_routes_propagate_to_the_on_prem_facing_tables_only(recording: Recording) -> None:
    tables = _route_table_of(recording)
    propagated = {
        p.inputs["routeTableId"]
        for p in recording.of_type(f"{EC2}vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")
    }
    assert propagated == {tables[s] for s in ("subnet1", "subnet2", "endpoints-1", "endpoints-2")}


def test_vpn_to_vpc1_uses_the_configured_customer_gateway(recording: Recording, config) -> None:
    (cgw,) = recording.of_type(f"{EC2}customerGateway:CustomerGateway")
    assert cgw.inputs["ipAddress"] == config.vpn.customer_gateway_ip
    (vgw,) = recording.of_type(f"{EC2}vpnGateway:VpnGateway")
    assert vgw.inputs["vpcId"] == _vpc_ids(recording)["vpc1"]
    (vpn,) = recording.of_type(f"{EC2}vpnConnection:VpnConnection")
    assert vpn.inputs["customerGatewayId"] == cgw.id and vpn.inputs["tunnel1IkeVersions"] == ["ikev2"]
    assert vpn.inputs["tunnel2Phase2DhGroupNumbers"] == [20]


def test_vpn_and_resolver_are_off_when_no_customer_gateway_is_configured() -> None:
    from infra_pulumi.mocks import record_program

    dev = record_program(make_config("novpn", vpn={"customerGatewayIp": ""}))
    off = {
        f"{EC2}customerGateway:CustomerGateway",
        f"{EC2}vpnGateway:VpnGateway",
        f"{EC2}vpnConnection:VpnConnection",
        "aws:route53/resolverEndpoint:ResolverEndpoint",
    }
    assert not [r for r in dev.resources if r.type in off]
    assert "vpn_connection_id" not in dev.outputs and "resolver_inbound_ips" not in dev.outputs
    assert len(dev.of_type("aws:s3/bucket:Bucket")) == 5, "the rest of the stack is still built"
    assert doc(dev.named("compute-s3-gateway"))["Statement"], "and the compute path"
