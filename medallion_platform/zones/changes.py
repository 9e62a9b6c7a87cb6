"""Change-data sources (a contract's `changes`): the newest change per key, and the tombstone a delete leaves.

Written against the PySpark DataFrame API (`engine.F`), so every engine applies the same changes. The
write layer's MERGE does the rest: `update_if_newer` by the contract's `sequence_by` (`Merge.newer_columns`),
so a change older than the stored one never overwrites it and a re-delivered one changes nothing. A delete
is stored as a row with `_deleted` true (its tombstone): it carries the delete's sequence, so a late update
older than the delete loses the MERGE and the key stays deleted, while a newer one wins and brings it back.
"""

from typing import Any

from medallion_platform.contracts import Contract
from medallion_platform.contracts.model import TOMBSTONE_COLUMN
from medallion_platform.engine.base import Engine, Frame

__all__ = ["is_delete", "with_tombstones"]


def is_delete(F: Any, contract: Contract) -> Any:
    """True on a change whose operation is one of the contract's delete values."""
    if contract.changes is None:
        return F.lit(False)
    operation = contract.changes.operation
    return F.col(operation.column).isin(*operation.delete)


def with_tombstones(engine: Engine, rows: Frame, contract: Contract) -> Frame:
    """A change source's rows with `_deleted` (true on a delete); on `deletes: hard` a delete keeps only the
    key, the operation and the sequence. Other contracts' rows pass unchanged."""
    changes = contract.changes
    if changes is None:
        return rows
    F = engine.F
    deleted = is_delete(F, contract)
    kept = {*contract.primary_key, changes.operation.column, *changes.sequence_by}
    columns = []
    for name in rows.columns:
        if changes.deletes == "hard" and name in contract.column_names and name not in kept:
            columns.append(F.when(~deleted, F.col(name)).alias(name))
        else:
            columns.append(F.col(name))
    return rows.select(*columns, deleted.alias(TOMBSTONE_COLUMN))
