"""What changed between two versions of a contract, and whether the deployed tables can take it.

`diff_contracts(old, new)` lists every change as a `Change`, classified:

- **additive**: a new nullable column, a relaxed rule, a new or changed description, owner or PII column.
  Raw, trusted and quarantine gain the column (Delta schema evolution), old rows null; nothing is rewritten.
- **breaking**: a column removed, renamed or retyped, a new required column, a key or partition change.
  Trusted cannot take it without rewriting what it holds; the platform refuses it (`refuse_breaking`)
  unless the contract declares a migration the platform applies: a rename (`renamed_from` on the column).
- **semantic**: a tightened rule (required, min, max, allowed, regex, valid_years) or a different
  write/dedup behaviour. The tables take it, but rows trusted already holds may no longer pass: the
  compatibility gate counts them (`zones/evolution.py`).

`diff_schema(schema, new)` is the fallback when only a deployed table's schema is known (no recorded contract).
Pure functions over contracts: no lake, no engine.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import pyarrow as pa

from medallion_platform.contracts.model import Column, Contract

__all__ = ["SUPPORTED_MIGRATIONS", "Change", "ChangeKind", "breaking_problems", "diff_contracts", "diff_schema"]

ChangeKind = Literal["additive", "breaking", "semantic"]
SUPPORTED_MIGRATIONS = ("rename",)
"""Migrations the platform applies to deployed tables: a column rename (`renamed_from: <old name>`)."""

_WIDTH = {"integer": 1, "double": 2}
_FIELDS = {"key_changed": "primary_key", "partition_changed": "partition", "write_changed": "trusted_write"}


@dataclass(frozen=True)
class Change:
    """One difference between the deployed contract and the working tree's."""

    dataset: str
    kind: ChangeKind
    what: str
    """column_added, column_removed, column_renamed, type_narrowed, type_changed, required_column_added,
    key_changed, partition_changed, rule_relaxed, rule_tightened, write_changed, metadata_changed."""
    column: str | None
    detail: str
    way_forward: str = ""
    migration: str | None = None
    """The migration the contract declares for this change (`rename`), applied by the platform."""
    affected_rows: int | None = None
    """Semantic changes: rows trusted holds that the new rule would quarantine (None: not counted)."""
    reaches: tuple[str, ...] = field(default_factory=tuple)
    """Refined columns (`table.column`) whose lineage includes the changed column."""

    @property
    def refused(self) -> bool:
        """A breaking change without a migration the platform applies."""
        return self.kind == "breaking" and self.migration is None

    def with_(self, **changes: object) -> "Change":
        return replace(self, **changes)  # type: ignore[arg-type]


def _type_rank(type_: str) -> tuple[int, int, int] | None:
    """(family, integer digits, scale) of a numeric type, for comparing widths; None if not numeric."""
    if type_ in _WIDTH:
        return (_WIDTH[type_], 19 if type_ == "integer" else 308, 0 if type_ == "integer" else 308)
    col = Column(name="x", type=type_)
    if col.decimal:
        precision, scale = col.decimal
        return (1, precision - scale, scale)
    return None


def _narrowed(old: str, new: str) -> bool:
    """True when some value of type `old` does not fit `new` (a decimal with fewer digits, a double made an
    integer, a timestamp made a date, text made anything else)."""
    if new == "string":
        return False
    if old == "string" or (old == "timestamp" and new == "date"):
        return True
    a, b = _type_rank(old), _type_rank(new)
    if a is not None and b is not None:
        return b[1] < a[1] or b[2] < a[2]
    return True


def _rules(old: Column, new: Column) -> tuple[list[str], list[str]]:
    """(tightened, relaxed) rules of a column kept under the same name and type."""
    tight: list[str] = []
    loose: list[str] = []

    def bound(name: str, before: float | None, after: float | None, tighter: bool) -> None:
        if before == after:
            return
        if after is not None and (before is None or tighter):
            tight.append(f"{name} {before} -> {after}")
        else:
            loose.append(f"{name} {before} -> {after}")

    if new.required and not old.required:
        tight.append("required")
    elif old.required and not new.required:
        loose.append("no longer required")
    bound("min", old.min, new.min, old.min is not None and new.min is not None and new.min > old.min)
    bound("max", old.max, new.max, old.max is not None and new.max is not None and new.max < old.max)
    if old.allowed != new.allowed:
        if new.allowed is not None and (old.allowed is None or not set(new.allowed) >= set(old.allowed)):
            tight.append(f"allowed {old.allowed} -> {new.allowed}")
        else:
            loose.append(f"allowed {old.allowed} -> {new.allowed}")
    if old.regex != new.regex:  # a different pattern may reject values the old one took: counted
        (tight if new.regex is not None else loose).append(f"regex {old.regex!r} -> {new.regex!r}")
    if old.valid_years != new.valid_years:
        before, after = old.valid_years or (0, 10_000), new.valid_years or (0, 10_000)
        narrower = after[0] > before[0] or after[1] < before[1]
        (tight if narrower else loose).append(f"valid_years {old.valid_years} -> {new.valid_years}")
    return tight, loose


def _column_changes(name: str, old: Column, new: Column) -> list[Change]:
    changes: list[Change] = []
    if old.type != new.type:
        narrowed = _narrowed(old.type, new.type)
        changes.append(
            Change(
                name,
                "breaking",
                "type_narrowed" if narrowed else "type_changed",
                new.name,
                f"column {new.name!r}: type {old.type} -> {new.type}"
                + (" narrows it: stored values may not fit" if narrowed else " (delta-rs cannot widen a Delta column)"),
                f"keep {new.name!r} as {old.type} and add a new nullable column of type {new.type}",
            )
        )
        return changes
    tight, loose = _rules(old, new)
    if tight:
        changes.append(
            Change(
                name,
                "semantic",
                "rule_tightened",
                new.name,
                f"column {new.name!r}: {'; '.join(tight)}",
                "rows trusted already holds that fail the new rule stay in trusted; new ones are quarantined",
            )
        )
    if loose:
        changes.append(Change(name, "additive", "rule_relaxed", new.name, f"column {new.name!r}: {'; '.join(loose)}"))
    if old.description != new.description:
        changes.append(Change(name, "additive", "metadata_changed", new.name, f"column {new.name!r}: description"))
    return changes


def diff_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every change from `old` (deployed) to `new` (the working tree), classified."""
    name = new.name
    changes: list[Change] = []
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    renamed = {c.renamed_from: c.name for c in new.columns if c.renamed_from and c.renamed_from in old_cols}
    for col in new.columns:
        if col.name in old_cols:
            changes += _column_changes(name, old_cols[col.name], col)
        elif col.renamed_from in old_cols:
            before = old_cols[col.renamed_from]
            changes.append(
                Change(
                    name,
                    "breaking",
                    "column_renamed",
                    col.name,
                    f"column {before.name!r} renamed to {col.name!r}",
                    "declared: trusted and its quarantine are rewritten with the new name",
                    migration="rename",
                )
            )
            changes += _column_changes(name, before.model_copy(update={"name": col.name}), col)
        elif col.required:
            changes.append(
                Change(
                    name,
                    "breaking",
                    "required_column_added",
                    col.name,
                    f"new column {col.name!r} is required: the rows trusted holds have no value for it",
                    f"add {col.name!r} without `required: true` first; make it required once every stored row has one",
                )
            )
        else:
            changes.append(Change(name, "additive", "column_added", col.name, f"new nullable column {col.name!r}"))
    for col in old.columns:
        if col.name not in new_cols and col.name not in renamed:
            hint = (
                f" (to rename it, add `renamed_from: {col.name}` to the new column)"
                if new_cols.keys() - old_cols.keys()
                else ""
            )
            changes.append(
                Change(
                    name,
                    "breaking",
                    "column_removed",
                    col.name,
                    f"column {col.name!r} removed: trusted and the refined tables still hold it{hint}",
                    "keep the column and stop requiring it (`required: false`); drop it when trusted is rebuilt",
                )
            )
    old_key = [renamed.get(k, k) for k in old.primary_key]
    if old_key != new.primary_key:
        changes.append(
            Change(
                name,
                "breaking",
                "key_changed",
                None,
                f"{old.primary_key} -> {new.primary_key}: trusted's rows are unique by the old key",
                "publish the new key as a new dataset (a new contract) and retire the old one",
            )
        )
    old_partition = old.partition.model_dump(exclude={"start"}) if old.partition else None
    new_partition = new.partition.model_dump(exclude={"start"}) if new.partition else None
    if old_partition is not None and old.partition and old.partition.derived_from in renamed:
        old_partition["derived_from"] = renamed[old.partition.derived_from]
    if old_partition != new_partition:
        changes.append(
            Change(
                name,
                "breaking",
                "partition_changed",
                None,
                f"{old_partition} -> {new_partition}: trusted's files are laid out by the old one",
                "keep the partition; a new layout needs a new dataset",
            )
        )
    if old.trusted_write != new.trusted_write or old.dedup_order != new.dedup_order:
        changes.append(
            Change(
                name,
                "semantic",
                "write_changed",
                None,
                "trusted_write/dedup_order changed: which row a key keeps differs from now on",
                "stored rows are not rewritten",
            )
        )
    for what in ("description", "owner", "pii", "freshness", "source", "valid_years"):
        if getattr(old, what) != getattr(new, what):
            kind: ChangeKind = "semantic" if what == "valid_years" else "additive"
            changes.append(
                Change(name, kind, "rule_tightened" if kind == "semantic" else "metadata_changed", None, what)
            )
    return changes


_ARROW_TYPES = {
    "string": ("string", "large_string", "string_view"),
    "integer": ("int64",),
    "double": ("double",),
    "boolean": ("bool",),
    "date": ("date32[day]",),
    "timestamp": ("timestamp[us, tz=UTC]", "timestamp[us, tz=Etc/UTC]"),
}


def _contract_type(arrow: pa.DataType) -> str | None:
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    for name, spellings in _ARROW_TYPES.items():
        if str(arrow) in spellings:
            return name
    return None


def diff_schema(schema: pa.Schema, new: Contract, *, partition: str | None = None) -> list[Change]:
    """The changes a deployed trusted table's schema shows against `new` (no recorded contract): columns
    removed, retyped, added (required or not). Rules and keys are not in a schema."""
    deployed = {f.name: f for f in schema if not f.name.startswith("_") and f.name != partition}
    old_columns = []
    for name, f in deployed.items():
        type_ = _contract_type(f.type) or "string"
        old_columns.append(Column(name=name, type=type_, required=name in new.primary_key))
    if not old_columns:
        return []
    old = new.model_copy(update={"columns": old_columns})
    return [c for c in diff_contracts(old, new) if c.what not in ("rule_relaxed", "rule_tightened")]


def breaking_problems(changes: Iterable[Change]) -> list[tuple[str, str]]:
    """(field, message) for each refused change, as `ContractError` lists them."""
    problems = []
    for change in changes:
        if change.refused:
            where = f"columns.{change.column}" if change.column else _FIELDS.get(change.what, change.what)
            problems.append((where, f"{change.what}: {change.detail}; way forward: {change.way_forward}"))
    return problems
