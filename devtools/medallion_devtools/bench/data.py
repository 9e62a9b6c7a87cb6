"""Benchmark-sized landing data, generated in DuckDB (millions of events in seconds).

Same layout and dirt as the sample data (`ingestion/sample_data.py`), at fixed rates:
3 % duplicate deliveries (in a later hourly object), 2 % late events (landing 1-3 days after their
event date), 0.1 % each of zero quantity, unknown currency, unparsable timestamp and missing customer,
0.1 % records cut in half. Objects are Firehose-sized: one per hour, or more when an hour is large.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

__all__ = ["BenchData", "generate_events", "generate_master_data", "landing_bytes", "redeliver_events"]

EVENTS_PER_OBJECT = 200_000  # ~45 MB of JSON lines: the size Firehose buffers write


@dataclass(frozen=True)
class BenchData:
    events: int
    lines: int
    files: int
    bytes: int
    first_id: int


def _event_sql(first_id: int, count: int, start: dt.date, days: int) -> str:
    seconds = days * 86400
    return f"""
        SELECT i,
               TIMESTAMP '{start.isoformat()} 00:00:00' + to_seconds((hash(i, 1) % {seconds})::BIGINT) AS ts,
               (hash(i, 2) % 100000)::BIGINT AS r
        FROM range({first_id}, {first_id + count}) t(i)
    """


def _line_sql(base: str, late_shift: bool, arrival_day: dt.date | None = None) -> str:
    late = "+ to_days(1 + (hash(i, 7) % 3)::BIGINT)" if late_shift else ""
    arrival = (
        f"TIMESTAMP '{arrival_day.isoformat()} 00:00:00' + to_seconds((hash(i, 3) % 86400)::BIGINT)"
        if arrival_day
        else f"""ts + to_seconds(5 + (hash(i, 3) % 1800)::BIGINT)
                 + CASE WHEN r BETWEEN 200 AND 2199 THEN INTERVAL 0 DAY {late} ELSE INTERVAL 0 DAY END"""
    )
    return f"""
        SELECT
          CASE WHEN r < 100 THEN left(j, length(j) // 2) ELSE j END AS line,
          {arrival} AS arrival
        FROM (
          SELECT i, ts, r, to_json(struct_pack(
            event_id := printf('evt-%016x', hash(i)),
            order_id := printf('ord-%08d', i // 3),
            customer_id := CASE WHEN r BETWEEN 2500 AND 2599 THEN NULL
                                ELSE printf('cus-%06d', 1 + (hash(i, 4) % 50000)::BIGINT) END,
            product_id := printf('prd-%05d', 1 + (hash(i, 5) % 2000)::BIGINT),
            quantity := CASE WHEN r BETWEEN 2600 AND 2699 THEN 0 ELSE 1 + (hash(i, 6) % 5)::BIGINT END,
            unit_price := round((99 + (hash(i, 8) % 49900)::BIGINT) / 100.0, 2),
            currency := CASE WHEN r BETWEEN 2700 AND 2799 THEN 'JPY'
                             ELSE ['EUR', 'USD', 'GBP'][1 + (hash(i, 9) % 3)::BIGINT] END,
            status := ['placed', 'paid', 'shipped', 'cancelled', 'refunded'][1 + (hash(i, 10) % 5)::BIGINT],
            event_time := CASE WHEN r BETWEEN 2800 AND 2899 THEN 'not a time'
                               ELSE strftime(ts, '%Y-%m-%dT%H:%M:%SZ') END
          ))::VARCHAR AS j
          FROM ({base})
        )
    """


def generate_events(
    landing_root: Path,
    events: int,
    *,
    first_id: int = 0,
    start: dt.date = dt.date(2026, 10, 1),
    days: int = 7,
    tag: str = "full",
    late_events: bool = True,
    arrival: dt.date | None = None,
) -> BenchData:
    """Writes `events` events (plus duplicates and broken lines) as hourly landing objects.

    With `arrival`, every event lands during that day whatever its event time (late data).
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    base = _event_sql(first_id, events, start, days)
    deliveries = f"""
        SELECT line, arrival FROM ({_line_sql(base, late_events, arrival)})
        UNION ALL  -- at-least-once delivery: 3 % arrive again up to 4 hours later
        SELECT line, arrival + to_seconds(60 + (hash(line) % 14400)::BIGINT)
        FROM ({_line_sql(base, late_events, arrival)}) WHERE hash(line, 11) % 100 < 3 AND line LIKE '%}}'
    """
    con.execute(f"CREATE TEMP TABLE deliveries AS SELECT line, date_trunc('hour', arrival) AS hour FROM ({deliveries})")
    hours = con.execute("SELECT hour, count(*) FROM deliveries GROUP BY 1 ORDER BY 1").fetchall()
    root = Path(landing_root)
    files = 0
    for hour, count in hours:
        parts = max(1, -(-count // EVENTS_PER_OBJECT))
        for part in range(parts):
            folder = root / "landing" / "order_events" / hour.strftime("%Y/%m/%d/%H")
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"bench-{tag}-{hour:%Y-%m-%d-%H}-{part}.json"
            con.execute(
                f"""COPY (SELECT line FROM deliveries WHERE hour = ? AND hash(line, 12) % {parts} = {part})
                    TO '{path}' (FORMAT CSV, HEADER false, QUOTE '\x07', ESCAPE '\x07', DELIMITER '\x01')""",
                [hour],
            )
            files += 1
    lines = con.execute("SELECT count(*) FROM deliveries").fetchall()[0][0]
    con.close()
    return BenchData(events=events, lines=lines, files=files, bytes=landing_bytes(root), first_id=first_id)


def landing_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (Path(root) / "landing").rglob("*") if p.is_file())


def generate_master_data(
    landing_root: Path, *, customers: int = 50_000, products: int = 2_000, day: dt.date = dt.date(2026, 10, 1)
) -> dict[str, int]:
    """Lands one CRM customer export and one ERP product export (CSV, header) dated `day`; returns rows per dataset.

    Every id the events reference (`cus-000001..`, `prd-00001..`) is present, so refined joins find them.
    """
    stamp = f"{day:%Y%m%d}"
    exports = {
        "customers": f"""
            SELECT printf('cus-%06d', i) AS customer_id,
                   ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'][1 + i % 5] || ' ' || printf('Person %d', i) AS name,
                   printf('customer.%d@example.com', i) AS email,
                   ['FR', 'DE', 'GB', 'US', 'ES', 'IT', 'NL'][1 + (hash(i, 1) % 7)::BIGINT] AS country,
                   ['consumer', 'smb', 'enterprise'][1 + (hash(i, 2) % 3)::BIGINT] AS segment,
                   '{(day - dt.timedelta(days=1)).isoformat()}T22:00:00Z' AS updated_at
            FROM range(1, {customers + 1}) t(i)""",
        "products": f"""
            SELECT printf('prd-%05d', i) AS product_id,
                   printf('Product %d', i) AS name,
                   ['books', 'garden', 'kitchen', 'toys', 'tools'][1 + (hash(i, 1) % 5)::BIGINT] AS category,
                   printf('%.2f', (199 + (hash(i, 2) % 49800)::BIGINT) / 100.0) AS list_price,
                   ['EUR', 'USD', 'GBP'][1 + (hash(i, 3) % 3)::BIGINT] AS currency,
                   CASE WHEN hash(i, 4) % 4 = 0 THEN 'false' ELSE 'true' END AS active,
                   '{(day - dt.timedelta(days=1)).isoformat()}T22:00:00Z' AS updated_at
            FROM range(1, {products + 1}) t(i)""",
    }
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for dataset, query in exports.items():
        folder = Path(landing_root) / "landing" / dataset / day.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({query}) TO '{folder / f'{dataset}_{stamp}.csv'}' (FORMAT CSV, HEADER)")
    con.close()
    return {"customers": customers, "products": products}


def redeliver_events(
    landing_root: Path, lines: int, *, tag: str, objects: int = 4, source_tag: str = "full", newest: bool = False
) -> int:
    """Re-delivers the first whole lines of a few landed `source_tag` objects as new objects two hours later.

    At-least-once delivery across batches: these events are already in trusted and must count as
    duplicates. Returns the number of lines written.
    """
    root = Path(landing_root) / "landing" / "order_events"
    pattern = "bench-*.json" if newest else f"bench-{source_tag}-*.json"
    found = sorted(p for p in root.rglob(pattern) if "redelivery" not in p.name)
    sources = found[-objects:] if newest else found[:objects]  # newest: what a retrying producer re-sends
    written = 0
    for n, source in enumerate(sources):
        want = lines // len(sources) + (1 if n < lines % len(sources) else 0)
        with source.open("rb") as handle:
            chunk = [line for line in (handle.readline() for _ in range(want)) if line.endswith(b"}\n")]
        hour = dt.datetime.strptime("/".join(source.parent.parts[-4:]), "%Y/%m/%d/%H") + dt.timedelta(hours=2)
        folder = root / hour.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"bench-{tag}-redelivery-{n}.json").write_bytes(b"".join(chunk))
        written += len(chunk)
    return written
