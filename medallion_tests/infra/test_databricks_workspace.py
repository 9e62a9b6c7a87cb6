"""Databricks registration (`databricks.register`): workspace wiring, secrets, storage credential, catalog policy."""

import json

import pytest

from infra_pulumi.mocks import Recording
from medallion_platform.catalog.account import PLATFORM_LOCATION_PRIVILEGES, PLATFORM_PRIVILEGES
from medallion_platform.naming import ZONES
from medallion_platform.settings import DEFAULT_GRANTS
from medallion_tests.infra.helpers import statements

DBX = "databricks:index/"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the Pulumi engine marks a secret value


def _one(recording: Recording, kind: str) -> dict:
    (resource,) = recording.of_type(f"{DBX}{kind[0].lower()}{kind[1:]}:{kind}")
    return resource.inputs


def test_registration_is_off_by_default(recording: Recording) -> None:
    assert not [r for r in recording.resources if r.type.startswith(("databricks:", "pulumi:providers:databricks"))]
    assert recording.calls == []


def test_every_data_source_call_was_answered_by_the_mocks(registered: Recording) -> None:
    assert registered.calls == ["databricks:index/getAwsBucketPolicy:getAwsBucketPolicy"]


def test_account_credentials_are_pulumi_secrets(registered: Recording, registered_config) -> None:
    providers = registered.of_type("pulumi:providers:databricks")
    assert {p.name for p in providers} == {"databricks-registration-account", "databricks-registration-workspace"}
    for provider in providers:
        assert SECRET_SIG in provider.inputs["clientSecret"], provider.name
        assert provider.inputs["clientId"] == registered_config.databricks.client_id
    (account,) = [p for p in providers if p.name.endswith("-account")]
    assert account.inputs["host"] == "https://accounts.cloud.databricks.com"


def test_workspace_is_wired_to_our_credentials_storage_network_and_private_access(registered: Recording) -> None:
    workspace = _one(registered, "MwsWorkspaces")
    assert workspace["credentialsId"] == "mwscredentials-databricks-registration-credentials"
    assert workspace["storageConfigurationId"] == "mwsstorageconfigurations-databricks-registration-storage"
    assert workspace["networkId"] == "mwsnetworks-databricks-registration-network"
    assert workspace["privateAccessSettingsId"] == "mwsprivateaccesssettings-databricks-registration-private-access"
    assert _one(registered, "MwsCredentials")["roleArn"] == registered.outputs["databricks_cross_account_role_arn"]
    assert _one(registered, "MwsStorageConfigurations")["bucketName"] == registered.outputs["databricks_root_bucket"]


def test_network_configuration_uses_the_compute_subnets_sg_and_both_back_end_endpoints(registered: Recording) -> None:
    network, out = _one(registered, "MwsNetworks"), registered.outputs
    assert network["vpcId"] == out["vpc1_id"]
    assert network["subnetIds"] == out["databricks_subnet_ids"]
    assert network["securityGroupIds"] == [out["databricks_security_group_id"]]
    endpoints = {e.inputs["awsVpcEndpointId"] for e in registered.of_type(f"{DBX}mwsVpcEndpoint:MwsVpcEndpoint")}
    assert endpoints == {out["databricks_workspace_endpoint_id"], out["databricks_relay_endpoint_id"]}
    assert network["vpcEndpoints"] == {
        "restApis": ["mwsvpcendpoint-databricks-registration-rest-endpoint"],
        "dataplaneRelays": ["mwsvpcendpoint-databricks-registration-relay-endpoint"],
    }


def test_private_access_settings_allow_no_public_access(registered: Recording) -> None:
    access = _one(registered, "MwsPrivateAccessSettings")
    assert access["publicAccessEnabled"] is False and access["privateAccessLevel"] == "ENDPOINT"
    assert access["allowedVpcEndpointIds"] == ["mwsvpcendpoint-databricks-registration-rest-endpoint"]


def test_metastore_is_assigned_to_the_workspace(registered: Recording, registered_config) -> None:
    assignment = _one(registered, "MetastoreAssignment")
    assert assignment["metastoreId"] == registered_config.databricks.metastore_id
    assert assignment["workspaceId"] == "1234567890123456"


def test_storage_credential_external_id_feeds_the_role_trust(registered: Recording, registered_config) -> None:
    credential = registered.of_type(f"{DBX}storageCredential:StorageCredential")[0]
    assert credential.inputs["awsIamRole"]["roleArn"] == registered.outputs["unity_catalog_role_arn"]
    issued = credential.state["awsIamRole"]["externalId"]
    trust = statements(registered.named("unity-catalog-role"), "assumeRolePolicy")
    assert {s["Condition"]["StringEquals"]["sts:ExternalId"] for s in trust} == {issued}
    assert issued != registered_config.databricks.unity_catalog_external_id, "fed from the credential, not pasted"


def test_root_bucket_carries_databricks_policy_tls_and_endpoint_denies(
    registered: Recording, registered_config
) -> None:
    policy = {s["Sid"]: s for s in statements(registered.named("databricks-root-policy"))}
    assert policy["GrantDatabricksAccess"]["Principal"] == {"AWS": "arn:aws:iam::414351767826:root"}
    assert policy["DenyInsecureTransport"]["Effect"] == "Deny"
    outside = policy["DenyOutsideProjectVpcEndpoints"]["Condition"]["StringNotEquals"]
    assert outside == {
        "aws:SourceVpce": [registered.named("compute-s3-gateway").id],
        "aws:PrincipalAccount": registered_config.databricks.aws_account_id,
    }


@pytest.mark.parametrize("zone", ZONES)
def test_one_external_location_per_zone_raw_read_only(registered: Recording, zone: str) -> None:
    location = registered.named(f"unity-catalog-objects-{zone}-location").inputs
    assert location["url"] == f"s3://{registered.outputs[f'{zone}_bucket']}/"
    assert location["credentialName"] == "medallion-reg-zones"
    assert location["readOnly"] is (zone == "raw")


def test_catalog_and_one_schema_per_zone(registered: Recording) -> None:
    assert _one(registered, "Catalog")["name"] == "medallion"
    schemas = {s.inputs["name"]: s.inputs for s in registered.of_type(f"{DBX}schema:Schema")}
    assert set(schemas) == {*ZONES, "platform"}  # and the platform's own, for its staging volume
    assert all(s["catalogName"] == "medallion" for s in schemas.values())
    assert "storageRoot" not in schemas["raw"], "raw's location is read-only: no managed storage there"
    for zone in ("trusted", "refined"):  # apart from the zone's external tables, which sit at the bucket's top level
        assert schemas[zone]["storageRoot"] == f"s3://{registered.outputs[f'{zone}_bucket']}/_managed/"


def _schema_grants(registered: Recording, zone: str) -> dict[str, set[str]]:
    grants = registered.named(f"unity-catalog-objects-{zone}-grants").inputs
    assert grants["schema"] == registered.named(f"unity-catalog-objects-{zone}-schema").id
    return {g["principal"]: set(g["privileges"]) for g in grants["grants"]}


def test_raw_is_readable_only_by_the_platform_principal(registered: Recording, registered_config) -> None:
    assert set(_schema_grants(registered, "raw")) == {registered_config.databricks.platform_principal}


@pytest.mark.parametrize("zone", ZONES)
def test_schema_grants_match_the_platform_defaults(registered: Recording, registered_config, zone: str) -> None:
    granted = _schema_grants(registered, zone)
    platform = registered_config.databricks.platform_principal
    assert {p: set(v) for p, v in DEFAULT_GRANTS[zone].items()} == {p: v for p, v in granted.items() if p != platform}


def test_only_the_platform_principal_may_write_tables(registered: Recording, registered_config) -> None:
    platform = registered_config.databricks.platform_principal
    for zone in ZONES:
        for principal, privileges in _schema_grants(registered, zone).items():
            if principal != platform:
                assert privileges <= {"USE_SCHEMA", "SELECT"}, (zone, principal)


@pytest.mark.parametrize("zone", ZONES)
def test_the_platform_gets_what_the_local_set_up_grants_it(registered: Recording, registered_config, zone: str) -> None:
    # one definition (catalog/account.py) for Pulumi and the stand-in's set-up: what the strict stand-in's tests need
    platform = registered_config.databricks.platform_principal
    assert _schema_grants(registered, zone)[platform] == set(PLATFORM_PRIVILEGES[zone])
    grants = registered.named(f"unity-catalog-objects-{zone}-location-grants").inputs["grants"]
    assert {g["principal"]: set(g["privileges"]) for g in grants} == {platform: set(PLATFORM_LOCATION_PRIVILEGES[zone])}
    # tags are applied to trusted and refined tables after their ownership moved to the contract's owner
    assert ("APPLY_TAG" in PLATFORM_PRIVILEGES[zone]) is (zone != "raw")


def test_raw_location_grants_no_file_writes(registered: Recording) -> None:
    grants = registered.named("unity-catalog-objects-raw-location-grants").inputs["grants"]
    assert all("WRITE_FILES" not in g["privileges"] for g in grants)


def test_registered_buckets_log_to_the_access_log_bucket(registered: Recording) -> None:
    logging = {r.inputs["bucket"] for r in registered.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert registered.outputs["databricks_root_bucket"] in logging
    policy = registered.named("access-logs-policy")
    sources = json.loads(policy.inputs["policy"])["Statement"][-1]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert f"arn:aws:s3:::{registered.outputs['databricks_root_bucket']}" in sources


def test_the_catalog_has_its_own_managed_location(registered: Recording) -> None:
    # new metastores have no root storage: a catalog without a managed location is refused
    assert _one(registered, "Catalog")["storageRoot"] == f"s3://{registered.outputs['refined_bucket']}/_catalog/"
    assert registered.outputs["databricks_catalog_storage_root"] == _one(registered, "Catalog")["storageRoot"]


def test_the_staging_volume_is_read_and_written_only_by_the_platform(registered: Recording, registered_config) -> None:
    volume = registered.named("unity-catalog-objects-staging-volume").inputs
    assert (volume["catalogName"], volume["schemaName"], volume["name"]) == ("medallion", "platform", "staging")
    assert volume["volumeType"] == "MANAGED"
    grants = registered.named("unity-catalog-objects-staging-volume-grants").inputs
    assert grants["volume"] == registered.named("unity-catalog-objects-staging-volume").id
    platform = registered_config.databricks.platform_principal
    assert {g["principal"]: set(g["privileges"]) for g in grants["grants"]} == {
        platform: {"READ_VOLUME", "WRITE_VOLUME"}
    }
    assert registered.outputs["databricks_staging_volume"] == "/Volumes/medallion/platform/staging"


def test_the_workspace_has_no_legacy_dbfs_or_access_and_a_job_compute_policy(registered: Recording) -> None:
    assert registered.named("unity-catalog-objects-no-legacy-dbfs").inputs["disableLegacyDbfs"] == {"value": True}
    assert registered.named("unity-catalog-objects-no-legacy-access").inputs["disableLegacyAccess"] == {"value": True}
    policy = json.loads(registered.named("unity-catalog-objects-job-compute-policy").inputs["definition"])
    assert policy["cluster_type"] == {"type": "fixed", "value": "job"}
    assert set(policy["data_security_mode"]["values"]) == {"SINGLE_USER", "USER_ISOLATION"}
