"""The landing sensor's folder flavour (`local`, or no queue): lists every contract's landing folders.

The cursor keeps, per dataset, the keys seen in the last `retention_days` landing dates and a floor
below which folders are not looked at again (Firehose and the batch copy name folders by arrival date,
so nothing new lands below the floor). It is zlib-compressed JSON (`z:` + base64): keys share long
prefixes. An object not in the cursor that raw's ingest log already lists (taken by `medallion demo`,
a CLI run, or before the cursor was lost) is marked seen without a run.
"""

import base64
import datetime as dt
import hashlib
import json
import zlib

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.defs.landing.requests import already_in_raw, landing_run_request
from medallion_platform.ingestion.landing import LandingFile, list_landing_files
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.storage import filesystem_for, join

__all__ = ["decode_cursor", "encode_cursor", "folder_tick"]

_UNRECOGNISED = "unrecognised"
"""Cursor entry of keys outside the landing layout (each logged once)."""


def encode_cursor(state: dict) -> str:
    """`z:` + base64 of zlib-compressed JSON."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return "z:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> dict:
    """The state `encode_cursor` wrote (plain JSON accepted too); {} for no cursor."""
    if not cursor:
        return {}
    if cursor.startswith("z:"):
        return json.loads(zlib.decompress(base64.b64decode(cursor[2:])))
    return json.loads(cursor)


def folder_tick(
    context: dg.SensorEvaluationContext, lake: Lakehouse, contracts: dict[str, Contract], retention_days: int
) -> dg.SensorResult:
    """One run request per landed object not seen before and not already in raw."""
    state = decode_cursor(context.cursor)
    datasets = state.get("datasets", {}) if state.get("flavour") == "folder" else {}
    requests: list[dg.RunRequest] = []
    for name, contract in sorted(contracts.items()):
        kept = datasets.get(name, {"floor": None, "seen": {}})
        floor, seen = kept["floor"], {d: set(keys) for d, keys in kept["seen"].items()}
        files, unrecognised = list_landing_files(lake.settings, contract)
        new = [
            f
            for f in files
            if not (floor and f.landing_date < floor) and _name(contract, f) not in seen.get(f.landing_date, ())
        ]
        taken = already_in_raw(lake, name, (f.key for f in new))
        for landing in new:
            if landing.key not in taken:
                requests.append(landing_run_request(contract, landing.key, _md5(lake, landing.key)))
            seen.setdefault(landing.landing_date, set()).add(_name(contract, landing))
        logged = seen.setdefault(_UNRECOGNISED, set())
        for key in unrecognised:
            if key not in logged:
                context.log.warning(f"ignored {key}: not in the landing layout landing/{name}/YYYY/MM/DD/…")
                logged.add(key)
        datasets[name] = _pruned(seen, floor, retention_days)
    cursor = encode_cursor({"flavour": "folder", "datasets": datasets})
    if not requests:
        return dg.SensorResult(skip_reason="no new landing files", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _name(contract: Contract, landing: LandingFile) -> str:
    return landing.key.removeprefix(contract.source.landing_prefix)


def _pruned(seen: dict[str, set[str]], floor: str | None, retention_days: int) -> dict:
    """A dataset's cursor entry: the floor raised to `retention_days` below the newest date, older dates dropped."""
    dates = sorted(d for d in seen if d != _UNRECOGNISED)
    if dates:
        newest = dt.date.fromisoformat(dates[-1])
        floor = max(floor or "", (newest - dt.timedelta(days=retention_days)).isoformat())
    return {
        "floor": floor,
        "seen": {d: sorted(keys) for d, keys in seen.items() if d == _UNRECOGNISED or not floor or d >= floor},
    }


def _md5(lake: Lakehouse, key: str) -> str:
    fs, base = filesystem_for(lake.settings.landing_root, lake.settings)
    digest = hashlib.md5(usedforsecurity=False)
    with fs.open_input_stream(join(base, key), compression=None) as stream:
        while chunk := stream.read(8 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()
