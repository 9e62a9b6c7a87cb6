"""Contract rules as PySpark-API expressions: cast, validate, split good from bad, deduplicate.

Written once against the PySpark DataFrame API (`engine.F`, `engine.Window`); the parity suite
runs it on SQLFrame/DuckDB and on Spark. Casts that may fail use `try_cast` (Spark 4 is ANSI).
"""

from typing import Any

from medallion_platform.contracts import Column, Contract
from medallion_platform.engine.base import Engine, Frame
from medallion_platform.zones.pii import PiiHasher

__all__ = ["deduplicate", "partition_value", "quarantine_rows", "typed_values", "valid_rows", "validate"]

RULE_COLUMNS = ("_rule", "_column", "_reason", "_raw_value")
LINEAGE = ("_source_file", "_source_line", "_ingested_at", "_batch_seq", "_landing_date")
DOUBLE_MAX = 1.7976931348623157e308
"""The largest finite double: a typed value outside +-DOUBLE_MAX (or NaN) fails the `type` rule."""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _typed(F: Any, column: Column) -> Any:
    """The typed value of a raw text column (null when it does not cast)."""
    raw = F.col(column.name)
    if column.type == "string":
        return raw
    if column.type == "boolean":
        return F.expr(f"try_cast(lower(trim({column.name})) AS boolean)")
    if column.type == "integer":
        # DuckDB rounds '2.5' to 3 where Spark gives null: only whole numbers are integers.
        whole = F.trim(raw).rlike(r"^[+-]?[0-9]+$")
        return F.when(whole, F.expr(f"try_cast(trim({column.name}) AS bigint)"))
    sql_type = {"integer": "bigint", "double": "double", "date": "date", "timestamp": "timestamp"}.get(
        column.type, column.type
    )
    typed = F.expr(f"try_cast(trim({column.name}) AS {sql_type})")
    if column.type in ("double", "float"):
        # 'NaN', 'Infinity', '-Infinity' and '1e999' cast to non-finite doubles on both engines (a decimal
        # gives null): they are not valid numbers. NaN sorts above every number on DuckDB and Spark alike, so
        # one range test leaves out all three.
        return F.when(typed.between(F.lit(-DOUBLE_MAX), F.lit(DOUBLE_MAX)), typed)
    return typed


def _failures(F: Any, column: Column, years: tuple[int, int] | None) -> list[tuple[str, Any, str]]:
    """(rule, condition, reason) for each rule of the column, in the order they are tried.

    Conditions read the typed value from `__typed_<name>`, computed once per row by `validate`.
    Rules are tried in order and the first that holds wins, so after a required column's
    `required` rule the value is known to be present and later rules need not test it again
    (which halves the trims per row).
    """
    raw = F.col(column.name)
    # Blank = null, or only spaces (what trim removes). Trimming every value is costly (a copy of each
    # string; 0.3 s of validation at 3 M rows), so only values that start with a space are trimmed.
    missing = raw.isNull() | (raw == F.lit("")) | (raw.startswith(" ") & (F.trim(raw) == F.lit("")))
    typed = F.col(f"__typed_{column.name}")
    out = []

    def present(condition: Any) -> Any:
        return condition if column.required else ~missing & condition

    if column.required:
        out.append(("required", missing, f"{column.name} is required but missing"))
    if column.type != "string":
        out.append(("type", present(typed.isNull()), f"{column.name} is not a valid {column.type}"))
    if years is not None:
        first, last = years
        year = F.year(typed)
        outside = (year < F.lit(first)) | (year > F.lit(last))
        out.append(("out_of_range", outside, f"{column.name} is outside the years {first}-{last}"))
    if column.min is not None:
        out.append(("min", typed < F.lit(column.min), f"{column.name} is below the minimum {_number(column.min)}"))
    if column.max is not None:
        out.append(("max", typed > F.lit(column.max), f"{column.name} is above the maximum {_number(column.max)}"))
    if column.allowed is not None:
        allowed = ", ".join(column.allowed)
        out.append(("allowed", present(~raw.isin(*column.allowed)), f"{column.name} is not one of {allowed}"))
    if column.regex is not None:
        out.append(("regex", present(~raw.rlike(column.regex)), f"{column.name} does not match {column.regex}"))
    return out


def validate(engine: Engine, raw: Frame, contract: Contract) -> Frame:
    """Raw rows -> typed contract columns, the first failed rule (or null), and lineage.

    Three projections, so each cast and each pattern runs once per row: typed values, then the
    number of the first failed rule, then that rule's name, column, reason and raw value.
    """
    F = engine.F
    checks: list[tuple[str, Any, str, str | None]] = [
        ("malformed_record", F.col("_parse_error").isNotNull(), "the record could not be parsed", None)
    ]
    for col in contract.columns:
        checks += [(name, cond, text, col.name) for name, cond, text in _failures(F, col, contract.years(col))]
    raw_text = [F.col(c) for c in contract.column_names]
    typed = raw.select(
        *raw_text,
        *[_typed(F, c).alias(f"__typed_{c.name}") for c in contract.columns],
        F.col("_parse_error"),
        F.col("_raw_record"),
        *[F.col(c) for c in LINEAGE],
    )
    # One independent CASE per rule: SQLFrame copies a whole CASE expression on each `.when`, so a
    # chain of 27 branches cost 0.2 s of plan building per run; `least` keeps the first rule failed.
    hits = [F.when(cond, F.lit(number)) for number, (_, cond, _, _) in enumerate(checks, start=1)]
    numbered = typed.withColumn("__rule", F.least(*hits) if len(hits) > 1 else hits[0])
    failed = F.col("__rule").isNotNull()

    def pick(values: list[Any]) -> Any:
        # Rows that fail nothing (most) skip the lookup; a failed row matches exactly one number.
        return F.when(failed, F.coalesce(*[F.when(F.col("__rule") == F.lit(n), v) for n, v in enumerate(values, 1)]))

    return numbered.select(
        # The text as it came is only needed for rows that go to quarantine.
        *[F.when(failed, F.col(c)).alias(c) for c in contract.column_names],
        *[F.col(f"__typed_{c}") for c in contract.column_names],
        pick([F.lit(name) for name, _, _, _ in checks]).alias("_rule"),
        pick([F.lit(col) for _, _, _, col in checks]).alias("_column"),
        pick([F.lit(text) for _, _, text, _ in checks]).alias("_reason"),
        pick([F.col(col) if col else F.col("_raw_record") for _, _, _, col in checks]).alias("_raw_value"),
        F.col("_raw_record"),
        *[F.col(c) for c in LINEAGE],
    )


def quarantine_rows(engine: Engine, validated: Frame, contract: Contract, pii: PiiHasher | None) -> Frame:
    """Rows that failed a rule: raw text values, the rule, the reason, the source reference. The contract's
    personal data is there only as `pii`'s keyed hash: its columns, the failed value when the failed column
    is one of them (or the record could not be parsed), and no whole record (`_raw_record` null). `pii` may
    be None only for a contract that names no personal data (the projection then uses no key)."""
    F = engine.F
    private = set(contract.pii)
    if private and pii is None:
        raise ValueError(f"{contract.name} names personal data {sorted(private)}: its quarantine needs the hashing key")

    def value(c: str) -> Any:
        return pii.hashed(F, F.col(c)).alias(c) if pii is not None and c in private else F.col(c)

    raw_value, raw_record = F.col("_raw_value"), F.col("_raw_record")
    if private and pii is not None:
        names_pii = F.col("_column").isin(*private) | F.col("_column").isNull()
        raw_value = F.when(names_pii, pii.hashed(F, raw_value)).otherwise(raw_value)
        raw_record = F.lit(None).cast("string")
    return validated.where(F.col("_rule").isNotNull()).select(
        *[value(c) for c in contract.column_names],
        F.col("_rule"),
        F.col("_column"),
        F.col("_reason"),
        raw_value.alias("_raw_value"),
        raw_record.alias("_raw_record"),
        *LINEAGE,
    )


def valid_rows(engine: Engine, validated: Frame, contract: Contract) -> Frame:
    """Rows that passed every rule, typed, with the partition column derived."""
    F = engine.F
    columns = [F.col(f"__typed_{c}").alias(c) for c in contract.column_names]
    if contract.partition is not None:
        columns.append(partition_value(F, contract).alias(contract.partition.column))
    return validated.where(F.col("_rule").isNull()).select(*columns, *[F.col(c) for c in LINEAGE])


def typed_values(engine: Engine, raw: Frame, contract: Contract) -> Frame:
    """The values a valid row carries into trusted, from raw's text columns: the typed value of each contract
    column (the casts `validate` applies) and the partition column. The rules, the dedup and the lineage
    columns only keep or drop rows, so this is what trusted's column lineage is derived from (`zones/lineage.py`)."""
    F = engine.F
    typed = raw.select(*[_typed(F, c).alias(f"__typed_{c.name}") for c in contract.columns])
    columns = [F.col(f"__typed_{c}").alias(c) for c in contract.column_names]
    if contract.partition is not None:
        columns.append(partition_value(F, contract).alias(contract.partition.column))
    return typed.select(*columns)


def partition_value(F: Any, contract: Contract) -> Any:
    """The partition column's value of a validated row (the date of its `derived_from` column)."""
    if contract.partition is None:
        return F.lit(None).cast("date")
    return F.to_date(F.col(f"__typed_{contract.partition.derived_from}"))


SMALL_BATCH_ROWS = 250_000
"""Up to this many rows, deduplication ranks every row with one window (see `deduplicate`)."""


def deduplicate(engine: Engine, rows: Frame, contract: Contract, *, expected_rows: int | None = None) -> Frame:
    """One row per primary key: the first by the contract's `row_order` (its dedup order, or the newest
    change of a change source), ties broken by source position.

    Large batches: most keys occur once, so only the rows of repeated keys are ranked. A hash
    aggregate finds the repeated keys; the ranking (over the key, the order and the source position
    only) finds the losers, and one anti-join on the source position drops them, so the full rows
    are read once. A window over every full row would hold the whole batch.
    Small batches (`expected_rows` up to SMALL_BATCH_ROWS): one window over every row gives the same
    rows, and its plan takes a tenth of the time to build (the joins' plan costs about 0.25 s in
    SQLFrame, most of a 1 % batch's dedup). Both paths choose the same winner for every key.
    """
    F, Window = engine.F, engine.Window
    key = list(contract.primary_key)
    position = ["_batch_seq", "_source_file", "_source_line"]
    named = [o.column for o in contract.row_order]
    order = [F.col(o.column).desc() if o.direction == "desc" else F.col(o.column).asc() for o in contract.row_order]
    order += [F.col(c).asc() for c in position if c not in named]
    window = Window.partitionBy(*key).orderBy(*order)
    if expected_rows is not None and expected_rows <= SMALL_BATCH_ROWS:
        return rows.withColumn("__rank", F.row_number().over(window)).where(F.col("__rank") == F.lit(1)).drop("__rank")
    needed = list(dict.fromkeys([*key, *named, *position]))
    repeated_keys = rows.groupBy(*key).agg(F.count(F.lit(1)).alias("__n")).where(F.col("__n") > F.lit(1)).select(*key)
    losers = (
        rows.select(*needed)
        .join(repeated_keys, on=key, how="left_semi")
        .withColumn("__rank", F.row_number().over(window))
        .where(F.col("__rank") > F.lit(1))
        .select(*position)
    )
    return rows.join(losers, on=position, how="left_anti")
