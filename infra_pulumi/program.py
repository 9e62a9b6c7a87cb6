"""Compose the layers into the Medallion AWS stack; `__main__.py` calls `build` and exports the result.

Tests call `build` under `pulumi.runtime.set_mocks` with a config made in the test.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import pulumi

from infra_pulumi.components.common import Arns, CarveOut
from infra_pulumi.components.databricks import (
    UNITY_CATALOG_ACTIONS,
    UNITY_CATALOG_READ_ACTIONS,
    Databricks,
    UnityCatalogRole,
)
from infra_pulumi.components.databricks_workspace import (
    DatabricksWorkspace,
    UnityCatalog,
    WorkspaceArgs,
    root_bucket_policy,
    staging_volume_path,
)
from infra_pulumi.components.iam import Iam, IamArgs
from infra_pulumi.components.keys import DATA_KEYS, Keys
from infra_pulumi.components.network import Network, resolver_ip, workspace_root_bucket
from infra_pulumi.components.orchestration import Orchestration, OrchestrationArgs
from infra_pulumi.components.storage import BUCKET_CONFIG_ACTIONS, Storage
from infra_pulumi.components.streaming import Streaming
from infra_pulumi.config import InfraConfig
from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.naming import ResourceNames, resource_names

__all__ = ["build", "endpoint_urls", "export"]


def build(config: InfraConfig, contracts: dict[str, Contract] | None = None) -> dict[str, Any]:
    """Create every layer and return the stack outputs (names, URLs, ARNs) the platform reads."""
    contracts = contracts if contracts is not None else load_contracts()
    bucket_suffix = config.account_id  # bucket names are global: the account id keeps them unique
    names = resource_names(config.stack, project=config.project, bucket_suffix=bucket_suffix, contracts=contracts)
    register = config.databricks.register
    if register:
        names = dataclasses.replace(names, buckets={**names.buckets, "databricks_root": workspace_root_bucket(config)})
    datasets = sorted(contracts)

    keys = Keys("keys", config, names)
    network = Network("network", config, names, keys)
    iam = Iam("iam", IamArgs(config, names, keys, datasets))
    databricks = Databricks("databricks", config, names, network)
    storage = Storage(
        "storage",
        config,
        names,
        keys,
        endpoint_ids=_bucket_endpoints(network, names),
        carve_outs=_bucket_carve_outs(config, names, iam),
        extra_statements={"databricks_root": root_bucket_policy(names.buckets["databricks_root"], config)}
        if register
        else None,
    )
    streaming = Streaming(
        "streaming",
        config,
        names,
        keys,
        storage.buckets["raw"],
        iam.firehose,
        kinesis_endpoint_ids=[network.interfaces["kinesis-streams"].id],
    )
    orchestration = Orchestration(
        "orchestration",
        OrchestrationArgs(
            config=config,
            names=names,
            keys=keys,
            raw_bucket=storage.buckets["raw"],
            staging_bucket=storage.buckets["staging"],
            batch_role=iam.batch_operations,
            step_functions_role=iam.step_functions,
            events_role=iam.events_start_batch_copy,
            batch_datasets=[d for d in datasets if contracts[d].source.kind == "batch"],
            sqs_endpoint_ids=[network.interfaces["sqs"].id],
        ),
    )
    workspace = _register_workspace(config, names, network, databricks, storage) if register else None
    uc_role = UnityCatalogRole(
        "unity-catalog",
        config,
        names,
        keys,
        external_id=workspace.external_id if workspace else config.databricks.unity_catalog_external_id,
    )
    unity = UnityCatalog("unity-catalog-objects", config, names, workspace, uc_role.policy) if workspace else None
    layers = _Layers(keys, network, iam, databricks, storage, streaming, orchestration, uc_role, workspace, unity)
    return _outputs(config, layers)


@dataclass(frozen=True)
class _Layers:
    """The built layers, for the outputs."""

    keys: Keys
    network: Network
    iam: Iam
    databricks: Databricks
    storage: Storage
    streaming: Streaming
    orchestration: Orchestration
    uc_role: UnityCatalogRole
    workspace: DatabricksWorkspace | None
    unity: UnityCatalog | None


def _outputs(config: InfraConfig, layers: _Layers) -> dict[str, Any]:
    """The stack outputs: names, URLs, ARNs and ids the platform and the operators read."""
    keys, network, iam, databricks = layers.keys, layers.network, layers.iam, layers.databricks
    storage, streaming, orchestration = layers.storage, layers.streaming, layers.orchestration
    uc_role, workspace = layers.uc_role, layers.workspace
    return {
        # what `naming.resource_names` derives every name from (the platform's MEDALLION_STACK/PROJECT/BUCKET_SUFFIX)
        "stack": config.stack,
        "project": config.project,
        "bucket_suffix": config.account_id,
        "aws_region": config.region,
        "aws_account_id": config.account_id,
        **{f"{role}_bucket": bucket.bucket for role, bucket in storage.buckets.items()},
        **{f"{purpose}_key_arn": getattr(keys, purpose).arn for purpose in (*DATA_KEYS, "streams", "events", "logs")},
        "kinesis_streams": {d: s.name for d, s in streaming.streams.items()},
        "firehose_delivery_streams": {d: s.name for d, s in streaming.delivery_streams.items()},
        "landing_queue_url": orchestration.queue.url,
        "landing_queue_arn": orchestration.queue.arn,
        "landing_dlq_url": orchestration.dead_letter_queue.url,
        "batch_copy_state_machine_arn": orchestration.state_machine.arn,
        "firehose_role_arn": iam.firehose.arn,
        "batch_operations_role_arn": iam.batch_operations.arn,
        "step_functions_role_arn": iam.step_functions.arn,
        "dagster_worker_role_arn": iam.dagster_worker.arn,
        "databricks_cross_account_role_arn": databricks.cross_account_role.arn,
        "unity_catalog_role_arn": uc_role.role.arn,
        "vpc1_id": network.vpc1.id,
        "vpc2_id": network.vpc2.id,
        "subnet_ids": {
            "subnet1_raw": network.subnet1.id,
            "subnet2_trusted": network.subnet2.id,
            "subnet3_refined": network.subnet3.id,
        },
        "zone_s3_endpoint_ids": {zone: z.endpoint.id for zone, z in network.zones.items()},
        "compute_s3_gateway_id": network.s3_compute_gateway.id,
        **endpoint_urls(network),
        "resolver_inbound_ips": [resolver_ip(c) for c in config.network.endpoint_subnet_cidrs]
        if network.resolver
        else None,
        "vpn_connection_id": network.vpn_connection.id if network.vpn_connection else None,
        "databricks_subnet_ids": [s.id for s in databricks.subnets],
        "databricks_security_group_id": databricks.security_group.id,
        "databricks_workspace_endpoint_id": databricks.workspace_endpoint.id,
        "databricks_relay_endpoint_id": databricks.relay_endpoint.id,
        "databricks_workspace_url": workspace.workspace.workspace_url if workspace else None,
        "databricks_catalog": config.databricks.catalog if workspace else None,
        "databricks_platform_principal": config.databricks.platform_principal if workspace else None,
        "databricks_staging_volume": staging_volume_path(config.databricks.catalog) if workspace else None,
        "databricks_catalog_storage_root": layers.unity.catalog_storage_root if layers.unity else None,
        "databricks_cluster_policy_id": layers.unity.cluster_policy.policy_id if layers.unity else None,
    }


def _bucket_endpoints(network: Network, names: ResourceNames) -> dict[str, list[Any]]:
    """The endpoints each bucket accepts: its zone's S3 interface endpoint, and the compute path for the zones."""
    zones, gateway = network.zones, network.s3_compute_gateway.id
    endpoints: dict[str, list[Any]] = {
        "raw": [zones["raw"].endpoint.id, gateway],
        "staging": [zones["raw"].endpoint.id],  # on-premises exports arrive through subnet 1's endpoint
        "trusted": [zones["trusted"].endpoint.id, gateway],
        "refined": [zones["refined"].endpoint.id, gateway],
        "access_logs": [],  # read by the break-glass role only
    }
    if "databricks_root" in names.buckets:
        endpoints["databricks_root"] = [gateway]
    return endpoints


def _bucket_carve_outs(config: InfraConfig, names: ResourceNames, iam: Iam) -> dict[str, list[CarveOut]]:
    """Who may reach each bucket from outside its endpoints, and for which actions."""
    admins = [
        CarveOut("break_glass", config.break_glass_role_arn),
        CarveOut("deployer", config.deploy_role_arn, BUCKET_CONFIG_ACTIONS),
    ]
    uc_role = Arns(config).role(names.roles["unity_catalog"])  # name-derived: the role is created last
    firehose, batch = CarveOut("firehose", iam.firehose.arn), CarveOut("batch_operations", iam.batch_operations.arn)
    carve_outs = {
        "raw": [*admins, firehose, batch, CarveOut("unity_catalog", uc_role, UNITY_CATALOG_READ_ACTIONS)],
        "trusted": [*admins, CarveOut("unity_catalog", uc_role, UNITY_CATALOG_ACTIONS)],
        "refined": [*admins, CarveOut("unity_catalog", uc_role, UNITY_CATALOG_ACTIONS)],
        "staging": [*admins, batch],
        "access_logs": admins,
    }
    if "databricks_root" in names.buckets:
        carve_outs["databricks_root"] = admins
    return carve_outs


def _register_workspace(
    config: InfraConfig, names: ResourceNames, network: Network, databricks: Databricks, storage: Storage
) -> DatabricksWorkspace:
    return DatabricksWorkspace(
        "databricks-registration",
        WorkspaceArgs(
            config=config,
            names=names,
            cross_account_role_arn=databricks.cross_account_role.arn,
            root_bucket=storage.buckets["databricks_root"].bucket,
            vpc_id=network.vpc1.id,
            subnet_ids=[s.id for s in databricks.subnets],
            security_group_id=databricks.security_group.id,
            workspace_endpoint_id=databricks.workspace_endpoint.id,
            relay_endpoint_id=databricks.relay_endpoint.id,
            unity_catalog_role_arn=Arns(config).role(names.roles["unity_catalog"]),
        ),
    )


def _dns(endpoint: Any) -> pulumi.Output[str]:
    """An interface endpoint's own (regional) DNS name, without the leading `*.` of S3's."""
    return endpoint.dns_entries.apply(lambda entries: entries[0].dns_name.removeprefix("*."))


def endpoint_urls(network: Network) -> dict[str, Any]:
    """URLs of the endpoints by their own DNS names (publicly resolvable to private IPs, so usable over the VPN).

    S3 follows AWS's documented form for interface endpoints: `https://bucket.<endpoint DNS>` for objects
    and `https://control.<endpoint DNS>` for S3 Control (Batch Operations jobs).
    """
    return {
        "s3_endpoint_urls": {
            z: _dns(e.endpoint).apply(lambda d: f"https://bucket.{d}") for z, e in network.zones.items()
        },
        "s3_control_endpoint_url": _dns(network.zones["raw"].endpoint).apply(lambda d: f"https://control.{d}"),
        "kinesis_endpoint_url": _dns(network.interfaces["kinesis-streams"]).apply(lambda d: f"https://{d}"),
        "sts_endpoint_url": _dns(network.interfaces["sts"]).apply(lambda d: f"https://{d}"),
        "sts_vpc2_endpoint_url": _dns(network.sts_interface2).apply(lambda d: f"https://{d}"),
    }


def export(outputs: dict[str, Any]) -> None:
    """Export every output of `build` (None values, such as an absent VPN, are skipped)."""
    for key, value in outputs.items():
        if value is not None:
            pulumi.export(key, value)
