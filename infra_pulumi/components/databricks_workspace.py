"""Databricks registration (pulumi-databricks), behind `databricks.register`: the workspace, then Unity Catalog.

`DatabricksWorkspace` (account level): credentials on the cross-account role, the storage configuration on
the workspace root bucket, the two back-end VPC endpoints, the network configuration, private access
settings (no public access), the workspace, its metastore assignment, and the Unity Catalog storage
credential on the (name-derived) storage-credential role. Databricks issues the credential's external id;
`UnityCatalogRole` is created from it, so nobody pastes it.

`UnityCatalog` (workspace level, after that role exists): one external location per zone (raw read-only),
the catalog with its own managed location (new metastores have no root storage), one schema per zone, and
grants: the platform principal's (`medallion_platform.catalog.account`, which the local stand-in's set-up grants
too) on every zone, and `medallion_platform.settings.DEFAULT_GRANTS` on top (raw: nobody else). The platform's own
schema holds the staging volume (step packages, notebook code, Pipes messages: no DBFS), on which only the platform
principal may READ/WRITE VOLUME. The workspace is secure by default: legacy
DBFS root and legacy access modes off, and a cluster policy for job compute with a Unity Catalog access mode.

The account service principal's OAuth secret is a Pulumi secret (`medallion:databricksClientSecret`).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_databricks as databricks

from infra_pulumi.config import InfraConfig
from medallion_platform.catalog.account import (
    PLATFORM_LOCATION_PRIVILEGES,
    PLATFORM_PRIVILEGES,
    PLATFORM_SCHEMA,
    STAGING_VOLUME,
    STAGING_VOLUME_PRIVILEGES,
    schema_grants,
)
from medallion_platform.naming import ZONES, ResourceNames

__all__ = [
    "ACCOUNT_HOST",
    "CLUSTER_POLICY",
    "PLATFORM_PRIVILEGES",
    "PLATFORM_SCHEMA",
    "STAGING_VOLUME",
    "DatabricksWorkspace",
    "UnityCatalog",
    "WorkspaceArgs",
    "root_bucket_policy",
    "schema_grants",
    "staging_volume_path",
]

ACCOUNT_HOST = "https://accounts.cloud.databricks.com"
CLUSTER_POLICY: Mapping[str, Any] = {
    "cluster_type": {"type": "fixed", "value": "job"},
    "data_security_mode": {"type": "allowlist", "values": ["SINGLE_USER", "USER_ISOLATION"]},
    "spark_version": {"type": "regex", "pattern": r"1[5-9]\.[0-9]+\.x-.*"},
    "autoscale.max_workers": {"type": "range", "maxValue": 8},
}
"""Job compute only, a Unity Catalog access mode (dedicated or standard), a DBR from 15 on, a bounded size."""


def staging_volume_path(catalog: str) -> str:
    """The staging volume as clusters and the Files API name it."""
    return f"/Volumes/{catalog}/{PLATFORM_SCHEMA}/{STAGING_VOLUME}"


def root_bucket_policy(bucket: pulumi.Input[str], config: InfraConfig) -> pulumi.Output[str]:
    """Databricks' own policy for a workspace root bucket (pulumi-databricks' `get_aws_bucket_policy`)."""
    result = databricks.get_aws_bucket_policy_output(
        bucket=bucket, databricks_e2_account_id=config.databricks.account_id
    )
    return result.json


@dataclass(frozen=True)
class WorkspaceArgs:
    """The AWS pieces the workspace is registered with."""

    config: InfraConfig
    names: ResourceNames
    cross_account_role_arn: pulumi.Input[str]
    root_bucket: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    workspace_endpoint_id: pulumi.Input[str]
    relay_endpoint_id: pulumi.Input[str]
    unity_catalog_role_arn: str
    """Name-derived: the role is created after the credential, from its external id."""


class DatabricksWorkspace(pulumi.ComponentResource):
    """Account-level registration: credentials, storage, network, private access, workspace, metastore, credential."""

    def __init__(self, name: str, args: WorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("medallion:infra:DatabricksWorkspace", name, None, opts)
        self._name, self._args = name, args
        cfg, dbx = args.config, args.config.databricks
        self._secret = pulumi.Output.secret(dbx.client_secret)
        self.account = databricks.Provider(
            f"{name}-account",
            host=ACCOUNT_HOST,
            account_id=dbx.account_id,
            client_id=dbx.client_id,
            client_secret=self._secret,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workspace = self._workspace()
        assignment = databricks.MetastoreAssignment(
            f"{name}-metastore",
            metastore_id=dbx.metastore_id,
            workspace_id=self.workspace.workspace_id.apply(lambda i: str(int(i))),  # numbers cross the wire as floats
            opts=self._on(self.account),
        )
        self.provider = databricks.Provider(
            f"{name}-workspace",
            host=self.workspace.workspace_url,
            client_id=dbx.client_id,
            client_secret=self._secret,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.storage_credential = databricks.StorageCredential(
            f"{name}-storage-credential",
            name=f"{cfg.project}-{cfg.stack}-zones",
            aws_iam_role={"role_arn": args.unity_catalog_role_arn},
            comment="Medallion zone buckets (raw, trusted, refined)",
            # the role is created from this credential's external id, after it: validate on the locations
            skip_validation=True,
            opts=self._on(self.provider, depends_on=[assignment]),
        )
        self.external_id: pulumi.Output[str] = self.storage_credential.aws_iam_role.apply(_external_id)
        self.register_outputs(
            {"workspace_url": self.workspace.workspace_url, "workspace_id": self.workspace.workspace_id}
        )

    def _on(
        self, provider: databricks.Provider, depends_on: list[pulumi.Resource] | None = None
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on or [])

    def _workspace(self) -> databricks.MwsWorkspaces:
        args, name = self._args, self._name
        cfg, dbx = args.config, args.config.databricks
        base = f"{cfg.project}-{cfg.stack}"
        on = self._on(self.account)
        credentials = databricks.MwsCredentials(
            f"{name}-credentials",
            account_id=dbx.account_id,
            credentials_name=f"{base}-credentials",
            role_arn=args.cross_account_role_arn,
            opts=on,
        )
        storage = databricks.MwsStorageConfigurations(
            f"{name}-storage",
            account_id=dbx.account_id,
            storage_configuration_name=f"{base}-root",
            bucket_name=args.root_bucket,
            opts=on,
        )
        endpoints = {
            purpose: databricks.MwsVpcEndpoint(
                f"{name}-{purpose}-endpoint",
                account_id=dbx.account_id,
                aws_vpc_endpoint_id=endpoint_id,
                vpc_endpoint_name=f"{base}-{purpose}",
                region=cfg.region,
                opts=on,
            )
            for purpose, endpoint_id in (("rest", args.workspace_endpoint_id), ("relay", args.relay_endpoint_id))
        }
        network = databricks.MwsNetworks(
            f"{name}-network",
            account_id=dbx.account_id,
            network_name=f"{base}-network",
            vpc_id=args.vpc_id,
            subnet_ids=args.subnet_ids,
            security_group_ids=[args.security_group_id],
            vpc_endpoints={
                "rest_apis": [endpoints["rest"].vpc_endpoint_id],
                "dataplane_relays": [endpoints["relay"].vpc_endpoint_id],
            },
            opts=on,
        )
        access = databricks.MwsPrivateAccessSettings(
            f"{name}-private-access",
            private_access_settings_name=f"{base}-private-access",
            region=cfg.region,
            public_access_enabled=False,
            private_access_level="ENDPOINT",
            allowed_vpc_endpoint_ids=[endpoints["rest"].vpc_endpoint_id],
            opts=on,
        )
        return databricks.MwsWorkspaces(
            f"{name}-workspace",
            account_id=dbx.account_id,
            workspace_name=base,
            aws_region=cfg.region,
            credentials_id=credentials.credentials_id,
            storage_configuration_id=storage.storage_configuration_id,
            network_id=network.network_id,
            private_access_settings_id=access.private_access_settings_id,
            pricing_tier="ENTERPRISE",
            opts=on,
        )


def _external_id(role: Any) -> str:
    """The external id Databricks issued for the storage credential's role."""
    return str(role["external_id"] if isinstance(role, dict) else role.external_id)


class UnityCatalog(pulumi.ComponentResource):
    """External locations (raw read-only), the catalog, a schema per zone, grants."""

    def __init__(
        self,
        name: str,
        config: InfraConfig,
        names: ResourceNames,
        workspace: DatabricksWorkspace,
        role: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`role`: the storage-credential role's policy; the locations are validated once it exists."""
        super().__init__("medallion:infra:UnityCatalog", name, None, opts)
        dbx = config.databricks
        on = pulumi.ResourceOptions(parent=self, provider=workspace.provider)
        credential = workspace.storage_credential
        self.locations = {
            zone: databricks.ExternalLocation(
                f"{name}-{zone}-location",
                name=f"{config.project}-{config.stack}-{zone}",
                url=f"s3://{names.buckets[zone]}/",
                credential_name=credential.name,
                read_only=zone == "raw",
                comment=f"the {zone} zone bucket",
                opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[role])),
            )
            for zone in ZONES
        }
        # the catalog's managed location, in the refined zone's (writable) external location
        self.catalog_storage_root = f"s3://{names.buckets['refined']}/_catalog/"
        self.catalog = databricks.Catalog(
            f"{name}-catalog",
            name=dbx.catalog,
            comment="Medallion: raw, trusted and refined zones",
            storage_root=self.catalog_storage_root,
            opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[self.locations["refined"]])),
        )
        grants = schema_grants(dbx.platform_principal)
        self.schemas: dict[str, databricks.Schema] = {}
        for zone in ZONES:
            # raw's location is read-only, so raw has no managed storage root (its tables are external); the
            # others' lies under its own prefix, apart from the external tables at the bucket's top level
            # ("external tables can't overlap managed storage locations"; `_` names no table)
            schema = databricks.Schema(
                f"{name}-{zone}-schema",
                catalog_name=self.catalog.name,
                name=zone,
                storage_root=None if zone == "raw" else f"s3://{names.buckets[zone]}/_managed/",
                comment=f"the {zone} zone",
                opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[self.locations[zone]])),
            )
            databricks.Grants(
                f"{name}-{zone}-grants",
                schema=schema.id,
                grants=[{"principal": p, "privileges": privs} for p, privs in sorted(grants[zone].items())],
                opts=on,
            )
            self.schemas[zone] = schema
        readers = sorted({p for zone in ZONES for p in grants[zone]})
        databricks.Grants(
            f"{name}-catalog-grants",
            catalog=self.catalog.name,
            grants=[{"principal": p, "privileges": ["USE_CATALOG"]} for p in readers],
            opts=on,
        )
        platform = databricks.Schema(
            f"{name}-platform-schema",
            catalog_name=self.catalog.name,
            name=PLATFORM_SCHEMA,
            comment="the platform's own objects: its staging volume",
            opts=on,
        )
        databricks.Grants(
            f"{name}-platform-grants",
            schema=platform.id,
            grants=[{"principal": dbx.platform_principal, "privileges": ["USE_SCHEMA"]}],
            opts=on,
        )
        self.staging_volume = databricks.Volume(
            f"{name}-staging-volume",
            catalog_name=self.catalog.name,
            schema_name=platform.name,
            name=STAGING_VOLUME,
            volume_type="MANAGED",
            comment="step packages, notebook code and Pipes messages (no DBFS)",
            opts=on,
        )
        databricks.Grants(
            f"{name}-staging-volume-grants",
            volume=self.staging_volume.id,
            grants=[{"principal": dbx.platform_principal, "privileges": STAGING_VOLUME_PRIVILEGES}],
            opts=on,
        )
        self.cluster_policy = databricks.ClusterPolicy(
            f"{name}-job-compute-policy",
            name=f"{config.project}-{config.stack}-job-compute",
            definition=json.dumps(CLUSTER_POLICY, sort_keys=True),
            description="Medallion's job clusters: Unity Catalog access modes only",
            opts=on,
        )
        databricks.DisableLegacyDbfsSetting(f"{name}-no-legacy-dbfs", disable_legacy_dbfs={"value": True}, opts=on)
        databricks.DisableLegacyAccessSetting(
            f"{name}-no-legacy-access", disable_legacy_access={"value": True}, opts=on
        )
        for zone, location in self.locations.items():
            databricks.Grants(
                f"{name}-{zone}-location-grants",
                external_location=location.name,
                grants=[{"principal": dbx.platform_principal, "privileges": PLATFORM_LOCATION_PRIVILEGES[zone]}],
                opts=on,
            )
        self.register_outputs({"catalog": self.catalog.name, "staging_volume": staging_volume_path(dbx.catalog)})
