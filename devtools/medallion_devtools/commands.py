"""The `medallion` subcommands the development tools add: `local-aws up`, `local-databricks up` (and, from their
packages, `bench` and `chaos`).

The product's CLI finds them through the `medallion.commands` entry-point group (`devtools/pyproject.toml`):
each entry is a function that adds one subcommand to the `medallion` subparsers. Argument parsing, printing
and the serve loops only; the stand-in is `standins/databricks/`, moto's life cycle `serve.py`.
"""

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register_local_aws", "register_local_databricks"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _provision(dbx: Any, settings: Any) -> None:
    """Registers, as the account admin, what the Pulumi program registers on an account (external locations,
    catalog, schemas, grants: `medallion_platform.catalog.account`)."""
    from databricks.sdk import WorkspaceClient

    from medallion_devtools.standins.databricks import STORAGE_CREDENTIAL
    from medallion_platform.catalog.account import provision

    admin = WorkspaceClient(host=dbx.host, token=dbx.admin_token, auth_type="pat")
    provision(admin, settings, credential_name=STORAGE_CREDENTIAL)


# -- local-aws ---------------------------------------------------------------------------------
def register_local_aws(sub: Any) -> None:
    """Adds `local-aws up` to the `medallion` subparsers `sub`."""
    local = sub.add_parser("local-aws", help="the local AWS emulator (moto on 127.0.0.1)")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("up", help="start it with the stack's resources", description=cmd_local_aws_up.__doc__)
    p.add_argument("--stack", default="local", help="stack name the resource names derive from (default: local)")
    p.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--shards", type=int, default=2, help="shards per Kinesis stream (default: 2)")
    p.set_defaults(func=cmd_local_aws_up)


def cmd_local_aws_up(args: argparse.Namespace) -> int:
    """Starts moto's server on 127.0.0.1, creates the stack's buckets, streams, queue and rule, prints the
    variables to export, and serves until Ctrl-C (the emulator's state is in memory and goes with it)."""
    from medallion_devtools.serve import local_aws_up

    local_aws_up(args.stack, args.port, serve_forever=True, shards=args.shards)
    return 0


# -- local-databricks --------------------------------------------------------------------------
def register_local_databricks(sub: Any) -> None:
    """Adds `local-databricks up` to the `medallion` subparsers `sub`."""
    local = sub.add_parser("local-databricks", help="the local Databricks stand-in (REST API on 127.0.0.1)")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("up", help="start it and print the variables to export", description=cmd_up.__doc__)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="folder for volumes, the workspace and run logs, kept afterwards (default: a temporary one, removed)",
    )
    p.add_argument(
        "--legacy",
        action="store_true",
        help="a classic workspace with DBFS root (default: none, as on every new account)",
    )
    p.add_argument(
        "--volume",
        default=None,
        help="the staging volume to create, catalog.schema.volume (default: <MEDALLION_CATALOG>.platform.staging)",
    )
    p.set_defaults(func=cmd_up)


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the local Databricks stand-in on 127.0.0.1 (Unity Catalog with a staging volume and the Files API,
    no DBFS root unless --legacy, Jobs 2.2 runs executed by local driver processes, one RUNNING cluster), prints
    the variables to export, and serves until Ctrl-C or SIGTERM, which end every run's driver."""
    # Ctrl-C and SIGTERM stop it, even when it was started with Ctrl-C ignored (as a script's `… &` is):
    # the disposition is inherited, and Python keeps an inherited "ignore".
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    from medallion_devtools.standins.databricks import LocalDatabricks
    from medallion_platform.settings import Settings
    from medallion_platform.zones.entries import governed_principals

    # Unity Catalog knows the principals the platform names (owners, the platform, the grantees): the one
    # product-specific value the stand-in takes, passed in here so the stand-in imports nothing of the product.
    settings = Settings.from_env()
    dbx = LocalDatabricks(
        root=args.root,
        port=args.port,
        current_user=settings.platform_principal,  # the token it prints acts as the platform's principal
        principals=governed_principals(settings),
        volumes=(args.volume or f"{settings.catalog_name}.platform.staging",),
        legacy=args.legacy,
    )
    # Whatever ends this call (Ctrl-C even while starting or printing, or a failure) stops the stand-in.
    try:
        dbx.start()
        _provision(dbx, settings)
        mount = dbx.mount
        mounts = "/Volumes and /dbfs" if dbx.legacy else "/Volumes, no DBFS root"
        print(f"# local Databricks on {dbx.host} (stand-in; loopback only; {mounts} via {mount and mount.strategy})")
        if mount is not None and mount.problem:
            print(f"# warning: {mount.problem}", file=sys.stderr)
        if dbx.engine is not None:
            print(f"# cluster engine: Sail, Spark Connect at {dbx.engine.remote} (native Delta, this Unity Catalog)")
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
