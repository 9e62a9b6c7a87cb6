"""Deterministic sample data with real-world dirt at known rates, landed the way it really arrives.

`order_events` lands as Firehose objects of JSON lines under `landing/order_events/YYYY/MM/DD/HH/`
(some gzip-compressed); `customers` and `products` land as dated CSV exports; `payments` lands as the
orders database's change events (insert, update, delete) the same way as the order events, out of order,
some delivered twice, some deleted payments followed by a late change older than their delete. The returned
`SampleManifest` says exactly how many rows of each kind were written, so tests can reconcile.
"""

import datetime as dt
import gzip
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medallion_platform.ingestion.landing import landing_key

__all__ = ["SampleManifest", "SampleSpec", "generate_sample_data"]

COUNTRIES = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "US": "USD", "GB": "GBP", "IE": "EUR"}
SEGMENTS = ("consumer", "smb", "enterprise")
CATEGORIES = ("books", "electronics", "garden", "kitchen", "toys")
FIRST = ("Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Inès", "Jonas")
LAST = ("Smith", "Müller", "O'Brien", "Dubois", "Rossi", "Nakamura", "García", "Jansen")


@dataclass(frozen=True)
class SampleSpec:
    """Size and shape of the sample; the same spec always gives the same bytes."""

    seed: int = 7
    orders: int = 1500
    customers: int = 200
    products: int = 40
    start: dt.date = dt.date(2026, 11, 1)
    days: int = 5
    duplicate_rate: float = 0.03
    late_rate: float = 0.02
    dirt_rate: float = 0.01  # per kind of bad event
    malformed_rate: float = 0.005
    unknown_customers: int = 8  # ordered before the CRM knows them; half arrive in a later export
    payments: int | None = None  # payments of the orders database (None: one per four orders)


@dataclass
class SampleManifest:
    """Exact counts of what was landed, by dataset and kind."""

    files: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    raw_rows: Counter = field(default_factory=Counter)
    valid_unique: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)
    quarantine_by_rule: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    late_events: int = 0
    event_dates: set[str] = field(default_factory=set)
    distinct_changes: Counter = field(default_factory=Counter)
    """Change sources: distinct valid changes (one history version each)."""
    deleted: Counter = field(default_factory=Counter)
    """Change sources: keys whose newest change is a delete (tombstones in trusted)."""

    def quarantined(self, dataset: str) -> int:
        return sum(self.quarantine_by_rule[dataset].values())


def _iso(ts: dt.datetime, rng: random.Random) -> str:
    """ISO-8601 with a zone, in the shapes real producers send."""
    style = rng.random()
    if style < 0.6:
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style < 0.8:
        return ts.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def generate_sample_data(landing_root: Path, spec: SampleSpec = SampleSpec()) -> SampleManifest:
    """Writes the sample under `landing_root/landing/…` and returns what it wrote."""
    rng = random.Random(spec.seed)
    manifest = SampleManifest()
    root = Path(landing_root)
    customers = _customers(rng, spec)
    products = _products(rng, spec)
    _write_customers(root, rng, spec, customers, manifest)
    _write_products(root, rng, spec, products, manifest)
    _write_events(root, rng, spec, customers, products, manifest)
    _write_payment_changes(root, random.Random(spec.seed * 7919 + 1), spec, manifest)  # own stream of randomness
    return manifest


def _customers(rng: random.Random, spec: SampleSpec) -> list[dict]:
    out = []
    for i in range(1, spec.customers + spec.unknown_customers + 1):
        country = rng.choice(list(COUNTRIES))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{last}, {first}" if rng.random() < 0.2 else f"{first} {last}"
        out.append(
            {
                "customer_id": f"cus-{i:06d}",
                "name": name,
                "email": f"{first.lower()}.{i}@example.com".replace("é", "e").replace("è", "e"),
                "country": country,
                "segment": rng.choice(SEGMENTS),
            }
        )
    return out


def _products(rng: random.Random, spec: SampleSpec) -> list[dict]:
    return [
        {
            "product_id": f"prd-{i:05d}",
            "name": f"{rng.choice(('Deluxe', 'Basic', 'Pro', 'Mini'))} {rng.choice(CATEGORIES)} item {i}",
            "category": rng.choice(CATEGORIES),
            "list_price": f"{rng.randint(199, 49999) / 100:.2f}",
            "currency": rng.choice(("EUR", "USD", "GBP")),
            "active": rng.choice(("true", "true", "true", "false")),
        }
        for i in range(1, spec.products + 1)
    ]


def _csv_cell(value: str) -> str:
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _write_csv(root: Path, dataset: str, day: dt.date, header: list[str], rows: list[list[str]], manifest) -> None:
    key = landing_key(dataset, dt.datetime.combine(day, dt.time(2)), f"{dataset}_{day:%Y%m%d}.csv", hourly=False)
    lines = [",".join(header)] + [",".join(_csv_cell(c) for c in row) for row in rows]
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    # On-premises exports: a UTF-8 BOM and CRLF line endings, as Windows tools write them.
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    manifest.files[dataset].append(key)


def _write_customers(root: Path, rng: random.Random, spec: SampleSpec, customers: list[dict], manifest) -> None:
    header = ["customer_id", "name", "email", "country", "segment", "updated_at"]
    known = customers[: spec.customers]
    late = customers[spec.customers : spec.customers + spec.unknown_customers // 2]
    q = manifest.quarantine_by_rule["customers"]
    first_day = dt.datetime.combine(spec.start, dt.time(1), dt.UTC)
    rows = []
    for c in known:
        rows.append([c[h] for h in header[:-1]] + [first_day.strftime("%Y-%m-%dT%H:%M:%SZ")])
    # a name with an embedded newline (a CRM note pasted into the name field)
    rows[3][1] = rows[3][1] + "\n(key account)"
    bad = [  # one row per rule, each for a customer id that is otherwise fine
        ("regex", lambda r: r.__setitem__(2, "not-an-email")),
        ("regex", lambda r: r.__setitem__(3, "Germany")),
        ("allowed", lambda r: r.__setitem__(4, "vip")),
        ("required", lambda r: r.__setitem__(1, "")),
        ("type", lambda r: r.__setitem__(5, "31/12/2026")),
    ]
    for i, (rule, corrupt) in enumerate(bad):
        row = list(rows[10 + i])
        corrupt(row)
        rows.append(row)  # the good version of the same customer stays; this one is quarantined
        q[rule] += 1
    rows.append(["cus-999999", "only two"])  # a ragged row: the wrong number of fields
    q["malformed_record"] += 1
    _write_csv(root, "customers", spec.start, header, rows, manifest)
    manifest.raw_rows["customers"] += len(rows)
    manifest.valid_unique["customers"] += len(known)

    # A later full export: some customers changed, late-known customers appear, the others as they were,
    # and one stale row (an older version of a customer, from a CRM replica lagging behind).
    day = spec.start + dt.timedelta(days=min(3, spec.days - 1))
    later = dt.datetime.combine(day, dt.time(1), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    older = (first_day - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows2 = []
    for c in known[:20]:
        rows2.append([c["customer_id"], c["name"], c["email"], c["country"], "enterprise", later])
    for c in late:
        rows2.append([c[h] for h in header[:-1]] + [later])
    stale = known[25]
    rows2.append([stale["customer_id"], stale["name"], stale["email"], "FR", "smb", older])
    rows2 += [list(row) for row in rows[20 : len(known)] if row[0] != stale["customer_id"]]  # unchanged
    _write_csv(root, "customers", day, header, rows2, manifest)
    manifest.raw_rows["customers"] += len(rows2)
    manifest.valid_unique["customers"] += len(late)  # 20 rows update; the stale row and the unchanged change nothing


def _write_products(root: Path, rng: random.Random, spec: SampleSpec, products: list[dict], manifest) -> None:
    header = ["product_id", "name", "category", "list_price", "currency", "active", "updated_at"]
    stamp = dt.datetime.combine(spec.start, dt.time(0), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [[p[h] for h in header[:-1]] + [stamp] for p in products]
    q = manifest.quarantine_by_rule["products"]
    for rule, col, value in (("min", 3, "-4.99"), ("allowed", 4, "JPY"), ("type", 5, "maybe")):
        row = list(rows[5 + len(q)])
        row[0] = f"prd-{90000 + len(q):05d}"  # a product only seen in this bad row
        row[col] = value
        rows.append(row)
        q[rule] += 1
    _write_csv(root, "products", spec.start, header, rows, manifest)
    manifest.raw_rows["products"] += len(rows)
    manifest.valid_unique["products"] += len(products)


def _events_for_order(rng: random.Random, spec: SampleSpec, order_no: int, customers, products) -> list[dict]:
    customer = rng.choice(customers)
    product = rng.choice(products)
    placed = dt.datetime.combine(spec.start, dt.time(0), dt.UTC) + dt.timedelta(
        seconds=rng.randint(0, spec.days * 86400 - 4 * 3600)
    )
    fate = rng.random()
    statuses = ["placed"]
    if fate < 0.08:
        statuses.append("cancelled")
    else:
        statuses += ["paid", "shipped"]
        if fate > 0.95:
            statuses.append("refunded")
    base = {
        "order_id": f"ord-{order_no:08d}",
        "customer_id": customer["customer_id"],
        "product_id": product["product_id"],
        "quantity": rng.choice((1, 1, 1, 2, 2, 3, 5)),
        "unit_price": product["list_price"],
        "currency": COUNTRIES[customer["country"]],
    }
    events, when = [], placed
    for status in statuses:
        events.append({"event_id": f"evt-{rng.getrandbits(64):016x}", **base, "status": status, "_ts": when})
        when = when + dt.timedelta(minutes=rng.randint(5, 90))
    return events


def _write_events(root: Path, rng: random.Random, spec: SampleSpec, customers, products, manifest) -> None:
    events = []
    for n in range(1, spec.orders + 1):
        events += _events_for_order(rng, spec, n, customers, products)
    q = manifest.quarantine_by_rule["order_events"]
    deliveries: list[tuple[dt.datetime, str]] = []
    corruptions = (
        ("required", lambda e: e.pop("customer_id")),
        ("min", lambda e: e.__setitem__("quantity", 0)),
        ("min", lambda e: e.__setitem__("unit_price", "-3.50")),
        ("allowed", lambda e: e.__setitem__("currency", "JPY")),
        ("type", lambda e: e.__setitem__("event_time", "last tuesday")),
    )
    for event in events:
        ts = event.pop("_ts")
        record = {**event, "event_time": _iso(ts, rng)}
        record["unit_price"] = float(record["unit_price"]) if rng.random() < 0.5 else record["unit_price"]
        arrival = ts + dt.timedelta(seconds=rng.randint(5, 1800))
        corrupted = False
        for rule, corrupt in corruptions:
            if rng.random() < spec.dirt_rate:
                corrupt(record)
                q[rule] += 1
                corrupted = True
                break
        if not corrupted:
            manifest.valid_unique["order_events"] += 1
            manifest.event_dates.add(ts.date().isoformat())
            if rng.random() < spec.late_rate:
                arrival = ts + dt.timedelta(days=rng.randint(1, 3), seconds=rng.randint(0, 3600))
                manifest.late_events += 1
            if rng.random() < 0.05:
                record["app_version"] = "5.2.1"  # a field the contract does not know: kept in raw, ignored after
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        deliveries.append((arrival, line))
        if not corrupted and rng.random() < spec.duplicate_rate:
            deliveries.append((arrival + dt.timedelta(minutes=rng.randint(1, 240)), line))  # at-least-once
            manifest.duplicates["order_events"] += 1
        if rng.random() < spec.malformed_rate:
            deliveries.append((arrival, line[: len(line) // 2]))  # a record cut in half
            q["malformed_record"] += 1
    by_hour: dict[dt.datetime, list[str]] = defaultdict(list)
    for arrival, line in sorted(deliveries):
        by_hour[arrival.replace(minute=0, second=0, microsecond=0)].append(line)
    for hour, lines in sorted(by_hour.items()):
        suffix = f"{rng.getrandbits(32):08x}"
        gz = rng.random() < 0.25
        name = f"medallion-order-events-to-raw-1-{hour:%Y-%m-%d-%H-%M-%S}-{suffix}" + (".gz" if gz else "")
        key = landing_key("order_events", hour, name, hourly=True)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        body = ("\n".join(lines) + "\n").encode("utf-8")
        path.write_bytes(gzip.compress(body, mtime=0) if gz else body)
        manifest.files["order_events"].append(key)
        manifest.raw_rows["order_events"] += len(lines)


def _payment_changes(rng: random.Random, spec: SampleSpec, pay_no: int) -> list[dict]:
    """One payment's life in the orders database: authorized, then captured (or failed), sometimes refunded,
    sometimes deleted (a payment entered by mistake), as change records without their log sequence yet."""
    committed = dt.datetime.combine(spec.start, dt.time(0), dt.UTC) + dt.timedelta(
        seconds=rng.randint(0, spec.days * 86400 - 6 * 3600)
    )
    amount = f"{rng.randint(500, 50000) / 100:.2f}"
    base = {
        "payment_id": f"pay-{pay_no:08d}",
        "order_id": f"ord-{rng.randint(1, spec.orders):08d}",
        "amount": amount,
        "currency": rng.choice(("EUR", "EUR", "USD", "GBP")),
    }
    life = [("c", "authorized")]
    fate = rng.random()
    life.append(("u", "failed" if fate < 0.05 else "captured"))
    if fate > 0.9:
        life.append(("u", "refunded"))
    if 0.3 < fate < 0.36:
        life.append(("d", life[-1][1]))
    changes, when = [], committed
    for op, status in life:
        changes.append({**base, "status": status, "op": op, "_ts": when})
        when = when + dt.timedelta(minutes=rng.randint(1, 120))
    return changes


def _write_payment_changes(root: Path, rng: random.Random, spec: SampleSpec, manifest: SampleManifest) -> None:
    """`payments` change events: log sequence numbers in commit order, delivered out of order (a change can
    arrive hours after later ones), some twice, in hourly Firehose objects like the order events."""
    count = spec.payments if spec.payments is not None else max(1, spec.orders // 4)
    changes = [c for n in range(1, count + 1) for c in _payment_changes(rng, spec, n)]
    changes.sort(key=lambda c: (c["_ts"], c["payment_id"]))
    deliveries: list[tuple[dt.datetime, str]] = []
    q = manifest.quarantine_by_rule["payments"]
    newest: dict[str, str] = {}
    for lsn, change in enumerate(changes, start=1000):
        ts = change.pop("_ts")
        record = {**change, "lsn": lsn, "committed_at": _iso(ts, rng)}
        arrival = ts + dt.timedelta(seconds=rng.randint(5, 600))
        if rng.random() < 0.15:
            arrival += dt.timedelta(hours=rng.randint(1, 6))  # stuck in a shard: later changes overtake it
        if rng.random() < spec.dirt_rate:
            record["amount"] = "-1.00"  # a bad change: quarantined, never applied
            q["min"] += 1
        else:
            manifest.distinct_changes["payments"] += 1
            newest[record["payment_id"]] = record["op"]
            if rng.random() < spec.duplicate_rate * 2:
                deliveries.append((arrival + dt.timedelta(minutes=rng.randint(1, 300)), json.dumps(record)))
                manifest.duplicates["payments"] += 1
        deliveries.append((arrival, json.dumps(record, separators=(",", ":"))))
    manifest.valid_unique["payments"] += len(newest)
    manifest.deleted["payments"] += sum(op == "d" for op in newest.values())
    by_hour: dict[dt.datetime, list[str]] = defaultdict(list)
    for arrival, line in sorted(deliveries):
        by_hour[arrival.replace(minute=0, second=0, microsecond=0)].append(line)
    for hour, lines in sorted(by_hour.items()):
        name = f"medallion-payments-to-raw-1-{hour:%Y-%m-%d-%H-%M-%S}-{rng.getrandbits(32):08x}"
        key = landing_key("payments", hour, name, hourly=True)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
        manifest.files["payments"].append(key)
        manifest.raw_rows["payments"] += len(lines)
