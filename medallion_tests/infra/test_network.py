"""Network policy: subnet placement, no public IPs, closed default SGs, flow logs, endpoints, routing, VPN."""

from infra_pulumi.mocks import Recording
from medallion_tests.infra.helpers import as_list, make_config, statements

EC2 = "aws:ec2/"


def _vpc_ids(recording: Recording) -> dict[str, str]:
    return {r.name: r.id for r in recording.of_type(f"{EC2}vpc:Vpc")}


def test_subnets_1_and_2_in_vpc1_subnet_3_in_vpc2(recording: Recording, config) -> None:
    vpcs, net = _vpc_ids(recording), config.network
    placement = {name: recording.named(name).inputs for name in ("subnet1", "subnet2", "subnet3")}
    assert placement["subnet1"]["vpcId"] == vpcs["vpc1"] and placement["subnet1"]["cidrBlock"] == net.subnet1_cidr
    assert placement["subnet2"]["vpcId"] == vpcs["vpc1"] and placement["subnet2"]["cidrBlock"] == net.subnet2_cidr
    assert placement["subnet3"]["vpcId"] == vpcs["vpc2"] and placement["subnet3"]["cidrBlock"] == net.subnet3_cidr
    assert placement["subnet1"]["availabilityZone"] != placement["subnet2"]["availabilityZone"]


def test_no_public_ips_and_no_internet_path(recording: Recording) -> None:
    subnets = recording.of_type(f"{EC2}subnet:Subnet")
    assert len(subnets) == 5
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    internet = {f"{EC2}internetGateway:InternetGateway", f"{EC2}natGateway:NatGateway", f"{EC2}eip:Eip"}
    assert not [r for r in recording.resources if r.type in internet]


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


def _endpoints(recording: Recording) -> dict[str, dict]:
    return {r.name: r.inputs for r in recording.of_type(f"{EC2}vpcEndpoint:VpcEndpoint")}


def test_interface_endpoints_for_s3_sts_kinesis_in_vpc1_with_private_dns(recording: Recording, config) -> None:
    endpoints, vpc1 = _endpoints(recording), _vpc_ids(recording)["vpc1"]
    subnets = {recording.named("subnet1").id, recording.named("subnet2").id}
    for service in ("s3", "sts", "kinesis-streams"):
        ep = endpoints[f"{service}-interface"]
        assert ep["serviceName"] == f"com.amazonaws.{config.region}.{service}"
        assert ep["vpcEndpointType"] == "Interface" and ep["vpcId"] == vpc1
        assert ep["privateDnsEnabled"] is True, service
        assert set(ep["subnetIds"]) == subnets, "interface endpoints span both AZs"
    # On-premises reaches S3 through the interface endpoint; in-VPC traffic keeps the free gateway path.
    assert endpoints["s3-interface"]["dnsOptions"]["privateDnsOnlyForInboundResolverEndpoint"] is True


def test_gateway_endpoints_for_s3_in_both_vpcs(recording: Recording) -> None:
    endpoints = _endpoints(recording)
    gateways = {n: e for n, e in endpoints.items() if e["vpcEndpointType"] == "Gateway"}
    assert {g["vpcId"] for g in gateways.values()} == set(_vpc_ids(recording).values())
    assert all(g["serviceName"].endswith(".s3") for g in gateways.values())


def test_endpoint_policies_restrict_to_own_account_and_project_resources(recording: Recording, config) -> None:
    endpoints = recording.of_type(f"{EC2}vpcEndpoint:VpcEndpoint")
    aws_service = [e for e in endpoints if e.inputs["serviceName"].startswith("com.amazonaws.eu")]
    assert len(aws_service) == 6
    for ep in aws_service:
        for stmt in statements(ep):
            assert stmt["Effect"] == "Allow"
            assert not any(a.endswith(":*") or a == "*" for a in as_list(stmt["Action"])), ep.name
            if stmt["Sid"] == "ReadDatabricksRegionalArtifacts":
                assert set(as_list(stmt["Action"])) <= {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}
                continue
            assert stmt["Condition"] == {"StringEquals": {"aws:PrincipalAccount": config.account_id}}, ep.name
            for resource in as_list(stmt["Resource"]):
                if resource.startswith("arn:aws:s3:::"):
                    assert resource.split(":::")[1].split("/")[0].startswith(f"medallion-{config.stack}-")
                elif resource != "*":
                    assert f":{config.account_id}:" in resource, resource


def test_interface_endpoint_security_groups_allow_only_https_from_project_networks(
    recording: Recording, config
) -> None:
    for name in ("vpc1-endpoints-sg", "vpc2-endpoints-sg"):
        sg = recording.named(name).inputs
        assert sg["egress"] == []
        for rule in sg["ingress"]:
            assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
            assert "0.0.0.0/0" not in rule["cidrBlocks"]


def test_vpc1_and_vpc2_route_to_each_other_through_peering(recording: Recording, config) -> None:
    peering = recording.named("vpc1-vpc2-peering")
    vpcs = _vpc_ids(recording)
    assert (peering.inputs["vpcId"], peering.inputs["peerVpcId"]) == (vpcs["vpc1"], vpcs["vpc2"])
    routes = {r.inputs["destinationCidrBlock"]: r.inputs for r in recording.of_type(f"{EC2}route:Route")}
    assert routes[config.network.vpc2_cidr]["vpcPeeringConnectionId"] == peering.id
    assert routes[config.network.vpc1_cidr]["vpcPeeringConnectionId"] == peering.id


def test_vpn_to_vpc1_uses_the_configured_customer_gateway(recording: Recording, config) -> None:
    (cgw,) = recording.of_type(f"{EC2}customerGateway:CustomerGateway")
    assert cgw.inputs["ipAddress"] == config.vpn.customer_gateway_ip
    (vgw,) = recording.of_type(f"{EC2}vpnGateway:VpnGateway")
    assert vgw.inputs["vpcId"] == _vpc_ids(recording)["vpc1"]
    (vpn,) = recording.of_type(f"{EC2}vpnConnection:VpnConnection")
    assert vpn.inputs["customerGatewayId"] == cgw.id and vpn.inputs["tunnel1IkeVersions"] == ["ikev2"]


def test_vpn_is_off_when_no_customer_gateway_is_configured() -> None:
    from infra_pulumi.mocks import record_program

    dev = record_program(make_config("nodvpn", vpn={"customerGatewayIp": ""}))
    vpn_types = {
        f"{EC2}customerGateway:CustomerGateway",
        f"{EC2}vpnGateway:VpnGateway",
        f"{EC2}vpnConnection:VpnConnection",
    }
    assert not [r for r in dev.resources if r.type in vpn_types]
    assert "vpn_connection_id" not in dev.outputs
    assert len(dev.of_type("aws:s3/bucket:Bucket")) == 5, "the rest of the stack is still built"
