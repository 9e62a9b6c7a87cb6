"""AWS resource names, derived once from the stack name and the dataset contracts.

The Pulumi program (`infra_pulumi/`) and the local AWS emulator set-up (`medallion local-aws up`)
both call `resource_names`, so the names in the cloud and on the emulator cannot drift.
"""

from dataclasses import dataclass, field

from medallion_platform.contracts import Contract, load_contracts

__all__ = ["ZONES", "ResourceNames", "resource_names"]

ZONES = ("raw", "trusted", "refined")


@dataclass(frozen=True)
class ResourceNames:
    """Every AWS resource name the platform uses, for one stack."""

    project: str
    stack: str
    buckets: dict[str, str]
    """Bucket name by role: raw, trusted, refined, staging, access_logs."""
    streams: dict[str, str]
    """Kinesis stream name by stream dataset."""
    delivery_streams: dict[str, str]
    """Firehose delivery stream name by stream dataset."""
    landing_prefixes: dict[str, str]
    """Landing prefix in the raw bucket by dataset (every source kind)."""
    landing_queue: str
    landing_dlq: str
    landing_rule: str
    staging_rule: str
    batch_copy_state_machine: str
    firehose_error_prefix: str = "errors/firehose/"
    roles: dict[str, str] = field(default_factory=dict)

    def zone_root(self, zone: str) -> str:
        """`s3://<bucket>` root of a zone (raw, trusted or refined)."""
        return f"s3://{self.buckets[zone]}"


def resource_names(
    stack: str,
    *,
    project: str = "medallion",
    bucket_suffix: str = "",
    contracts: dict[str, Contract] | None = None,
) -> ResourceNames:
    """Names for `stack`. `bucket_suffix` (e.g. the account id) keeps global bucket names unique."""
    contracts = contracts if contracts is not None else load_contracts()
    base = f"{project}-{stack}"
    suffix = f"-{bucket_suffix}" if bucket_suffix else ""
    buckets = {role: f"{base}-{role.replace('_', '-')}{suffix}" for role in (*ZONES, "staging", "access_logs")}
    stream_sets = [c.name for c in contracts.values() if c.source.kind == "stream"]
    return ResourceNames(
        project=project,
        stack=stack,
        buckets=buckets,
        streams={d: f"{base}-{d.replace('_', '-')}" for d in stream_sets},
        delivery_streams={d: f"{base}-{d.replace('_', '-')}-to-raw" for d in stream_sets},
        landing_prefixes={c.name: c.source.landing_prefix for c in contracts.values()},
        landing_queue=f"{base}-landing-events",
        landing_dlq=f"{base}-landing-events-dlq",
        landing_rule=f"{base}-raw-object-created",
        staging_rule=f"{base}-staging-export-created",
        batch_copy_state_machine=f"{base}-batch-copy",
        roles={
            name: f"{base}-{name.replace('_', '-')}"
            for name in (
                "firehose",
                "batch_operations",
                "step_functions",
                "dagster_worker",
                "databricks_cross_account",
                "unity_catalog",
            )
        },
    )
