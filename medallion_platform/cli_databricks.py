"""The `medallion local-databricks` subcommand: the local Databricks stand-in, served from the command line.

Argument parsing, printing and the serve loop only; the stand-in is `databricks/standin/`. Registered by
`cli.build_parser` next to `cli_aws.register`.
"""

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Adds `local-databricks up` to the `medallion` subparsers `sub`."""
    local = sub.add_parser("local-databricks", help="the local Databricks stand-in (REST API on 127.0.0.1)")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("up", help="start it and print the variables to export", description=cmd_up.__doc__)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="folder for DBFS, the workspace and run logs, kept afterwards (default: a temporary one, removed)",
    )
    p.set_defaults(func=cmd_up)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the local Databricks stand-in on 127.0.0.1 (DBFS, Jobs 2.2 runs executed by local driver
    processes, one RUNNING cluster), prints the variables to export, and serves until Ctrl-C or SIGTERM,
    which end every run's driver."""
    # Ctrl-C and SIGTERM stop it, even when it was started with Ctrl-C ignored (as a script's `… &` is):
    # the disposition is inherited, and Python keeps an inherited "ignore".
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    from medallion_platform.databricks.standin import LocalDatabricks
    from medallion_platform.settings import Settings
    from medallion_platform.zones.entries import governed_principals

    # Unity Catalog knows the principals the platform names (owners, the platform, the grantees).
    dbx = LocalDatabricks(root=args.root, port=args.port, principals=governed_principals(Settings.from_env()))
    # Whatever ends this call (Ctrl-C even while starting or printing, or a failure) stops the stand-in.
    try:
        dbx.start()
        mount = dbx.mount
        print(f"# local Databricks on {dbx.host} (stand-in; loopback only; /dbfs via {mount and mount.strategy})")
        if mount is not None and mount.problem:
            print(f"# warning: {mount.problem}", file=sys.stderr)
        for key, value in dbx.environ().items():
            print(f"export {key}={value}", flush=True)
        print("# serving; Ctrl-C stops it (runs are cancelled, their drivers ended)", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short (drivers would outlive the server).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        dbx.stop()
