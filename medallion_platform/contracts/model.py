"""The typed data contract: one YAML file per source dataset becomes one `Contract`."""

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Access",
    "Changes",
    "Column",
    "Contract",
    "DedupOrder",
    "Freshness",
    "History",
    "Operation",
    "Partition",
    "RowFilter",
    "Source",
    "TrustedWrite",
    "WhenMatched",
    "parse_duration",
]

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_SCALAR_TYPES = ("string", "integer", "double", "boolean", "date", "timestamp")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
DEFAULT_VALID_YEARS = (1900, 2100)
"""Years a date or timestamp value may have unless the contract says otherwise: what every date
function, partition and downstream date arithmetic can hold (Python's dates end at 9999)."""
WhenMatched = Literal["ignore", "update", "update_if_newer"]
"""What a MERGE does with a key the target already holds: keep the target row, replace it, or replace it
when the source row is newer (`newer_column`)."""
TOMBSTONE_COLUMN = "_deleted"
"""A change source's trusted column: true on the row a delete left (the key's tombstone)."""
HISTORY_COLUMNS = ("valid_from", "valid_to", "is_current", "is_deleted")
"""The columns a `<dataset>_history` table adds to the contract's."""
# Ingestion metadata columns that every raw row carries; dedup may order by them.
METADATA_COLUMNS = ("_source_file", "_source_line", "_ingested_at", "_batch_id", "_batch_seq")


def parse_duration(text: str) -> timedelta:
    """Parses `30m`, `2h` or `1d` into a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as '30m', '2h' or '1d'")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """How the dataset arrives in the raw landing prefix."""

    kind: Literal["stream", "batch"]
    format: Literal["jsonl", "csv"]
    compression: Literal["none", "gzip", "auto"] = "auto"
    landing_prefix: str

    @field_validator("landing_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value.startswith("landing/") or not value.endswith("/"):
            raise ValueError("must look like 'landing/<dataset>/' (leading 'landing/', trailing '/')")
        return value


def _years_ordered(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is not None:
        first, last = value
        if not 1 <= first <= last <= 9999:
            raise ValueError(f"valid_years must be [first, last] with 1 <= first <= last <= 9999, got {list(value)}")
    return value


class Column(_Strict):
    """One column of the source, with the rules a value must meet to reach trusted.

    `valid_years: [first, last]` (date and timestamp columns) overrides the contract's `valid_years`
    for this column: a value whose year is outside is quarantined with rule `out_of_range`.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    regex: str | None = None
    valid_years: tuple[int, int] | None = None
    description: str = ""
    renamed_from: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    """The column's name in the deployed contract: a rename the platform applies to trusted and its
    quarantine (`contracts/compat.py`); drop it once every deployment has taken the rename."""

    @field_validator("valid_years")
    @classmethod
    def _years_in_order(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return _years_ordered(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value in _SCALAR_TYPES or _DECIMAL.match(value):
            return value
        raise ValueError(f"unknown type {value!r}; use one of {', '.join(_SCALAR_TYPES)} or decimal(p,s)")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _rules_fit_type(self) -> "Column":
        numeric = self.type in ("integer", "double") or self.type.startswith("decimal")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max apply to numeric columns, not to type {self.type!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.allowed is not None and self.type != "string":
            raise ValueError("allowed values apply to string columns")
        if self.valid_years is not None and not self.is_temporal:
            raise ValueError(f"valid_years applies to date and timestamp columns, not to type {self.type!r}")
        return self

    @property
    def is_temporal(self) -> bool:
        """A date or timestamp column (its values have years)."""
        return self.type in ("date", "timestamp")

    @property
    def decimal(self) -> tuple[int, int] | None:
        """(precision, scale) for a decimal column, else None."""
        match = _DECIMAL.match(self.type)
        return (int(match.group(1)), int(match.group(2))) if match else None


class DedupOrder(_Strict):
    """One ordering term: among rows with the same key, the first row in this order wins."""

    column: str
    direction: Literal["asc", "desc"] = "desc"


class Partition(_Strict):
    """Physical partitioning of the trusted table; a date derived from a timestamp column."""

    column: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    derived_from: str
    start: date | None = None
    """First day of the Dagster daily partitions (landing and event dates); None: the platform default."""


class Freshness(_Strict):
    """How stale the trusted data may get before Dagster warns, then fails."""

    warn_after: str
    fail_after: str

    @field_validator("warn_after", "fail_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "Freshness":
        if parse_duration(self.warn_after) >= parse_duration(self.fail_after):
            raise ValueError("warn_after must be shorter than fail_after")
        return self


class TrustedWrite(_Strict):
    """How validated rows are written to trusted."""

    mode: Literal["merge", "append", "partition_overwrite"]
    when_matched: WhenMatched = "ignore"
    newer_column: str | None = None

    @model_validator(mode="after")
    def _newer_needs_column(self) -> "TrustedWrite":
        if self.when_matched == "update_if_newer" and not self.newer_column:
            raise ValueError("when_matched 'update_if_newer' needs newer_column")
        return self


class Operation(_Strict):
    """Which column of a change record says what happened to the key, and the values it uses."""

    column: str
    insert: list[str] = Field(default_factory=lambda: ["insert"], min_length=1)
    update: list[str] = Field(default_factory=lambda: ["update"], min_length=1)
    delete: list[str] = Field(default_factory=lambda: ["delete"], min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> "Operation":
        seen = self.insert + self.update + self.delete
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise ValueError(f"operation values name more than one operation: {twice}")
        return self

    @property
    def values(self) -> list[str]:
        return self.insert + self.update + self.delete


class Changes(_Strict):
    """The records are changes of an operational table (change data capture), applied per key in order.

    Trusted keeps one row per key: the newest change by `sequence_by` (compared column by column, the
    later ones breaking ties of the earlier), never overwritten by an older one. A delete leaves a
    tombstone row (`_deleted` true) that holds its sequence, so a late older update cannot bring the key
    back and a newer one can. `deletes: soft` keeps the deleted row's last values; `hard` keeps only the
    key, the operation and the sequence (the other columns null).
    """

    operation: Operation
    sequence_by: list[str] = Field(min_length=1)
    deletes: Literal["soft", "hard"] = "soft"


class History(_Strict):
    """Ask for `trusted/<dataset>_history`: slowly changing dimension type 2 (`valid_from`, `valid_to`,
    `is_current`, `is_deleted` per version of a key).

    `built_from: changes` keeps one version per change (the contract's `changes`); `snapshots` compares
    each delivered full export (one landing object) with the current versions: new keys and changed
    `track` columns open versions, keys missing from the export are deleted. `valid_from` names the
    timestamp column a version starts at (a key deleted by a snapshot: the export's landing date).
    """

    built_from: Literal["changes", "snapshots"]
    valid_from: str
    track: list[str] | None = None
    """Snapshots: the columns whose change opens a new version (default: every non-key column but `valid_from`)."""
    absent_keys: Literal["delete", "keep"] = "delete"
    """Snapshots: what a key missing from an export means. `delete` (full exports): the key was deleted at the
    source. `keep` (partial or incremental exports, which name only what changed): nothing, its version stays
    current. Only for `built_from: snapshots`."""


class RowFilter(_Strict):
    """Who sees which rows: members of `all_rows` groups see every row; members of a `by_group` group see the rows
    whose `column` holds one of that group's values; everyone else sees none."""

    column: str
    all_rows: list[str] = Field(default_factory=list)
    by_group: dict[str, list[str]] = Field(default_factory=dict)


class Access(_Strict):
    """Who may read the trusted table (and its quarantine) how: personal data in clear only for members of
    `clear_pii` groups (others read a redaction), rows limited by `row_filter`. Unity Catalog enforces them as
    column masks and a row filter; `medallion sql` applies the same functions for the configured principal.
    The platform's own principal is exempt from both: it builds refined tables from trusted."""

    clear_pii: list[str] = Field(default_factory=list)
    row_filter: RowFilter | None = None


class Contract(_Strict):
    """A source dataset's contract: layout, schema, rules, keys and ownership.

    `valid_years: [first, last]` (default [1900, 2100]) bounds the years of every date and timestamp
    column (a column's own `valid_years` overrides it): values outside are quarantined with rule
    `out_of_range` instead of reaching trusted, where partition and date arithmetic could not hold them.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    owner: str
    source: Source
    columns: list[Column] = Field(min_length=1)
    primary_key: list[str] = Field(min_length=1)
    dedup_order: list[DedupOrder] = Field(default_factory=list)
    partition: Partition | None = None
    pii: list[str] = Field(default_factory=list)
    access: Access | None = None
    subject_keys: list[str] = Field(default_factory=list)
    """Columns that identify a person (a data subject): the keys `medallion erase --key <column>=<value>`
    accepts. Explicit, not implied by `primary_key` or `pii`: an event id is a key but names nobody."""
    freshness: Freshness
    trusted_write: TrustedWrite
    valid_years: tuple[int, int] = DEFAULT_VALID_YEARS
    changes: Changes | None = None
    history: History | None = None

    @field_validator("valid_years")
    @classmethod
    def _years_in_order(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return _years_ordered(value)

    @model_validator(mode="after")
    def _changes_and_history(self) -> "Contract":
        known = set(self.column_names)
        changes, history = self.changes, self.history
        if changes is not None:
            op = changes.operation.column
            if op not in known:
                raise ValueError(f"changes.operation.column: names unknown column {op!r}")
            if self.column(op).type != "string" or not self.column(op).required:
                raise ValueError(f"changes.operation.column: {op!r} must be a required string column")
            allowed = self.column(op).allowed
            if allowed is not None and set(changes.operation.values) - set(allowed):
                raise ValueError(f"changes.operation: values {changes.operation.values} must be allowed by {op!r}")
            for name in changes.sequence_by:
                if name not in known or not self.column(name).required:
                    raise ValueError(f"changes.sequence_by: {name!r} must be a required column of the contract")
            write = self.trusted_write
            if write.mode != "merge" or write.when_matched != "update_if_newer":
                raise ValueError(
                    "trusted_write: a change source is merged newest-wins: "
                    "mode 'merge', when_matched 'update_if_newer' (newer means later by changes.sequence_by)"
                )
            if write.newer_column != changes.sequence_by[0]:
                raise ValueError(
                    f"trusted_write.newer_column: must be {changes.sequence_by[0]!r}, the first of sequence_by"
                )
            if self.dedup_order:
                raise ValueError("dedup_order: a change source is ordered by changes.sequence_by; leave it out")
            if TOMBSTONE_COLUMN in known:
                raise ValueError(f"columns: {TOMBSTONE_COLUMN!r} is the platform's tombstone column")
        if history is not None:
            if history.valid_from not in known or self.column(history.valid_from).type != "timestamp":
                raise ValueError(f"history.valid_from: {history.valid_from!r} must be a timestamp column")
            if history.built_from == "changes" and changes is None:
                raise ValueError("history.built_from: 'changes' needs the contract's changes")
            if history.built_from == "snapshots" and (changes is not None or self.source.kind != "batch"):
                raise ValueError("history.built_from: 'snapshots' needs a batch source of exports, not changes")
            if history.built_from == "changes" and history.absent_keys != "delete":
                raise ValueError(
                    "history.absent_keys applies to snapshots only: a change source says what it deletes (`changes.op`)"
                )
            unknown = [c for c in history.track or [] if c not in known]
            if unknown:
                raise ValueError(f"history.track: names unknown columns {unknown}")
            clash = sorted(known & set(HISTORY_COLUMNS))
            if clash:
                raise ValueError(f"columns: {clash} are the history table's own columns")
        return self

    @property
    def row_order(self) -> list[DedupOrder]:
        """Among rows of one key, the first in this order wins: a change source's newest change by
        `sequence_by`, else the contract's `dedup_order`."""
        if self.changes is not None:
            return [DedupOrder(column=c, direction="desc") for c in self.changes.sequence_by]
        return list(self.dedup_order)

    @model_validator(mode="after")
    def _references_exist(self) -> "Contract":
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns: declared twice: {dupes}")
        known = set(names)
        for field, refs in (("primary_key", self.primary_key), ("pii", self.pii), ("subject_keys", self.subject_keys)):
            missing = [r for r in refs if r not in known]
            if missing:
                raise ValueError(f"{field}: names unknown columns {missing}")
        clashes = [c.renamed_from for c in self.columns if c.renamed_from in known]
        if clashes:
            raise ValueError(f"columns: renamed_from names a column the contract still has: {clashes}")
        for order in self.dedup_order:
            if order.column not in known and order.column not in METADATA_COLUMNS:
                raise ValueError(f"dedup_order: names unknown column {order.column!r}")
        for key in self.primary_key:
            if not self.column(key).required:
                raise ValueError(f"primary_key: column {key!r} must be required")
        if self.partition is not None:
            if self.partition.column in known:
                raise ValueError(f"partition.column: {self.partition.column!r} clashes with a source column")
            if self.partition.derived_from not in known:
                raise ValueError(f"partition.derived_from: names unknown column {self.partition.derived_from!r}")
            if self.column(self.partition.derived_from).type != "timestamp":
                raise ValueError("partition.derived_from: must be a timestamp column")
        row_filter = self.access.row_filter if self.access is not None else None
        if row_filter is not None and row_filter.column not in known:
            raise ValueError(f"access.row_filter.column: names unknown column {row_filter.column!r}")
        newer = self.trusted_write.newer_column
        if newer is not None and newer not in known:
            raise ValueError(f"trusted_write.newer_column: names unknown column {newer!r}")
        if self.trusted_write.mode == "partition_overwrite" and self.partition is None:
            raise ValueError("trusted_write.mode: 'partition_overwrite' needs a partition")
        if self.source.landing_prefix != f"landing/{self.name}/":
            raise ValueError(f"source.landing_prefix: must be 'landing/{self.name}/' for dataset {self.name!r}")
        return self

    def column(self, name: str) -> Column:
        """The column called `name`."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def years(self, column: Column) -> tuple[int, int] | None:
        """The years a date or timestamp column's values must fall in (None for other columns)."""
        if not column.is_temporal:
            return None
        return column.valid_years or self.valid_years

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]
