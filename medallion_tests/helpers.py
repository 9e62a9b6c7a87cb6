"""Small builders for hand-written test data."""

import json
from pathlib import Path

from medallion_platform.settings import Settings


def land(settings: Settings, dataset: str, relative: str, body: bytes | str) -> str:
    """Writes one landing object and returns its key."""
    key = f"landing/{dataset}/{relative}"
    path = Path(settings.landing_root) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    return key


def jsonl(*records: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def event(n: int, **overrides) -> dict:
    """A valid order event; `n` makes ids unique."""
    base = {
        "event_id": f"evt-{n:016x}",
        "order_id": f"ord-{n:08d}",
        "customer_id": "cus-000001",
        "product_id": "prd-00001",
        "quantity": 1,
        "unit_price": "10.00",
        "currency": "EUR",
        "status": "placed",
        "event_time": "2026-11-01T10:00:00Z",
    }
    base.update(overrides)
    return base
