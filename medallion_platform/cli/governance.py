"""`medallion erase` and `medallion quarantine replay`: a data subject's erasure with a receipt, and quarantined
rows validated again after a contract fix. Both hold the lake lock (one writer per lake, as `materialize`)."""

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register"]

SettingsFor = Callable[[argparse.Namespace], Any]


def register(sub: Any, settings_for: SettingsFor) -> None:
    """Adds `erase` and `quarantine replay` to the `medallion` subparsers `sub`."""
    p = sub.add_parser(
        "erase", help="erase one data subject from every zone, with a receipt", description=cmd_erase.__doc__
    )
    p.add_argument(
        "--key",
        required=True,
        metavar="COLUMN=VALUE",
        help="an identifying column (contract `subject_keys`) and its value",
    )
    p.add_argument("--reason", help="why (recorded in the receipt), e.g. a request reference")
    p.add_argument(
        "--retention-hours",
        type=int,
        default=168,
        help="vacuum removes the erased rows' old files older than this now; the rest age out (in the receipt)",
    )
    p.add_argument(
        "--delete-landing",
        action="store_true",
        help="also delete the landing objects that held the subject (local store)",
    )
    p.set_defaults(func=cmd_erase, settings_for=settings_for)
    quarantine = sub.add_parser("quarantine", help="work on quarantined rows").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    r = quarantine.add_parser(
        "replay", help="validate quarantined rows again and promote those that pass", description=cmd_replay.__doc__
    )
    r.add_argument("dataset", help="a dataset of the contracts")
    r.add_argument("--rule", help="only rows quarantined for this rule (e.g. regex, allowed)")
    r.add_argument("--since", type=dt.date.fromisoformat, help="only rows landed on or after this date (YYYY-MM-DD)")
    r.set_defaults(func=cmd_replay, settings_for=settings_for)


def _prepared(args: argparse.Namespace) -> Any:
    from medallion_platform.cli.errors import check_services
    from medallion_platform.cli.main import _require_lake

    settings = args.settings_for(args)
    _require_lake(settings)
    check_services(settings)
    return settings


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_erase(args: argparse.Namespace) -> int:
    """Deletes every row of one data subject (`--key customer_id=cus-000042`) from raw, trusted, quarantine and
    any other catalogued table holding the column, rebuilds the refined tables built from them, vacuums, and
    appends a receipt to `raw.erasure_ledger`. Idempotent: a rerun completes a killed erasure, and after the
    receipt finds nothing left to do. Only keys a contract declares in `subject_keys` are accepted."""
    from medallion_platform.errors import ConfigError
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.lake.lock import lake_lock
    from medallion_platform.zones.erasure import erase

    column, sep, value = args.key.partition("=")
    if not sep or not column or not value:
        raise ConfigError(f"--key {args.key!r}: give COLUMN=VALUE, e.g. --key customer_id=cus-000042")
    settings = _prepared(args)
    with lake_lock(settings.data_dir, _note, holder="erase"):
        erasure = erase(
            Lakehouse(settings),
            column,
            value,
            reason=args.reason,
            retention_hours=args.retention_hours,
            delete_landing=args.delete_landing,
        )
    print("\n".join(erasure.summary()))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Validates the dataset's quarantined rows again against the contract as it is now (their values read from
    raw), promotes those that pass through the same dedup and MERGE as fresh data, records them as replayed,
    refreshes the refined tables built from the dataset, and checks the ledger closes: pending before =
    replayed + still quarantined. A second replay of the same rows replays nothing. Exit 1 if it does not close."""
    from medallion_platform.contracts import load_contracts
    from medallion_platform.engine import build_engine
    from medallion_platform.errors import ConfigError
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.lake.lock import lake_lock
    from medallion_platform.zones.refined.dependents import refresh_dependents
    from medallion_platform.zones.replay import replay_quarantine

    contracts = load_contracts()
    if args.dataset not in contracts:
        raise ConfigError(f"no dataset {args.dataset!r}: the contracts name {', '.join(sorted(contracts))}")
    settings = _prepared(args)
    lake = Lakehouse(settings)
    with lake_lock(settings.data_dir, _note, holder="quarantine replay"):
        engine = build_engine(settings.engine)
        try:
            result = replay_quarantine(lake, engine, contracts[args.dataset], rule=args.rule, since=args.since)
        finally:
            engine.close()
        refreshed = refresh_dependents(lake, [args.dataset]) if result.replayed else []
    lines = result.summary() + [f"  {r['table']} brought up to date ({r['mode']})" for r in refreshed]
    print("\n".join(lines))
    return 0 if result.reconciled else 1
