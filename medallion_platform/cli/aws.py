"""The `medallion ingest` subcommands: AWS ingestion, on AWS or the local emulator (`medallion local-aws up`,
from the development tools).

Argument parsing and printing only; the work is done by `ingestion/aws/commands.py`. Registered by
`cli.main.build_parser`, which passes its settings function so both files build settings one way.
"""

import argparse
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register"]

COPY_MODES = ("auto", "local", "job", "state-machine")
SettingsFor = Callable[[argparse.Namespace], Any]


def register(sub: Any, settings_for: SettingsFor) -> None:
    """Adds `ingest stream` and `ingest batch` to the `medallion` subparsers `sub`."""

    def group(name: str, help_text: str) -> Any:
        return sub.add_parser(name, help=help_text).add_subparsers(dest="action", required=True, metavar="ACTION")

    ingest = group("ingest", "send files through the AWS ingestion paths into raw landing")
    parsers = {}
    for name, func, files_help in (
        ("stream", cmd_ingest_stream, "JSON-lines files (.gz read as gzip)"),
        ("batch", cmd_ingest_batch, "on-premises export files"),
    ):
        p = parsers[name] = ingest.add_parser(
            name, help=(func.__doc__ or name).splitlines()[0], description=func.__doc__
        )
        p.add_argument("dataset", help=f"a `kind: {name}` dataset of the contracts")
        p.add_argument("files", nargs="+", help=files_help)
        p.set_defaults(func=_reporting_aws_errors(func), settings_for=settings_for)
    parsers["batch"].add_argument(
        "--copy",
        choices=COPY_MODES,
        default="auto",
        help="how staging reaches landing: auto (local on local-aws, the state machine on aws), local, "
        "job (submit the S3 Batch Operations job from here), state-machine (wait for the one the upload started)",
    )


def cmd_ingest_stream(args: argparse.Namespace) -> int:
    """Puts JSON-lines records on the dataset's Kinesis stream (on local-aws also forwards them to Firehose)."""
    from medallion_platform.cli.progress import phases
    from medallion_platform.ingestion.aws.commands import ingest_stream

    with phases("ingest stream", 1) as progress, progress.step(f"{args.dataset}: {len(args.files)} files"):
        result = ingest_stream(args.settings_for(args), args.dataset, args.files)
    produced = result.produced
    print(f"stream     {produced.stream}: {produced.records} records, {produced.retried_records} retried")
    if result.forwarded is not None:
        forwarded = result.forwarded
        print(f"forwarded  {forwarded.delivery_stream}: {forwarded.records} records (Firehose → raw landing)")
    return 0


def cmd_ingest_batch(args: argparse.Namespace) -> int:
    """Uploads export files to staging, then copies them to raw landing (locally, or by S3 Batch Operations)."""
    from medallion_platform.cli.progress import phases
    from medallion_platform.ingestion.aws.commands import ingest_batch

    settings = args.settings_for(args)
    with phases("ingest batch", 1) as progress, progress.step(f"{args.dataset}: {len(args.files)} files"):
        result = ingest_batch(settings, args.dataset, args.files, copy=args.copy)
    for staged in result.staged:
        print(f"staged   s3://{staged.bucket}/{staged.key}  {staged.size} bytes  sha256={staged.checksum_sha256}")
    for key in result.landing_keys:
        print(f"landed   {settings.zone_roots['raw']}/{key}")
    print(f"copy     {result.copy}" + (f"  job {result.job_id}" if result.job_id else ""))
    return 0


def _reporting_aws_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """AWS's own failures (unreachable endpoint, no credentials, a refused call) as one line, exit 1; the
    product's (a failed copy, a checksum, records the producer could not put) are `MedallionError`s, which
    `main` describes."""

    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return func(args)
        except (BotoCoreError, ClientError) as exc:
            hint = " (is `medallion local-aws up` running?)" if isinstance(exc, EndpointConnectionError) else ""
            print(f"medallion ingest {args.action}: {exc}{hint}", file=sys.stderr)
            return 1

    run.__doc__ = func.__doc__
    return run
