"""The catalog metadata of every table the zones write: what `persist()` registers right after a write.

One home, read by the source step, the flow and the CLI alike, so a table is described the same way
whichever route wrote it.
"""

from medallion_platform.catalog import TableEntry
from medallion_platform.catalog.access import AccessPolicy
from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.settings import Settings
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.model import PARTITION, RefinedTable

__all__ = [
    "RECORD_TEXT",
    "access_policy",
    "governed_principals",
    "refined_entry",
    "rejected_entry",
    "source_entries",
    "subject_keys",
]


def source_entries(contract: Contract, platform_principal: str) -> dict[str, TableEntry]:
    """The catalog metadata of a source's raw, trusted and quarantine tables. The platform's own principal
    owns raw (nobody else reads it); the contract's owner owns trusted and its quarantine."""
    described = {c.name: c.description for c in contract.columns if c.description}
    pii = tuple(contract.pii)
    personal = [*pii, *contract.subject_keys]
    unindexed = tuple(dict.fromkeys([*personal, *(RECORD_TEXT if personal else ())]))
    access = access_policy(contract, platform_principal)
    partition = (contract.partition.column,) if contract.partition else ()
    return {
        "raw": TableEntry(
            description=f"Raw {contract.name} as it landed (every value as text). {contract.description}",
            owner=platform_principal,
            pii=pii,
            partition_by=("_landing_date",),
            column_descriptions=described,
            unindexed=unindexed,
        ),
        "trusted": TableEntry(
            description=contract.description,
            owner=contract.owner,
            pii=pii,
            partition_by=partition,
            column_descriptions=described,
            access=access,
            unindexed=unindexed,
        ),
        "quarantine": TableEntry(
            description=f"Rows of raw {contract.name} that failed a contract rule, with the rule and reason."
            + (" Personal data only as a keyed hash." if pii else ""),
            owner=contract.owner,
            pii=pii,
            column_descriptions=_quarantine_columns(contract),
            access=access,  # never a way around trusted's masks and filter (its values are text there)
            unindexed=unindexed,
        ),
        "rejected": rejected_entry(contract.name, platform_principal),
        "history": TableEntry(
            description=f"Every version of each {contract.name} key, with when it held (valid_from, valid_to; "
            "null while current), is_current and is_deleted: slowly changing dimension type 2.",
            owner=contract.owner,
            pii=pii,
            column_descriptions=described,
            unindexed=unindexed,
        ),
    }


RECORD_TEXT = ("_raw_record", "_extra_fields", "_parse_error", "_raw_value")
"""Columns of raw and quarantine that hold a record's text as it came (any field of it, personal data included).
With a contract's `pii` and `subject_keys`, they are a table's `unindexed` columns: the Delta log outlives
deletes and vacuum, so no value of theirs goes into its file statistics."""


def access_policy(contract: Contract, platform_principal: str) -> AccessPolicy | None:
    """The masks and row filter a contract's `access:` declares (trusted and its quarantine), None without one."""
    if contract.access is None:
        return None
    row_filter = contract.access.row_filter
    return AccessPolicy(
        mask_columns=tuple(contract.pii),
        clear_to=tuple(contract.access.clear_pii),
        filter_column=row_filter.column if row_filter else None,
        all_rows=tuple(row_filter.all_rows) if row_filter else (),
        rows_by_group={g: tuple(v) for g, v in row_filter.by_group.items()} if row_filter else {},
        exempt=platform_principal,
    )


def _quarantine_columns(contract: Contract) -> dict[str, str]:
    """What a quarantine column holds; for personal data, that it is a keyed hash (`zones/pii.py`)."""
    hashed = "keyed hash (sha256:…) of the value as it came, never the value: personal data"
    out = {c: hashed for c in contract.pii}
    if contract.pii:
        out["_raw_value"] = "the failed value as it came; a keyed hash when it is personal data or a whole record"
        out["_raw_record"] = "empty: the record names personal data; raw keeps it at _source_file/_source_line"
    return out


def rejected_entry(dataset: str, platform_principal: str) -> TableEntry:
    """The catalog metadata of `raw/<dataset>_rejected`, owned by the platform's principal like raw."""
    return TableEntry(
        description=f"Landing objects of {dataset} raw could not take (unreadable, outside the layout), "
        "each with the reason, recorded once per content.",
        owner=platform_principal,
    )


def refined_entry(table: RefinedTable) -> TableEntry:
    """The catalog metadata of a refined table: its module's description, owner and column descriptions; a
    column a contract declares identifying (`subject_keys`) is kept out of the Delta log's statistics."""
    identifying = subject_keys()
    return TableEntry(
        description=table.description,
        owner=table.owner,
        partition_by=(PARTITION,) if table.partitioned else (),
        column_descriptions=table.columns,
        unindexed=tuple(n for n in table.schema.names if n in identifying),
    )


def subject_keys() -> dict[str, list[str]]:
    """Identifying column -> the datasets whose contracts declare it in `subject_keys` (what erasure may be keyed
    on, and what no table's statistics may name)."""
    keys: dict[str, list[str]] = {}
    for contract in load_contracts().values():
        for column in contract.subject_keys:
            keys.setdefault(column, []).append(contract.name)
    return keys


def governed_principals(settings: Settings) -> set[str]:
    """Every principal Medallion names in Unity Catalog: table owners (contracts, refined modules), the
    platform's own principal and the grantees of `MEDALLION_GRANTS` (they must exist in the workspace)."""
    owners = {c.owner for c in load_contracts().values()} | {t.owner for t in REFINED_TABLES}
    grantees = {principal for zone in settings.grants.values() for principal in zone}
    return owners | grantees | {settings.platform_principal}
