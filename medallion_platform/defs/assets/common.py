"""What the source and refined assets share: the kinds shown in the UI, column schemas, freshness
policies and the partition keys of a run."""

import dagster as dg
import pyarrow as pa

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import parse_duration

__all__ = ["KINDS", "column_schema", "freshness", "partition_keys"]

KINDS = {"delta", "duckdb"}


def column_schema(schema: pa.Schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The UI's column schema of an Arrow schema, with a description per column where given."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name)) for f in schema]
    )


def freshness(contract: Contract) -> dg.FreshnessPolicy:
    """The contract's freshness windows as a Dagster policy."""
    return dg.FreshnessPolicy.time_window(
        fail_window=parse_duration(contract.freshness.fail_after),
        warn_window=parse_duration(contract.freshness.warn_after),
    )


def partition_keys(context: dg.AssetExecutionContext) -> list[str] | None:
    """The partition keys of the run (a range run: all of them), or None when it is not partitioned."""
    return list(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else None
