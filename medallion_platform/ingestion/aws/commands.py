"""The AWS ingestion commands behind the CLI: `local-aws up`, `ingest stream`, `ingest batch`.

Plain functions (the CLI only parses arguments and calls them). The environment decides the
mechanics, never the caller: on `local-aws` the stream is forwarded to Firehose and the batch copy
runs locally; on `aws` Firehose and the Step Functions state machine do those hops.
"""

import gzip
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import ClientError

from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.ingestion.aws.batch import (
    StagedExport,
    copy_job_request,
    copy_locally,
    start_copy_job,
    upload_exports,
    wait_for_job,
    write_manifest,
)
from medallion_platform.ingestion.aws.clients import aws_client, deployment_names
from medallion_platform.ingestion.aws.forwarder import ForwardSummary, S3Checkpoint, forward_stream
from medallion_platform.ingestion.aws.local_aws import LocalAws, create_resources, local_aws_environ, start_emulator
from medallion_platform.ingestion.aws.producer import ProduceSummary, jsonl_records, put_records
from medallion_platform.ingestion.aws.progress import Progress
from medallion_platform.naming import resource_names
from medallion_platform.settings import ConfigError, Settings

__all__ = [
    "BatchIngestResult",
    "StreamIngestResult",
    "ingest_batch",
    "ingest_stream",
    "local_aws_down",
    "local_aws_up",
]

CopyMode = Literal["auto", "local", "job", "state-machine"]
_RUNNING: dict[str, LocalAws] = {}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def local_aws_up(
    stack: str = "local", port: int | None = None, *, serve_forever: bool = False, shards: int = 2
) -> dict[str, str]:
    """Starts the emulator on 127.0.0.1 (a free port unless `port`), creates the stack's resources,
    prints the variables to export and returns them. With `serve_forever`, blocks until Ctrl-C, then stops.
    """
    if serve_forever:
        # Ctrl-C and SIGTERM stop it, even when it was started with Ctrl-C ignored (as a background job
        # of a script is): the disposition is inherited, and Python keeps an inherited "ignore".
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    aws = start_emulator(port)
    environ: dict[str, str] = {}
    kept = False
    # From here on the server thread runs: whatever ends this call (Ctrl-C even while the exports are
    # printed, or a failure) stops it, or the process would wait for that thread forever.
    try:
        resources = create_resources(aws, resource_names(stack), shards=shards)
        environ = local_aws_environ(aws, resources)
        print(f"# local AWS for stack {stack!r} on {aws.endpoint_url} (moto; loopback only)", flush=True)
        for key, value in environ.items():
            print(f"export {key}={value}", flush=True)
        if not serve_forever:
            _RUNNING[aws.endpoint_url] = aws  # stopped by local_aws_down, or with the process
            kept = True
            return environ
        print("# serving; Ctrl-C stops the emulator (its state is in memory and goes with it)", file=sys.stderr)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        if not serve_forever:
            raise
        return environ
    finally:
        if not kept:
            aws.stop()


def local_aws_down(endpoint_url: str) -> None:
    """Stops an emulator started by `local_aws_up(serve_forever=False)` in this process."""
    aws = _RUNNING.pop(endpoint_url, None)
    if aws is not None:
        aws.stop()


# -- stream ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamIngestResult:
    produced: ProduceSummary
    forwarded: ForwardSummary | None = None


def ingest_stream(
    settings: Settings,
    dataset: str,
    files_or_records: Iterable[Path | str | Mapping[str, Any]],
    *,
    environ: Mapping[str, str] | None = None,
    forward: bool | None = None,
    contracts: dict[str, Contract] | None = None,
) -> StreamIngestResult:
    """Puts JSON-lines files (paths; `.gz` read as gzip) and/or records (dicts) on the dataset's stream.

    Prints a progress bar and a throughput summary on stderr. On `local-aws` (or with `forward=True`)
    the forwarder then moves the new stream records to Firehose, as AWS does by itself.
    """
    contract = _contract(dataset, "stream", contracts)
    names = deployment_names(settings, environ)
    items = list(files_or_records)
    total = sum(_count_lines(Path(i)) if isinstance(i, str | Path) else 1 for i in items)
    stream = names.streams[dataset]
    produced = put_records(
        aws_client(settings, "kinesis"),
        stream,
        jsonl_records(_lines(items), contract.primary_key),
        total=total,
        progress=Progress(f"{dataset} → {stream}", total),
    )
    print(produced.line(), file=sys.stderr, flush=True)
    forwarded = None
    if forward if forward is not None else settings.env == "local-aws":
        forwarded = forward_stream(
            aws_client(settings, "kinesis"),
            aws_client(settings, "firehose"),
            stream=stream,
            delivery_stream=names.delivery_streams[dataset],
            checkpoint=S3Checkpoint(
                aws_client(settings, "s3"), names.buckets["staging"], f"_local-aws/forwarder/{stream}.json"
            ),
        )
        print(f"forwarded to {forwarded.delivery_stream}: {forwarded.throughput.line()}", file=sys.stderr, flush=True)
    return StreamIngestResult(produced, forwarded)


def _lines(items: Sequence[Path | str | Mapping[str, Any]]) -> Iterator[str | dict]:
    for item in items:
        if isinstance(item, str | Path):
            path = Path(item)
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                yield from handle
        else:
            yield dict(item)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (ingest stream takes JSON-lines files)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


# -- batch -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchIngestResult:
    staged: list[StagedExport]
    copy: str
    """How the copy ran: `local`, `job` or `state-machine`."""
    landing_keys: list[str] = field(default_factory=list)
    job_id: str | None = None


def ingest_batch(
    settings: Settings,
    dataset: str,
    files: Sequence[Path | str],
    *,
    environ: Mapping[str, str] | None = None,
    copy: CopyMode = "auto",
    wait_seconds: float = 600,
    contracts: dict[str, Contract] | None = None,
) -> BatchIngestResult:
    """Uploads exports to staging, then copies them to raw landing.

    `copy="auto"`: on `local-aws` the local copy from a Batch Operations manifest; on `aws` the
    Step Functions state machine (started by the staging upload) does it, and this waits until the
    objects are in raw. `copy="job"` submits the S3 Batch Operations job from here and waits for it.
    """
    _contract(dataset, "batch", contracts)
    names = deployment_names(settings, environ)
    s3 = aws_client(settings, "s3")
    for file in map(Path, files):
        if not file.is_file():
            raise ConfigError(f"{file}: no such file (ingest batch takes on-premises export files)")
    staged = upload_exports(s3, names, dataset, files)
    print(f"staged {len(staged)} exports in s3://{names.buckets['staging']}/{dataset}/", file=sys.stderr)
    mode = copy if copy != "auto" else ("local" if settings.env == "local-aws" else "state-machine")
    landing = [s.landing_key for s in staged]
    if mode == "state-machine":
        _wait_for_objects(s3, names.buckets["raw"], landing, wait_seconds)
        return BatchIngestResult(staged, mode, landing)
    account = aws_client(settings, "sts").get_caller_identity()["Account"]
    manifest_key, manifest_etag = write_manifest(s3, names.buckets["staging"], staged)
    request = copy_job_request(
        account_id=account, names=names, manifest_key=manifest_key, manifest_etag=manifest_etag,
        description=f"copy {dataset} exports to raw landing",
    )  # fmt: skip
    if mode == "local":
        landing = copy_locally(s3, request)
        job_id = None
    else:
        s3control = aws_client(settings, "s3control")
        job_id = start_copy_job(s3control, request)
        wait_for_job(s3control, account, job_id, timeout_seconds=wait_seconds)
    print(f"copied to s3://{names.buckets['raw']}/: {', '.join(landing)}", file=sys.stderr)
    return BatchIngestResult(staged, mode, landing, job_id)


def _wait_for_objects(s3: Any, bucket: str, keys: list[str], wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    for key in keys:
        while True:
            try:
                s3.head_object(Bucket=bucket, Key=key)
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("404", "NoSuchKey") or time.monotonic() > deadline:
                    raise
                time.sleep(5)


def _contract(dataset: str, kind: str, contracts: dict[str, Contract] | None) -> Contract:
    contracts = contracts if contracts is not None else load_contracts()
    contract = contracts.get(dataset)
    if contract is None or contract.source.kind != kind:
        matching = sorted(c.name for c in contracts.values() if c.source.kind == kind)
        raise ConfigError(f"{dataset!r} is not a {kind} dataset; {kind} datasets: {', '.join(matching)}")
    return contract
