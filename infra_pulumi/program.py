"""Compose the layers into the Medallion AWS stack; `__main__.py` calls `build` and exports the result.

Tests call `build` under `pulumi.runtime.set_mocks` with a config made in the test.
"""

from typing import Any

import pulumi

from infra_pulumi.components.databricks import Databricks
from infra_pulumi.components.iam import Iam
from infra_pulumi.components.keys import Keys
from infra_pulumi.components.network import Network
from infra_pulumi.components.orchestration import Orchestration
from infra_pulumi.components.storage import Storage
from infra_pulumi.components.streaming import Streaming
from infra_pulumi.config import InfraConfig
from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.naming import resource_names

__all__ = ["build", "export"]


def build(config: InfraConfig, contracts: dict[str, Contract] | None = None) -> dict[str, Any]:
    """Create every layer and return the stack outputs (names, URLs, ARNs) the platform reads."""
    contracts = contracts if contracts is not None else load_contracts()
    bucket_suffix = config.account_id  # bucket names are global: the account id keeps them unique
    names = resource_names(config.stack, project=config.project, bucket_suffix=bucket_suffix, contracts=contracts)
    datasets = sorted(contracts)
    batch_datasets = [d for d in datasets if contracts[d].source.kind == "batch"]

    keys = Keys("keys", config)
    network = Network("network", config, names, keys)
    iam = Iam("iam", config, names, keys, datasets)
    databricks = Databricks("databricks", config, names, network, keys)
    admins = {"break_glass": config.break_glass_role_arn, "deployer": config.deploy_role_arn}
    uc = {"unity_catalog": databricks.unity_catalog_role.arn}
    storage = Storage(
        "storage",
        config,
        names,
        keys,
        endpoint_ids=network.s3_endpoint_ids,
        carve_outs={
            "raw": {**admins, **uc, "firehose": iam.firehose.arn, "batch_operations": iam.batch_operations.arn},
            "trusted": {**admins, **uc},
            "refined": {**admins, **uc},
            "staging": {**admins, "batch_operations": iam.batch_operations.arn},
            "access_logs": admins,
        },
    )
    streaming = Streaming("streaming", config, names, keys, storage.buckets["raw"], iam.firehose)
    orchestration = Orchestration(
        "orchestration",
        config,
        names,
        keys,
        raw_bucket=storage.buckets["raw"],
        staging_bucket=storage.buckets["staging"],
        batch_role=iam.batch_operations,
        step_functions_role=iam.step_functions,
        events_role=iam.events_start_batch_copy,
        batch_datasets=batch_datasets,
    )

    return {
        # what `naming.resource_names` derives every name from (the platform's MEDALLION_STACK/PROJECT/BUCKET_SUFFIX)
        "stack": config.stack,
        "project": config.project,
        "bucket_suffix": bucket_suffix,
        "aws_region": config.region,
        "aws_account_id": config.account_id,
        **{f"{role}_bucket": bucket.bucket for role, bucket in storage.buckets.items()},
        **{
            f"{purpose}_key_arn": getattr(keys, purpose).arn
            for purpose in ("raw", "curated", "streams", "events", "logs")
        },
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
        "unity_catalog_role_arn": databricks.unity_catalog_role.arn,
        "vpc1_id": network.vpc1.id,
        "vpc2_id": network.vpc2.id,
        "subnet_ids": {
            "subnet1_raw": network.subnet1.id,
            "subnet2_trusted": network.subnet2.id,
            "subnet3_refined": network.subnet3.id,
        },
        "s3_endpoint_ids": network.s3_endpoint_ids,
        "vpn_connection_id": network.vpn_connection.id if network.vpn_connection else None,
        "databricks_subnet_ids": [s.id for s in databricks.subnets],
        "databricks_security_group_id": databricks.security_group.id,
        "databricks_workspace_endpoint_id": databricks.workspace_endpoint.id,
        "databricks_relay_endpoint_id": databricks.relay_endpoint.id,
    }


def export(outputs: dict[str, Any]) -> None:
    """Export every output of `build` (None values, such as an absent VPN, are skipped)."""
    for key, value in outputs.items():
        if value is not None:
            pulumi.export(key, value)
