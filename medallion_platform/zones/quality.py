"""Quality over time: every promoted batch appends its figures to `trusted/<dataset>_quality`, and a robust
baseline over the last N batches says which figure left its recent range.

The table is long (one row per figure), so a contract that gains a rule gains rows, not columns:

    recorded_at, batch, landing_dates, figure, rule, value

Figures: `landed` (raw rows), `inserted`, `updated`, `in_batch_duplicates`, `redeliveries`, `late` (valid rows
whose event date is before their landing date), `quarantined` (all rules: `rule` null) and one `quarantined`
row per rule the contract can fail (zeros included, so a baseline sees quiet batches), `rejected_objects`
(landing objects newly rejected in the same step).

Anomalies (warning-level asset checks, `defs/checks/quality.py`): the newest batch's quarantine rate of each
rule (quarantined / landed) and its volume (`landed`) against the N batches before it. The baseline is the
median, the spread 1.4826 x the median absolute deviation (a standard deviation for normal data that a few
outliers do not move), and a value is an anomaly outside median +- k x spread. A spread of zero (a rule that
never fails) would flag any change, so the spread has a floor: 1 % of the median, and half a percentage point
for rates or one row for volumes. With fewer than `MIN_BASELINE` earlier batches there is no verdict.
"""

import datetime as dt
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from medallion_platform.catalog import TableEntry
from medallion_platform.contracts import Contract
from medallion_platform.engine.base import Engine
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import QUALITY_SUFFIX, Lakehouse
from medallion_platform.write.app_transactions import WRITTEN, ledger_notes, transaction_version
from medallion_platform.write.persist import persist
from medallion_platform.write.spec import Append, RowsWrite, TableWrite
from medallion_platform.write.table_state import cluster_of, has_table, table_at

__all__ = [
    "FIGURES",
    "FIGURES_KEY",
    "MIN_BASELINE",
    "QUALITY_SCHEMA",
    "QUALITY_SUFFIX",
    "Anomaly",
    "BatchFigures",
    "Trend",
    "contract_rules",
    "quality_entry",
    "quality_history",
    "quality_trend",
    "quality_verdicts",
    "record_quality",
    "recover_quality",
]

QUALITY_SCHEMA = pa.schema(
    [
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("landing_dates", pa.string()),
        pa.field("figure", pa.string(), nullable=False),
        pa.field("rule", pa.string()),
        pa.field("value", pa.int64(), nullable=False),
    ]
)

FIGURES = (
    "landed",
    "inserted",
    "updated",
    "in_batch_duplicates",
    "redeliveries",
    "late",
    "quarantined",
    "rejected_objects",
)

MIN_BASELINE = 3
"""Earlier batches needed before a figure can be called anomalous."""

SPREAD = 1.4826
"""Scales a median absolute deviation to a standard deviation (normal data)."""

RATE_FLOOR, VOLUME_FLOOR = 0.005, 1.0


def contract_rules(contract: Contract) -> list[str]:
    """Every rule a row of this contract can fail (`zones/validation.py`'s order)."""
    rules = ["malformed_record"]
    for c in contract.columns:
        rules += ["required"] if c.required else []
        rules += ["type"] if c.type != "string" else []
        rules += ["out_of_range"] if contract.years(c) is not None else []
        rules += ["min"] if c.min is not None else []
        rules += ["max"] if c.max is not None else []
        rules += ["allowed"] if c.allowed is not None else []
        rules += ["regex"] if c.regex is not None else []
    return list(dict.fromkeys(rules))


@dataclass(frozen=True, kw_only=True)
class BatchFigures:
    """What one promoted batch did, as the quality table records it."""

    batch: str
    landing_dates: str
    landed: int
    inserted: int
    updated: int
    in_batch_duplicates: int
    redeliveries: int
    late: int
    quarantined: int
    rejected_objects: int
    quarantine_by_rule: dict[str, int]
    last_seq: int

    def rows(self, rules: Sequence[str], recorded_at: dt.datetime) -> pa.Table:
        figures: list[tuple[str, str | None, int]] = [(f, None, int(getattr(self, f))) for f in FIGURES]
        known = list(dict.fromkeys([*rules, *sorted(self.quarantine_by_rule)]))
        figures += [("quarantined", r, int(self.quarantine_by_rule.get(r, 0))) for r in known]
        n = len(figures)
        return pa.Table.from_pydict(
            {
                "recorded_at": [recorded_at] * n,
                "batch": [self.batch] * n,
                "landing_dates": [self.landing_dates] * n,
                "figure": [f for f, _, _ in figures],
                "rule": [r for _, r, _ in figures],
                "value": [v for _, _, v in figures],
            },
            schema=QUALITY_SCHEMA,
        )


FIGURES_KEY = "medallion.batch_figures"
"""Trusted's commit metadata key holding the batch's figures known before that commit (JSON): a run killed
between trusted's commit and the quality append leaves them there for the next run (`recover_quality`)."""


def recover_quality(
    lake: Lakehouse, contract: Contract, *, trusted: DeltaTableIO | None = None, engine: Engine | None = None
) -> int:
    """Appends the figures of the batches trusted took whose quality append a killed run never made, oldest
    first; how many. Off a cluster from trusted's recent commits (their metadata and operation metrics, read by
    delta-rs); on a cluster (`engine`) from trusted's app-transaction ledger, where the writer notes the same
    figures and what its write did (`WRITTEN`), read by Spark. Nothing on a table trusted has not taken a
    batch into."""
    table = trusted or lake.trusted(contract.name)
    recorded = transaction_version(engine, lake.quality(contract.name), quality_app_id(contract.name))
    if cluster_of(engine) is not None:
        missing = []
        for when, noted in ledger_notes(engine, table, FIGURES_KEY, after=recorded):
            known = json.loads(noted[FIGURES_KEY])
            if int(known["last_seq"]) > recorded:
                written = json.loads(noted.get(WRITTEN, "{}"))
                at = when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # the session's time zone is UTC
                missing.append((known, written.get("inserted"), written.get("updated"), at))
        for known, inserted, updated, when in missing:
            record_quality(lake, contract, _figures(known, inserted, updated), now=when, engine=engine)
        return len(missing)
    handle = table.table()
    if handle is None:
        return 0
    commits = []
    for commit in handle.history(10):  # newest first; a kill loses at most the batch of its own run
        text = commit.get(FIGURES_KEY)
        if text is None:
            continue
        known = json.loads(str(text))
        if int(known["last_seq"]) <= recorded:
            break
        commits.append((commit, known))
    for commit, known in reversed(commits):
        metrics = commit.get("operationMetrics") or {}
        inserted = updated = None
        if commit.get("operation") == "MERGE":  # what the MERGE did, as its commit counts it
            inserted = int(metrics.get("num_target_rows_inserted", 0))
            updated = int(metrics.get("num_target_rows_updated", 0))
        when = dt.datetime.fromtimestamp(int(commit["timestamp"]) / 1000, dt.UTC)
        record_quality(lake, contract, _figures(known, inserted, updated), now=when)
    return len(commits)


def _figures(known: dict, inserted: int | None, updated: int | None) -> BatchFigures:
    """A batch's figures from those known before trusted's commit and what the commit's write did (None: an
    append or a partition overwrite, which inserts every row not quarantined, duplicated or already there)."""
    matched = int(known.pop("matched_keys"))
    if inserted is None or updated is None:
        inserted = known["landed"] - known["in_batch_duplicates"] - matched - known["quarantined"]
        updated = 0
    return BatchFigures(**known, inserted=int(inserted), updated=int(updated), redeliveries=matched - int(updated))


def quality_app_id(dataset: str) -> str:
    return f"medallion/quality/{dataset}"


def quality_entry(contract: Contract) -> TableEntry:
    """Owned by the contract's owner, beside trusted (no personal data: counts only)."""
    return TableEntry(
        description=f"Quality figures of {contract.name}, one row per figure per promoted batch: landed, "
        "inserted, updated, duplicates, re-deliveries, late rows, quarantined rows per rule, rejected objects.",
        owner=contract.owner,
        column_descriptions={
            "recorded_at": "when the batch was promoted (UTC)",
            "batch": "the raw batch sequence numbers the promotion took",
            "landing_dates": "the landing dates (partitions) of the run, empty for all",
            "figure": ", ".join(FIGURES),
            "rule": "for figure quarantined: the rule (null: every rule)",
            "value": "the count",
        },
    )


def record_quality(
    lake: Lakehouse,
    contract: Contract,
    figures: BatchFigures,
    *,
    now: dt.datetime | None = None,
    engine: Engine | None = None,
) -> bool:
    """Appends one batch's figures (once: the app transaction is the batch's last raw sequence number);
    False when that batch was already recorded. On a cluster (`engine` the `databricks` engine) Spark appends
    them by name, as every other write there; elsewhere delta-rs appends the few rows."""
    rows = figures.rows(contract_rules(contract), now or dt.datetime.now(dt.UTC))
    spec = Append(txns={quality_app_id(contract.name): figures.last_seq})
    write: RowsWrite | TableWrite
    if engine is not None and engine.name == "databricks":
        frame = engine.dataframe(rows, "quality")
        write = TableWrite(engine=engine, frame=frame, spec=spec, schema=QUALITY_SCHEMA, entry=quality_entry(contract))
    else:
        write = RowsWrite(rows=rows, spec=spec, schema=QUALITY_SCHEMA, entry=quality_entry(contract))
    result = persist(lake, ("trusted", f"{contract.name}{QUALITY_SUFFIX}"), write)
    return not result.skipped


def quality_history(table: DeltaTableIO, engine: Engine | None = None) -> list[dict]:
    """Every recorded row, oldest batch first: read by name by the cluster's Spark on a cluster (`engine`),
    by delta-rs elsewhere (counts only: a few rows per batch)."""
    cluster = cluster_of(engine)
    if cluster is not None:
        rows = [r.asDict() for r in table_at(cluster, table, None).collect()] if has_table(cluster, table) else []
    else:
        data = table.read() if table.exists() else None
        rows = [] if data is None else data.to_pylist()
    return sorted(rows, key=lambda r: (r["recorded_at"], r["batch"]))


@dataclass(frozen=True)
class Anomaly:
    """One figure of the newest batch against its baseline."""

    name: str
    """`volume` or `quarantine_rate_<rule>`."""
    value: float
    median: float | None
    low: float | None
    high: float | None
    baseline: int
    """How many earlier batches the baseline holds."""

    @property
    def anomalous(self) -> bool:
        return self.low is not None and self.high is not None and not self.low <= self.value <= self.high


def _batches(history: Iterable[dict]) -> list[dict[tuple[str, str | None], int]]:
    """Per batch (in order), its figures by (figure, rule)."""
    out: dict[tuple[object, str], dict[tuple[str, str | None], int]] = {}
    for row in history:
        out.setdefault((row["recorded_at"], row["batch"]), {})[(row["figure"], row["rule"])] = int(row["value"])
    return list(out.values())


def _verdict(name: str, values: list[float], *, window: int, width: float, floor: float) -> Anomaly:
    *earlier, newest = values
    baseline = earlier[-window:]
    if len(baseline) < MIN_BASELINE:
        return Anomaly(name, newest, None, None, None, len(baseline))
    median = statistics.median(baseline)
    mad = statistics.median(abs(v - median) for v in baseline)
    spread = max(SPREAD * mad, 0.01 * abs(median), floor)
    return Anomaly(name, newest, median, median - width * spread, median + width * spread, len(baseline))


def quality_verdicts(history: Sequence[dict], rules: Sequence[str], *, window: int, width: float) -> list[Anomaly]:
    """The newest batch's volume and per-rule quarantine rates against the `window` batches before it
    (median +- `width` x spread); empty when nothing was recorded."""
    batches = _batches(history)
    if not batches:
        return []
    landed = [float(b.get(("landed", None), 0)) for b in batches]
    out = [_verdict("volume", landed, window=window, width=width, floor=VOLUME_FLOOR)]
    for rule in rules:
        rates = [b.get(("quarantined", rule), 0) / n if n else 0.0 for b, n in zip(batches, landed, strict=True)]
        out.append(_verdict(f"quarantine_rate_{rule}", rates, window=window, width=width, floor=RATE_FLOOR))
    return out


@dataclass(frozen=True)
class Trend:
    """A dataset's recent batches: each figure's series (oldest first) and the newest batch's verdicts."""

    dataset: str
    batches: list[str]
    recorded_at: list[dt.datetime]
    series: dict[str, list[float]]
    """`landed`, the other counts, then `quarantine_rate_<rule>` (a share of the landed rows) per rule."""
    verdicts: dict[str, Anomaly]


def quality_trend(lake: Lakehouse, contract: Contract, *, batches: int) -> Trend:
    """The last `batches` batches of `trusted/<dataset>_quality`, with the anomaly verdicts of the newest
    (its baseline from the settings' window, which may reach further back than what is shown)."""
    history = quality_history(lake.quality(contract.name))
    rules = contract_rules(contract)
    settings = lake.settings
    verdicts = quality_verdicts(history, rules, window=settings.quality_batches, width=settings.quality_width)
    per_batch = _batches(history)[-batches:]
    keys: dict[tuple[object, str], None] = {}
    for row in history:
        keys[(row["recorded_at"], row["batch"])] = None
    shown = list(keys)[-batches:]
    series: dict[str, list[float]] = {f: [float(b.get((f, None), 0)) for b in per_batch] for f in FIGURES}
    for rule in rules:
        series[f"quarantine_rate_{rule}"] = [
            b.get(("quarantined", rule), 0) / b[("landed", None)] if b.get(("landed", None)) else 0.0 for b in per_batch
        ]
    return Trend(
        dataset=contract.name,
        batches=[str(b) for _, b in shown],
        recorded_at=[t for t, _ in shown],  # type: ignore[misc]  # recorded_at is a datetime
        series=series,
        verdicts={v.name: v for v in verdicts},
    )
