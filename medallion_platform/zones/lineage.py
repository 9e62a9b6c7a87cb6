"""Column-level lineage, derived from the transform plans that run.

A refined table's `build` runs on the embedded engine over empty frames of its trusted inputs; SQLFrame
turns it into one sqlglot expression, and `sqlglot.lineage` walks each output column down to the input
columns it reads (joins' keys and filters are not lineage: only the columns a value is computed from).
Trusted columns come from the validation's typed values the same way, over a frame of raw's columns: each
typed column reads its raw text column, the partition column the timestamp it is derived from.

`column_lineage()` is what the Dagster assets publish (`dagster/column_lineage`) and what the
compatibility gate (`zones/evolution.py`, `medallion contracts check`) uses to list the refined columns a
contract change reaches.
"""

from collections.abc import Mapping
from functools import cache

import pyarrow as pa

from medallion_platform.contracts import Contract
from medallion_platform.lake.lakehouse import HISTORY_SUFFIX
from medallion_platform.lake.schema import history_schema, raw_schema, trusted_schema

__all__ = ["Lineage", "column_lineage", "reaches", "refined_lineage", "trusted_lineage"]

Lineage = dict[str, tuple[tuple[str, str], ...]]
"""Output column -> the (input table, column) pairs it is computed from, sorted."""


def _plan_lineage(sql: str, columns: list[str], views: Mapping[str, tuple[str, pa.Schema]]) -> Lineage:
    from sqlglot import exp
    from sqlglot.lineage import lineage

    parsed: exp.Expr = exp.maybe_parse(sql, dialect="duckdb")
    schema = {view: {f.name: "VARCHAR" for f in arrow} for view, (_, arrow) in views.items()}
    roots = lineage(None, parsed, schema, dialect="duckdb")
    assert isinstance(roots, dict)
    out: Lineage = {}
    for column in columns:
        root = roots[column]
        found: set[tuple[str, str]] = set()
        for node in root.walk():
            if node.downstream or not isinstance(node.source, exp.Table):
                continue
            view = node.source.name
            if view in views:
                found.add((views[view][0], node.name.split(".")[-1].strip('"')))
        out[column] = tuple(sorted(found))
    return out


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


@cache
def refined_lineage(name: str) -> Lineage:
    """Lineage of refined table `name`: each column's (trusted input, column) sources."""
    from medallion_platform.contracts import load_contracts
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.zones.refined import REFINED_TABLES

    table = next(t for t in REFINED_TABLES if t.name == name)
    contracts = load_contracts()
    engine = EmbeddedEngine()
    try:
        frames: dict[str, object] = {}
        views: dict[str, tuple[str, pa.Schema]] = {}
        for input_name in table.inputs:
            if input_name.endswith(HISTORY_SUFFIX):  # a source's history (`trusted/<dataset>_history`)
                schema = history_schema(contracts[input_name.removesuffix(HISTORY_SUFFIX)])
            else:
                schema = trusted_schema(contracts[input_name])
            frame = engine.dataframe(_empty(schema), input_name)
            frames[input_name] = frame
            views[_view_of(frame)] = (input_name, schema)
        built = table.build(engine, **frames)
        sql = built.sql(dialect="duckdb", pretty=False, optimize=False)
        return _plan_lineage(sql, list(table.schema.names), views)
    finally:
        engine.close()


def _view_of(frame: object) -> str:
    """The DuckDB view a frame built by `engine.dataframe` reads (its one source table)."""
    from sqlglot import exp

    expression = frame.expression  # type: ignore[attr-defined]  # SQLFrame's DataFrame
    return next(t.name for t in expression.find_all(exp.Table))


def trusted_lineage(contract: Contract) -> Lineage:
    """Lineage of `trusted/<contract>`: each column's raw source column(s), from the typed values the validation
    plan computes (`validation.typed_values`; its rules and the deduplication keep or drop whole rows)."""
    return _trusted_lineage(contract.model_dump_json())


@cache
def _trusted_lineage(contract_json: str) -> Lineage:
    from medallion_platform.engine.embedded import EmbeddedEngine
    from medallion_platform.zones.validation import typed_values

    contract = Contract.model_validate_json(contract_json)
    engine = EmbeddedEngine()
    try:
        raw = engine.dataframe(_empty(raw_schema(contract)), "raw")
        views = {_view_of(raw): ("raw", raw_schema(contract))}
        plan = typed_values(engine, raw, contract)
        sql = plan.sql(dialect="duckdb", pretty=False, optimize=False)
        names = [f.name for f in trusted_schema(contract) if not f.name.startswith("_")]
        return _plan_lineage(sql, names, views)
    finally:
        engine.close()


def column_lineage(contracts: Mapping[str, Contract]) -> dict[tuple[str, str], Lineage]:
    """Lineage of every trusted and refined table, by (zone, table)."""
    from medallion_platform.zones.refined import REFINED_TABLES

    out: dict[tuple[str, str], Lineage] = {}
    for name, contract in contracts.items():
        out[("trusted", name)] = trusted_lineage(contract)
    for table in REFINED_TABLES:
        out[("refined", table.name)] = refined_lineage(table.name)
    return out


def reaches(dataset: str, column: str | None) -> tuple[str, ...]:
    """Refined columns (`table.column`) computed from trusted column `dataset.column` (every refined column
    reading `dataset` when `column` is None: a key or layout change)."""
    from medallion_platform.zones.refined import REFINED_TABLES

    out = []
    for table in REFINED_TABLES:
        if dataset not in table.inputs:
            continue
        for refined_column, sources in refined_lineage(table.name).items():
            if any(src == dataset and (column is None or col == column) for src, col in sources):
                out.append(f"{table.name}.{refined_column}")
    return tuple(out)
