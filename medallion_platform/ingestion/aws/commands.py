"""The AWS ingestion commands behind the CLI: `ingest stream` and `ingest batch` (`local-aws up`: devtools).

Plain functions (the CLI only parses arguments and calls them). The environment decides the
mechanics, never the caller: on `local-aws` the stream is forwarded to Firehose and the batch copy
runs locally; on `aws` Firehose and the Step Functions state machine do those hops.
"""

import gzip
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import WaiterError

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
from medallion_platform.ingestion.aws.producer import ProduceSummary, jsonl_records, put_records
from medallion_platform.ingestion.aws.progress import Progress
from medallion_platform.settings import ConfigError, Settings

__all__ = [
    "BatchIngestResult",
    "StreamIngestResult",
    "ingest_batch",
    "ingest_stream",
]

CopyMode = Literal["auto", "local", "job", "state-machine"]


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
    forward: bool | None = None,
    contracts: dict[str, Contract] | None = None,
) -> StreamIngestResult:
    """Puts JSON-lines files (paths; `.gz` read as gzip) and/or records (dicts) on the dataset's stream.

    Prints a progress bar and a throughput summary on stderr. On `local-aws` (or with `forward=True`)
    the forwarder then moves the new stream records to Firehose, as AWS does by itself.
    """
    contract = _contract(dataset, "stream", contracts)
    names = deployment_names(settings)
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
    names = deployment_names(settings)
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
    """Waits (boto3's `object_exists` waiter, 5 s apart) until every key is in `bucket`, at most `wait_seconds`."""
    waiter = s3.get_waiter("object_exists")
    deadline = time.monotonic() + wait_seconds
    for key in keys:
        remaining = max(1, int((deadline - time.monotonic()) // 5))
        try:
            waiter.wait(Bucket=bucket, Key=key, WaiterConfig={"Delay": 5, "MaxAttempts": remaining})
        except WaiterError:
            raise RuntimeError(
                f"s3://{bucket}/{key} did not arrive within {wait_seconds:.0f} s: check the batch-copy state machine's "
                "executions in Step Functions"
            ) from None


def _contract(dataset: str, kind: str, contracts: dict[str, Contract] | None) -> Contract:
    contracts = contracts if contracts is not None else load_contracts()
    contract = contracts.get(dataset)
    if contract is None or contract.source.kind != kind:
        matching = sorted(c.name for c in contracts.values() if c.source.kind == kind)
        raise ConfigError(f"{dataset!r} is not a {kind} dataset; {kind} datasets: {', '.join(matching)}")
    return contract
