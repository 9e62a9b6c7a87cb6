"""On-premises exports: upload to the staging bucket, then an S3 Batch Operations copy into raw landing.

Staging keys are `<dataset>/YYYY/MM/DD/<file>` (upload date, UTC); the copy job's `TargetKeyPrefix`
`landing` makes them `landing/<dataset>/YYYY/MM/DD/<file>` in raw: the landing layout of batch sources.

- Upload: multipart above `multipart_threshold`, with SHA-256 checksums that S3 verifies per part;
  afterwards the stored checksum (full or composite `<b64>-<parts>`) is compared with the local file.
- Copy: an S3 Control `CreateJob` (`S3PutObjectCopy`, CSV manifest `Bucket,Key` with its ETag, the
  Batch Operations role, a failed-tasks report, an idempotent client token). In AWS the Step Functions
  state machine (`infra_pulumi`, triggered by the staging upload) creates and waits for that job; the
  client can also submit it itself (`copy="job"`). The emulator cannot run jobs, so `copy_locally`
  performs the same copy from the same manifest and writes a report in the same place.
"""

import base64
import csv
import datetime as dt
import hashlib
import io
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from boto3.s3.transfer import TransferConfig

from medallion_platform.errors import ChecksumMismatch, CopyFailed
from medallion_platform.naming import ResourceNames

__all__ = [
    "ChecksumMismatch",
    "CopyFailed",
    "StagedExport",
    "copy_job_request",
    "copy_locally",
    "staging_key",
    "start_copy_job",
    "upload_exports",
    "wait_for_job",
    "write_manifest",
]

TARGET_PREFIX = "landing"
MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"
DEFAULT_TRANSFER = TransferConfig(multipart_threshold=16 * 2**20, multipart_chunksize=16 * 2**20)


@dataclass(frozen=True)
class StagedExport:
    """One export in the staging bucket."""

    bucket: str
    key: str
    size: int
    etag: str
    checksum_sha256: str

    @property
    def landing_key(self) -> str:
        return f"{TARGET_PREFIX}/{self.key}"


def staging_key(dataset: str, name: str, when: dt.datetime) -> str:
    """`<dataset>/YYYY/MM/DD/<name>`; with the copy's target prefix this is `landing_key(..., hourly=False)`."""
    return f"{dataset}/{when:%Y/%m/%d}/{name}"


def upload_exports(
    s3: Any,
    names: ResourceNames,
    dataset: str,
    files: Sequence[Path | str],
    *,
    when: dt.datetime | None = None,
    transfer: TransferConfig = DEFAULT_TRANSFER,
) -> list[StagedExport]:
    """Uploads `files` to staging (multipart when large) and verifies each stored SHA-256 checksum."""
    when = when or dt.datetime.now(dt.UTC)
    bucket = names.buckets["staging"]
    staged = []
    for file in map(Path, files):
        key = staging_key(dataset, file.name, when)
        s3.upload_file(str(file), bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=transfer)
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        stored, etag = head.get("ChecksumSHA256", ""), head["ETag"].strip('"')
        parts = int(etag.rsplit("-", 1)[1]) if "-" in etag else 0  # a multipart ETag ends in `-<parts>`
        expected = _sha256_b64(file, transfer.multipart_chunksize, parts=parts)
        if stored.split("-", 1)[0] != expected or head["ContentLength"] != file.stat().st_size:
            s3.delete_object(Bucket=bucket, Key=key)
            raise ChecksumMismatch(f"{file} → s3://{bucket}/{key}: stored SHA-256 {stored!r}, file {expected!r}")
        staged.append(StagedExport(bucket, key, head["ContentLength"], etag, stored))
    return staged


def _sha256_b64(path: Path, part_size: int, *, parts: int) -> str:
    """The file's SHA-256 as S3 stores it: of the bytes, or (multipart) of the concatenated part digests.

    S3 reports a composite checksum with a `-<parts>` suffix (AWS) or without it (moto); callers
    compare the part before the dash.
    """
    digests = []
    whole = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(part_size):
            whole.update(chunk)
            digests.append(hashlib.sha256(chunk).digest())
    if not parts:
        return base64.b64encode(whole.digest()).decode()
    if parts != len(digests):
        return f"<{len(digests)} local parts, {parts} stored>"
    return base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()


def write_manifest(s3: Any, bucket: str, objects: Iterable[StagedExport], *, key: str | None = None) -> tuple[str, str]:
    """Writes a Batch Operations CSV manifest (`Bucket,Key`, keys URL-encoded); returns (key, ETag)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for obj in objects:
        writer.writerow([obj.bucket, quote(obj.key, safe="/")])
    key = key or f"_manifests/batch-copy/{uuid.uuid4().hex}.csv"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())["ETag"].strip('"')
    return key, etag


def copy_job_request(
    *,
    account_id: str,
    names: ResourceNames,
    manifest_key: str,
    manifest_etag: str,
    description: str = "copy on-premises exports to raw landing",
) -> dict[str, Any]:
    """The S3 Control `CreateJob` parameters of the copy (the client token makes a resubmission idempotent)."""
    staging_arn = f"arn:aws:s3:::{names.buckets['staging']}"
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {
            "S3PutObjectCopy": {
                "TargetResource": f"arn:aws:s3:::{names.buckets['raw']}",
                "TargetKeyPrefix": TARGET_PREFIX,
                "MetadataDirective": "COPY",
                "ChecksumAlgorithm": "SHA256",
            }
        },
        "Manifest": {
            "Spec": {"Format": MANIFEST_FORMAT, "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": f"{staging_arn}/{manifest_key}", "ETag": manifest_etag},
        },
        "Report": {
            "Bucket": staging_arn,
            "Prefix": "_reports/batch-copy",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
        },
        "Priority": 10,
        "RoleArn": f"arn:aws:iam::{account_id}:role/{names.roles['batch_operations']}",
        "ClientRequestToken": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{staging_arn}/{manifest_key}#{manifest_etag}")),
        "Description": description,
    }


def start_copy_job(s3control: Any, request: dict[str, Any]) -> str:
    """Submits the job; returns its id."""
    return s3control.create_job(**request)["JobId"]


def wait_for_job(
    s3control: Any, account_id: str, job_id: str, *, poll_seconds: float = 15, timeout_seconds: float = 6 * 3600
) -> dict[str, Any]:
    """Polls `DescribeJob` until the job completes; raises if it fails, is cancelled or times out."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        job = s3control.describe_job(AccountId=account_id, JobId=job_id)["Job"]
        if job["Status"] == "Complete":
            failed = job.get("ProgressSummary", {}).get("NumberOfTasksFailed", 0)
            if failed:
                raise CopyFailed(f"batch copy {job_id}: {failed} objects failed (see the report in staging)")
            return job
        if job["Status"] in ("Failed", "Cancelled") or time.monotonic() > deadline:
            raise CopyFailed(f"batch copy {job_id} ended {job['Status']}: {job.get('FailureReasons')}")
        time.sleep(poll_seconds)


def copy_locally(s3: Any, request: dict[str, Any]) -> list[str]:
    """Runs a copy job's request on the emulator: every manifest object to `<TargetKeyPrefix>/<key>`.

    Same semantics as S3 Batch Operations: the manifest is read at its ETag, each task copies one
    object (metadata copied), and failed tasks are written to the report. Returns the target keys.
    """
    location = request["Manifest"]["Location"]
    manifest_bucket, manifest_key = location["ObjectArn"].removeprefix("arn:aws:s3:::").split("/", 1)
    body = s3.get_object(Bucket=manifest_bucket, Key=manifest_key, IfMatch=location["ETag"])["Body"].read()
    operation = request["Operation"]["S3PutObjectCopy"]
    target_bucket = operation["TargetResource"].removeprefix("arn:aws:s3:::")
    prefix = operation.get("TargetKeyPrefix", "").strip("/")
    copied, failures = [], []
    for row in csv.reader(io.StringIO(body.decode())):
        if not row:
            continue
        bucket, key = row[0], unquote(row[1])
        target = f"{prefix}/{key}" if prefix else key
        try:
            s3.copy_object(
                Bucket=target_bucket,
                Key=target,
                CopySource={"Bucket": bucket, "Key": key},
                MetadataDirective=operation.get("MetadataDirective", "COPY"),
                ChecksumAlgorithm=operation.get("ChecksumAlgorithm", "SHA256"),
            )
            copied.append(target)
        except Exception as exc:  # a failed task is reported, as Batch Operations does, and the job fails
            failures.append([bucket, quote(key, safe="/"), "", "failed", type(exc).__name__, "", str(exc)])
    if failures:
        report = request["Report"]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(failures)
        s3.put_object(
            Bucket=report["Bucket"].removeprefix("arn:aws:s3:::"),
            Key=f"{report['Prefix']}/job-{request['ClientRequestToken']}/results/failed.csv",
            Body=out.getvalue().encode(),
        )
        raise CopyFailed(f"local batch copy: {len(failures)} of {len(failures) + len(copied)} objects failed")
    return copied
