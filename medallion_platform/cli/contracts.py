"""`medallion contracts check`: the compatibility gate a CI job runs before a release."""

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medallion_platform.cli.aws import SettingsFor

__all__ = ["register"]


def cmd_contracts_check(args: argparse.Namespace) -> int:
    """Compares the working tree's contracts with what is deployed: the lake's trusted tables (the contract
    each recorded, else its schema) or, with `--against git:REF`, the contracts at a git ref. Prints a
    one-line summary and a table of changes: additive, breaking (refused unless the contract declares a
    migration: a rename) or semantic (a tightened rule: the trusted rows it would quarantine, counted), with
    the refined columns each reaches. Exit 0 compatible, 3 semantic changes that affect stored rows, 4 refused."""
    from medallion_platform.contracts import contracts_dir, load_contracts
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.settings import ConfigError
    from medallion_platform.zones.compat_check import check_contracts, contracts_at_ref

    settings = args.settings_for(args)
    directory = Path(args.contracts or settings.contracts_dir or contracts_dir())
    if not directory.is_dir():
        raise ConfigError(f"--contracts {directory}: no such folder (or set MEDALLION_CONTRACTS_DIR)")
    contracts = load_contracts(directory)
    lake = Lakehouse(settings)
    if args.against == "lake":
        report = check_contracts(lake, contracts, against=f"the lake at {settings.data_dir}")
    elif args.against.startswith("git:"):
        ref = args.against.removeprefix("git:")
        report = check_contracts(lake, contracts, deployed=contracts_at_ref(directory, ref), against=f"git {ref}")
    else:
        raise ConfigError(f"--against {args.against}: use `lake` or `git:<ref>`")
    if args.json:
        body: dict[str, Any] = {"summary": report.summary(), "exit_code": report.exit_code}
        body["changes"] = [asdict(c) | {"refused": c.refused} for c in report.changes]
        print(json.dumps(body, indent=2))
    else:
        print("\n".join([report.summary(), *(report.table() if report.changes else [])]))
    return report.exit_code


def register(sub: Any, settings_for: SettingsFor) -> None:
    """Adds `contracts check` to the `medallion` subparsers `sub`."""
    group = sub.add_parser("contracts", help="data contracts: the compatibility gate before a release")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "check", help="classify contract changes against what is deployed", description=cmd_contracts_check.__doc__
    )
    p.add_argument(
        "--contracts", help="folder of contract YAML files (default: $MEDALLION_CONTRACTS_DIR, else packaged)"
    )
    p.add_argument("--against", default="lake", help="`lake` (the deployed tables, default) or `git:<ref>`")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_contracts_check, settings_for=settings_for)
