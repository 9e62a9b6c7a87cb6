"""What the source and refined assets share: the kinds shown in the UI, column schemas, freshness
policies and the partition keys of a run."""

from collections.abc import Callable

import dagster as dg
import pyarrow as pa

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import parse_duration
from medallion_platform.zones.lineage import Lineage

__all__ = ["COLUMN_LINEAGE", "KINDS", "column_lineage", "column_schema", "freshness", "partition_keys"]

KINDS = {"delta", "duckdb"}
COLUMN_LINEAGE = "dagster/column_lineage"
"""Materialization metadata key of a table's column lineage (the UI's column lineage graph)."""


def column_schema(schema: pa.Schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The UI's column schema of an Arrow schema, with a description per column where given."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name)) for f in schema]
    )


def column_lineage(lineage: Lineage, key_of: Callable[[str], dg.AssetKey]) -> dg.TableColumnLineage:
    """Column lineage (`zones/lineage.py`) as Dagster metadata; `key_of` maps an input's name to its asset key."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=key_of(source), column_name=name) for source, name in sources]
            for column, sources in lineage.items()
        }
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
