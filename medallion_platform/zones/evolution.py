"""Contracts against what is deployed: the gate each promotion passes, the migrations it applies, and
the rows a tightened rule would quarantine.

What is deployed is what trusted recorded: every trusted write carries its contract in the commit's metadata
(`CONTRACT_KEY`), so `deployed_contract` reads the contract the stored rows were written under; a table
written before that was recorded is compared by its schema alone (`diff_schema`). Breaking changes are
refused (`IncompatibleContract`, naming each change and the way forward) unless the contract declares a
migration the platform applies: a rename (`renamed_from`), which rewrites raw, trusted and its quarantine
with the new name, once. Additive changes need nothing here: `persist()` adds new columns to each table
before it writes (`write/persist.py::evolve`) and the catalog registers the new schema.
"""

import json
from collections.abc import Sequence

from medallion_platform.contracts import Contract
from medallion_platform.contracts.compat import Change, breaking_problems, diff_contracts, diff_schema
from medallion_platform.engine.base import Engine
from medallion_platform.errors import IncompatibleContract
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse

__all__ = [
    "CONTRACT_KEY",
    "IncompatibleContract",
    "apply_migrations",
    "contract_metadata",
    "count_tightened",
    "deployed_changes",
    "deployed_contract",
    "gate",
]

CONTRACT_KEY = "medallion.contract"
"""Commit metadata key under which trusted records the contract it wrote with (compact JSON)."""


def contract_metadata(contract: Contract) -> dict[str, str]:
    """The commit metadata that records `contract` with a trusted write."""
    return {CONTRACT_KEY: json.dumps(contract.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))}


def deployed_contract(lake: Lakehouse, name: str, *, trusted: DeltaTableIO | None = None) -> Contract | None:
    """The contract trusted's newest write recorded (None: never written, or written before contracts were
    recorded). `trusted`: the table, if the caller has its log open."""
    text = (trusted or lake.trusted(name)).recorded(CONTRACT_KEY)
    if text is None:
        return None
    try:
        return Contract.model_validate(json.loads(text))
    except ValueError:  # recorded by a release whose contract model this one does not read: compare schemas
        return None


def deployed_changes(lake: Lakehouse, contract: Contract, *, trusted: DeltaTableIO | None = None) -> list[Change]:
    """The changes from what trusted holds to `contract`: against the recorded contract, else the schema."""
    table = trusted or lake.trusted(contract.name)
    with table.opened():
        deployed = deployed_contract(lake, contract.name, trusted=table)
        schema = table.schema()
    if deployed is not None:
        return diff_contracts(deployed, contract)
    if schema is None:
        return []
    return diff_schema(schema, contract, partition=contract.partition.column if contract.partition else None)


def gate(lake: Lakehouse, contract: Contract, *, trusted: DeltaTableIO | None = None) -> list[Change]:
    """Refuses `contract` if a change from what is deployed breaks the stored tables without a declared
    migration (`IncompatibleContract`); applies the declared migrations; returns the changes. `trusted`: the
    table, if the caller has its log open (the gate then opens nothing)."""
    changes = deployed_changes(lake, contract, trusted=trusted)
    problems = breaking_problems(changes)
    if problems:
        raise IncompatibleContract(contract.name, problems)
    apply_migrations(lake, contract, changes, trusted=trusted)
    return changes


def apply_migrations(
    lake: Lakehouse, contract: Contract, changes: Sequence[Change], *, trusted: DeltaTableIO | None = None
) -> list[str]:
    """Applies the renames among `changes` to raw, trusted and its quarantine (each rewritten once, in one
    commit, only while it still has the old name); the tables rewritten."""
    renames = {
        c.renamed_from: c.name
        for c in contract.columns
        if c.renamed_from and any(ch.what == "column_renamed" and ch.column == c.name for ch in changes)
    }
    done = []
    if renames:
        metadata = {"medallion.migration": json.dumps({"rename": renames})}
        target = trusted or lake.trusted(contract.name)
        for table in (lake.raw(contract.name), lake.quarantine(contract.name), target):
            extra = contract_metadata(contract) if table is target else {}
            if table.rename_columns(renames, metadata=metadata | extra):
                done.append(table.uri)
    return done


def count_tightened(lake: Lakehouse, engine: Engine, contract: Contract) -> dict[str, int]:
    """Rows trusted holds that `contract`'s rules would quarantine, by the column of the first rule they fail
    (`None` key: record-level). The rules run as they run on raw (`zones/validation.py`), over trusted's
    values as text."""
    from medallion_platform.zones.validation import LINEAGE, validate

    table = lake.trusted(contract.name)
    schema = table.schema()
    if schema is None:
        return {}
    F = engine.F
    stored = engine.delta_frame(table)
    present = set(schema.names)
    text = stored.select(
        *[
            (F.col(c.name).cast("string") if c.name in present else F.lit(None).cast("string")).alias(c.name)
            for c in contract.columns
        ],
        F.lit(None).cast("string").alias("_parse_error"),
        F.lit(None).cast("string").alias("_raw_record"),
        *[F.col(c) if c in present else F.lit(None).alias(c) for c in LINEAGE],
    )
    failed = validate(engine, text, contract).where(F.col("_rule").isNotNull())
    counts = engine.to_arrow(failed.groupBy("_column").count()).to_pylist()
    return {str(row["_column"]): int(row["count"]) for row in counts}
