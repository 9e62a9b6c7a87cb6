"""Quarantine replay: quarantined rows validated again against the current contract, and those that now pass
promoted to trusted through the same dedup and MERGE as fresh data, with a closed ledger.

`replay_quarantine(lake, engine, contract, rule=None, since=None)` (behind `medallion quarantine replay` and
the Dagster job `quarantine_replay_job`):

1. The pending rows: the dataset's quarantine rows (of one rule, landed on or after a date, if asked) that no
   earlier replay released (`trusted/<dataset>_quarantine_replays`, the replay log).
2. Their values come from raw, by `(_batch_seq, _source_file, _source_line)`: quarantine keeps personal data
   only as a keyed hash and no whole record for a contract with PII (`zones/pii.py`); raw keeps them in clear.
3. `validate` with the contract as it is now; the rows that pass are deduplicated and MERGEd into trusted
   (`trusted_spec`: the contract's keys and `when_matched`, so an older row never overwrites a newer one).
4. The released rows are appended to the replay log (replay `n`, the time, the rule they had failed); the
   quarantine itself stays append-only, as the record of what arrived bad.

The ledger closes twice, each term counted on its own: `pending before = replayed + still quarantined`
(still quarantined counted again from the tables after the writes), and, as for a batch,
`replayed = inserted + updated + in_batch_duplicates + redeliveries`. A second replay finds nothing new that
passes and writes nothing. Both writes carry the app transaction `medallion/replay/<dataset>` = n: a rerun
after a kill between them skips the trusted MERGE (its rows now count as re-deliveries) and writes the log.
"""

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from medallion_platform.catalog import TableEntry
from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import REPLAYS_SUFFIX, Lakehouse
from medallion_platform.lake.schema import trusted_schema
from medallion_platform.lake.sql import ident, literal
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, RowsWrite, TableWrite
from medallion_platform.zones.entries import source_entries
from medallion_platform.zones.trusted import trusted_spec
from medallion_platform.zones.trusted_tally import count_promotion
from medallion_platform.zones.validation import deduplicate, valid_rows, validate

__all__ = ["REPLAY_LOG_SCHEMA", "ReplayResult", "replay_app_id", "replay_quarantine"]

LINEAGE_KEY = ("_batch_seq", "_source_file", "_source_line")
"""What names one raw row: a quarantine row and its raw row share it."""
EQUATIONS = (
    "pending_before = replayed + still_quarantined",
    "replayed = inserted + updated + in_batch_duplicates + redeliveries",
)
REPLAY_LOG_SCHEMA = pa.schema(
    [
        pa.field("_batch_seq", pa.int64(), nullable=False),
        pa.field("_source_file", pa.string(), nullable=False),
        pa.field("_source_line", pa.int64(), nullable=False),
        pa.field("_landing_date", pa.string()),
        pa.field("_rule", pa.string()),
        pa.field("replay", pa.int64(), nullable=False),
        pa.field("replayed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def replay_app_id(dataset: str) -> str:
    return f"medallion/replay/{dataset}"


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    """The counts of one replay and the two reconciliations between them (`EQUATIONS`)."""

    dataset: str
    replay: int
    rule: str | None = None
    since: str | None = None
    pending_before: int = 0
    replayed: int = 0
    still_quarantined: int = 0
    inserted: int = 0
    updated: int = 0
    in_batch_duplicates: int = 0
    redeliveries: int = 0
    still_by_rule: dict[str, int] = field(default_factory=dict)
    trusted_version: int | None = None
    log_version: int | None = None

    @property
    def reconciled(self) -> bool:
        promoted = self.inserted + self.updated + self.in_batch_duplicates + self.redeliveries
        return self.pending_before == self.replayed + self.still_quarantined and self.replayed == promoted

    def as_metadata(self) -> dict[str, Any]:
        return {**asdict(self), "reconciled": self.reconciled, "equations": "; ".join(EQUATIONS)}

    def summary(self) -> list[str]:
        scope = "".join([f" rule {self.rule}" if self.rule else "", f" since {self.since}" if self.since else ""])
        lines = [
            f"replay {self.replay} of {self.dataset}_quarantine{scope}: {self.pending_before} pending, "
            f"{self.replayed} replayed, {self.still_quarantined} still quarantined",
            f"  replayed: {self.inserted} inserted, {self.updated} updated, {self.in_batch_duplicates} in-batch "
            f"duplicates, {self.redeliveries} already in trusted (older rows never overwrite newer ones)",
        ]
        lines += [f"  still failing {rule}: {n}" for rule, n in sorted(self.still_by_rule.items())]
        lines.append(f"  reconciled: {'yes' if self.reconciled else 'NO'} ({'; '.join(EQUATIONS)})")
        return lines


def _pending(
    con: duckdb.DuckDBPyConnection, quarantine: DeltaTableIO, log: DeltaTableIO, rule: str | None, since: str | None
) -> pa.Table:
    """The lineage and rule of the quarantine rows in scope that no replay released."""
    dataset = quarantine.duckdb_dataset()
    if dataset is None:
        return pa.table({"_batch_seq": pa.array([], pa.int64())})
    con.register("quarantine", dataset)
    where = ["TRUE"]
    if rule is not None:
        where.append(f"_rule = {literal(rule)}")
    if since is not None:
        where.append(f"_landing_date >= {literal(since)}")
    released = log.duckdb_dataset()
    anti = ""
    if released is not None:
        con.register("released", released)
        keys = " AND ".join(f"r.{ident(k)} = q.{ident(k)}" for k in LINEAGE_KEY)
        anti = f" AND NOT EXISTS (SELECT 1 FROM released r WHERE {keys})"
    columns = ", ".join(f"q.{ident(c)}" for c in (*LINEAGE_KEY, "_landing_date", "_rule"))
    sql = f"SELECT {columns} FROM quarantine q WHERE {' AND '.join(where)}{anti}"
    return con.sql(sql).to_arrow_table()


def _raw_rows(con: duckdb.DuckDBPyConnection, raw: DeltaTableIO, pending: pa.Table) -> pa.Table | None:
    """The raw rows (values in clear, as they landed) of the pending quarantine rows."""
    dataset = raw.duckdb_dataset()
    if dataset is None or pending.num_rows == 0:
        return None
    con.register("raw", dataset)
    con.register("pending", pending)
    keys = " AND ".join(f"p.{ident(k)} = r.{ident(k)}" for k in LINEAGE_KEY)
    table = con.sql(f"SELECT r.* FROM raw r WHERE EXISTS (SELECT 1 FROM pending p WHERE {keys})").to_arrow_table()
    # DuckDB hands text back as string_view; the engines take plain strings
    return table.cast(pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema]))


def replay_quarantine(
    lake: Lakehouse,
    engine: Engine,
    contract: Contract,
    *,
    rule: str | None = None,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ReplayResult:
    """Replays the pending quarantine rows of `contract` (of `rule`, landed on or after `since`, if given)."""
    name = contract.name
    quarantine, log, raw, trusted = lake.quarantine(name), lake.replays(name), lake.raw(name), lake.trusted(name)
    app = replay_app_id(name)
    n = log.transaction_version(app) + 1
    since_text = since.isoformat() if since else None
    con = duckdb.connect()
    try:
        pending = _pending(con, quarantine, log, rule, since_text)
        rows = _raw_rows(con, raw, pending)
    finally:
        con.close()
    base = ReplayResult(dataset=name, replay=n, rule=rule, since=since_text, pending_before=pending.num_rows)
    if rows is None or rows.num_rows == 0:
        return _closed(base, lake, contract, rule, since_text)
    validated = engine.persist(validate(engine, engine.dataframe(rows, "replay_batch"), contract))
    valid = valid_rows(engine, validated, contract)
    tally = count_promotion(engine, contract, validated, valid, rows.num_rows, trusted)
    if tally.valid_rows == 0:
        return _closed(base, lake, contract, rule, since_text)
    entries = source_entries(contract, lake.settings.platform_principal)
    write = TableWrite(
        engine=engine,
        frame=deduplicate(engine, valid, contract, expected_rows=tally.valid_rows),
        spec=trusted_spec(contract, tally.touched, {app: n}),
        schema=trusted_schema(contract),
        entry=entries["trusted"],
    )
    result = persist(lake, ("trusted", name), write)
    released = engine.to_arrow(
        validated.where(engine.F.col("_rule").isNull()).select(*LINEAGE_KEY, "_landing_date")
    ).to_pylist()
    failed_before = {tuple(r[k] for k in LINEAGE_KEY): r["_rule"] for r in pending.to_pylist()}
    at = now or dt.datetime.now(dt.UTC)
    log_rows = [
        {**r, "_rule": failed_before.get(tuple(r[k] for k in LINEAGE_KEY)), "replay": n, "replayed_at": at}
        for r in released
    ]
    log_result = persist(
        lake,
        ("trusted", f"{name}{REPLAYS_SUFFIX}"),
        RowsWrite(
            rows=pa.Table.from_pylist(log_rows, schema=REPLAY_LOG_SCHEMA),
            spec=Append(txns={app: n}),
            schema=REPLAY_LOG_SCHEMA,
            entry=_log_entry(contract),
        ),
    )
    done = ReplayResult(
        dataset=name,
        replay=n,
        rule=rule,
        since=since_text,
        pending_before=pending.num_rows,
        replayed=len(released),
        inserted=result.inserted,
        updated=result.updated,
        in_batch_duplicates=tally.valid_rows - tally.distinct_keys,
        redeliveries=tally.matched_keys - result.updated,
        trusted_version=result.version,
        log_version=log_result.version,
    )
    return _closed(done, lake, contract, rule, since_text)


def _closed(
    result: ReplayResult, lake: Lakehouse, contract: Contract, rule: str | None, since: str | None
) -> ReplayResult:
    """`result` with the rows still quarantined counted again from the tables, by rule."""
    con = duckdb.connect()
    try:
        still = _pending(con, lake.quarantine(contract.name), lake.replays(contract.name), rule, since)
    finally:
        con.close()
    by_rule: dict[str, int] = {}
    for r in still.column("_rule").to_pylist() if still.num_rows else []:
        by_rule[r] = by_rule.get(r, 0) + 1
    fields = {**asdict(result), "still_quarantined": still.num_rows, "still_by_rule": by_rule}
    return ReplayResult(**fields)


def _log_entry(contract: Contract) -> TableEntry:
    return TableEntry(
        description=f"Quarantine rows of {contract.name} released by a replay (validated again against the "
        "contract and promoted to trusted): their raw row, the rule they had failed, the replay and its time.",
        owner=contract.owner,
    )
