"""IAM and Databricks policy: no wildcards on data, Unity Catalog trust, workspace security groups."""

import json

from infra_pulumi.components.databricks import DATABRICKS_EGRESS_PORTS
from infra_pulumi.components.iam import NO_RESOURCE_ACTIONS
from infra_pulumi.config import DATABRICKS_AMI_OWNER
from infra_pulumi.mocks import Recording
from medallion_tests.infra.helpers import as_list, statements


def _role_policies(recording: Recording) -> list:
    return recording.of_type("aws:iam/rolePolicy:RolePolicy")


def test_service_roles_exist_with_platform_names(recording: Recording, config) -> None:
    from medallion_platform.naming import resource_names

    expected = set(resource_names(config.stack).roles.values())
    assert expected <= {r.inputs["name"] for r in recording.of_type("aws:iam/role:Role")}


def test_no_role_policy_grants_a_wildcard_action(recording: Recording) -> None:
    for policy in _role_policies(recording):
        for stmt in statements(policy):
            for action in as_list(stmt["Action"]):
                assert action != "*" and not action.endswith(":*"), (policy.name, action)


def test_no_wildcard_resource_on_data_buckets_or_keys(recording: Recording) -> None:
    for policy in _role_policies(recording):
        for stmt in statements(policy):
            # NotResource appears once: Databricks' RunInstances on everything but the conditioned resources
            actions, resources = as_list(stmt["Action"]), as_list(stmt.get("Resource", []))
            data = [a for a in actions if a.split(":")[0] in {"s3", "kms"} and a not in NO_RESOURCE_ACTIONS]
            if data:
                assert "*" not in resources, (policy.name, stmt.get("Sid"))
                for resource in resources:
                    assert resource.startswith(("arn:aws:s3:::medallion-", "arn:aws:kms:", "arn:aws:s3:eu")), resource
                    assert not resource.startswith("arn:aws:s3:::*"), resource
            if "*" in resources:
                assert set(actions) <= NO_RESOURCE_ACTIONS or stmt["Sid"] == "NonResourceBasedPermissions", (
                    policy.name,
                    stmt.get("Sid"),
                )


def test_kms_use_is_tied_to_the_calling_service(recording: Recording) -> None:
    for policy in _role_policies(recording):
        for stmt in statements(policy):
            if any(a.startswith("kms:") for a in as_list(stmt["Action"])):
                assert "kms:ViaService" in stmt["Condition"]["StringEquals"], (policy.name, stmt.get("Sid"))


def test_dagster_worker_writes_only_zone_prefixes(recording: Recording, config) -> None:
    (policy,) = [p for p in _role_policies(recording) if p.name == "iam-dagster-worker-policy"]
    stmts = {s["Sid"]: s for s in statements(policy)}
    raw = recording.outputs["raw_bucket"]
    assert stmts["ReadLanding"]["Resource"] == [f"arn:aws:s3:::{raw}/landing/*"]
    assert "s3:PutObject" not in stmts["ReadLanding"]["Action"]
    raw_writes = stmts["ReadWriteRawTables"]["Resource"]
    assert raw_writes and all(r.startswith(f"arn:aws:s3:::{raw}/") and r != f"arn:aws:s3:::{raw}/*" for r in raw_writes)
    assert not any("/landing/" in r for r in raw_writes), "workers never rewrite landing"


def test_service_role_trusts_are_confined_to_the_account(recording: Recording, config) -> None:
    services = {"firehose", "batch-operations", "step-functions", "dagster-worker", "events-start-batch-copy"}
    for role in recording.of_type("aws:iam/role:Role"):
        if role.name.removeprefix("iam-").removesuffix("-role") in services:
            (stmt,) = statements(role, "assumeRolePolicy")
            assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": config.account_id}}, role.name


def test_unity_catalog_trust_has_external_id_and_self_assume(recording: Recording, config) -> None:
    role = recording.named("unity-catalog-role")
    arn = recording.outputs["unity_catalog_role_arn"]
    stmts = {s["Sid"]: s for s in statements(role, "assumeRolePolicy")}
    external = {"sts:ExternalId": config.databricks.unity_catalog_external_id}
    assert stmts["UnityCatalogAssumes"]["Principal"] == {"AWS": config.databricks.unity_catalog_principal_arn}
    assert stmts["UnityCatalogAssumes"]["Condition"]["StringEquals"] == external
    assert stmts["SelfAssume"]["Condition"]["ArnEquals"] == {"aws:PrincipalArn": arn}
    assert stmts["SelfAssume"]["Condition"]["StringEquals"] == external
    (policy,) = [p for p in _role_policies(recording) if p.name == "unity-catalog-policy"]
    granted = {s["Sid"]: s for s in statements(policy)}
    assert granted["SelfAssume"]["Resource"] == [arn]


def test_unity_catalog_role_is_scoped_to_the_zone_buckets_and_keys(recording: Recording) -> None:
    (policy,) = [p for p in _role_policies(recording) if p.name == "unity-catalog-policy"]
    out = recording.outputs
    zones = {out[f"{z}_bucket"] for z in ("raw", "trusted", "refined")}
    granted = {s["Sid"]: s for s in statements(policy)}
    assert {r.split(":::")[1].split("/")[0] for r in granted["ReadZoneObjects"]["Resource"]} == zones
    assert set(granted["ZoneKeys"]["Resource"]) == {out[f"{z}_key_arn"] for z in ("raw", "trusted", "refined")}


def test_unity_catalog_role_never_writes_raw(recording: Recording) -> None:
    (policy,) = [p for p in _role_policies(recording) if p.name == "unity-catalog-policy"]
    raw = recording.outputs["raw_bucket"]
    for stmt in statements(policy):
        if {"s3:PutObject", "s3:DeleteObject", "s3:PutLifecycleConfiguration"} & set(stmt["Action"]):
            assert not any(f":::{raw}" in r for r in stmt["Resource"]), stmt["Sid"]


def _cross_account(recording: Recording) -> dict[str, dict]:
    return {s["Sid"]: s for s in statements(recording.named("databricks-cross-account-policy"))}


def test_cross_account_role_launches_only_tagged_instances_in_our_vpc_from_databricks_images(
    recording: Recording,
) -> None:
    stmts, vpc = _cross_account(recording), recording.named("vpc1").id
    assert stmts["AllowEc2RunInstancePerTag"]["Condition"] == {"StringEquals": {"aws:RequestTag/Vendor": "Databricks"}}
    assert stmts["AllowEc2RunInstancePerVPCid"]["Condition"]["StringEquals"]["ec2:vpc"].endswith(f":vpc/{vpc}")
    assert stmts["AllowEc2RunInstanceImageByOwner"]["Condition"] == {
        "StringEquals": {"ec2:Owner": DATABRICKS_AMI_OWNER}
    }
    for sid in ("EC2TerminateInstancesTag", "EC2AttachDetachVolumeTag", "EC2DeleteVolumeByTag", "InstancePoolsSupport"):
        assert stmts[sid]["Condition"] == {"StringEquals": {"ec2:ResourceTag/Vendor": "Databricks"}}, sid


def test_cross_account_role_changes_rules_only_on_the_workspace_security_group(recording: Recording) -> None:
    stmt = _cross_account(recording)["VpcNonresourceSpecificActions"]
    assert stmt["Resource"] == [
        f"arn:aws:ec2:eu-central-1:123456789012:security-group/{recording.named('databricks-workspace-sg').id}"
    ]
    assert stmt["Condition"]["StringEquals"]["ec2:vpc"].endswith(recording.named("vpc1").id)


def test_cross_account_role_runs_instances_nowhere_else_unconditioned(recording: Recording) -> None:
    stmts = _cross_account(recording)
    unconditioned = [s for s in stmts.values() if "ec2:RunInstances" in s["Action"] and "Condition" not in s]
    assert [s["Sid"] for s in unconditioned] == ["AllowEc2RunInstanceOtherResources"]
    assert "Resource" not in unconditioned[0] and unconditioned[0]["NotResource"]
    untagged = stmts["NonResourceBasedPermissions"]["Action"]
    assert not {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:AuthorizeSecurityGroupIngress"} & set(untagged)


def test_databricks_cross_account_role_trusts_databricks_with_the_account_id(recording: Recording, config) -> None:
    (stmt,) = statements(recording.named("databricks-cross-account-role"), "assumeRolePolicy")
    assert stmt["Principal"] == {"AWS": f"arn:aws:iam::{config.databricks.aws_account_id}:root"}
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": config.databricks.account_id}}


def test_databricks_security_group_ingress_only_from_itself_egress_only_documented_ports(
    recording: Recording, config
) -> None:
    sg = recording.named("databricks-workspace-sg").inputs
    assert sg["ingress"] and all(rule["self"] is True and not rule.get("cidrBlocks") for rule in sg["ingress"])
    documented = {(lo, hi) for lo, hi, _ in DATABRICKS_EGRESS_PORTS}
    for rule in sg["egress"]:
        if rule.get("self"):
            continue
        assert (rule["fromPort"], rule["toPort"]) in documented, rule
        assert rule["protocol"] == "tcp"
        assert "0.0.0.0/0" not in rule.get("cidrBlocks", [])


def test_databricks_back_end_privatelink_endpoints(recording: Recording, config) -> None:
    endpoints = {e.name: e.inputs for e in recording.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    workspace, relay = endpoints["databricks-workspace-endpoint"], endpoints["databricks-relay-endpoint"]
    assert workspace["serviceName"] == config.databricks.workspace_endpoint_service
    assert relay["serviceName"] == config.databricks.relay_endpoint_service
    sg = recording.named("databricks-endpoints-sg").inputs
    ports = {(r["fromPort"], r["toPort"]) for r in sg["ingress"]}
    assert {(443, 443), (6666, 6666)} <= ports
    by_group = [r for r in sg["ingress"] if "securityGroups" in r]
    assert by_group and all(r["securityGroups"] == [recording.named("databricks-workspace-sg").id] for r in by_group)
    (rest,) = [r for r in sg["ingress"] if "cidrBlocks" in r]
    assert (rest["fromPort"], rest["toPort"]) == (443, 443)
    assert rest["cidrBlocks"] == [*config.network.databricks_subnet_cidrs, *config.vpn.on_prem_cidrs]
    endpoint_subnets = {recording.named("endpoints-1").id, recording.named("endpoints-2").id}
    assert set(workspace["subnetIds"]) == set(relay["subnetIds"]) == endpoint_subnets
    for ep in (workspace, relay):
        assert ep["privateDnsEnabled"] is True and ep["securityGroupIds"] == [
            recording.named("databricks-endpoints-sg").id
        ]


def test_databricks_subnets_are_private_in_vpc1_across_two_azs(recording: Recording, config) -> None:
    vpc1 = recording.named("vpc1").id
    subnets = [recording.named(f"databricks-subnet-{i}").inputs for i in (1, 2)]
    assert all(s["vpcId"] == vpc1 and s["mapPublicIpOnLaunch"] is False for s in subnets)
    assert {s["availabilityZone"] for s in subnets} == set(config.network.availability_zones)
    assert json.dumps(recording.outputs["databricks_subnet_ids"])
