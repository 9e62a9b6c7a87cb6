"""Batch exports: staging upload with verified checksums, the Batch Operations request at the wire, the copy."""

import datetime as dt
import http.server
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from medallion_platform.ingestion.aws.batch import (
    ChecksumMismatch,
    copy_job_request,
    copy_locally,
    start_copy_job,
    upload_exports,
    write_manifest,
)
from medallion_platform.naming import resource_names

NS = "{http://awss3control.amazonaws.com/doc/2018-08-20/}"
WHEN = dt.datetime(2026, 11, 25, 3, tzinfo=dt.UTC)


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        reply = b'<?xml version="1.0" encoding="UTF-8"?><CreateJobResult><JobId>job-0001</JobId></CreateJobResult>'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def _strip_account_label(request, **_kwargs) -> None:
    parts = urlsplit(request.url)
    request.url = urlunsplit(parts._replace(netloc=parts.netloc.split(".", 1)[1]))


@pytest.fixture
def stand_in() -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 that records what the S3 Control client sends."""
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_create_job_request_on_the_wire(stand_in: str):
    names = resource_names("prod", bucket_suffix="222222222222")
    request = copy_job_request(
        account_id="222222222222", names=names, manifest_key="_manifests/batch-copy/m.csv", manifest_etag="abc123"
    )
    s3control = boto3.client(
        "s3control",
        endpoint_url=stand_in,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(inject_host_prefix=False),
    )
    # botocore 1.44 builds S3 Control hosts from the endpoint rule set (`{AccountId}.{authority}`), which
    # inject_host_prefix does not turn off: put the stand-in's own host back before the request is signed.
    s3control.meta.events.register("before-sign.s3-control.CreateJob", _strip_account_label)
    assert start_copy_job(s3control, request) == "job-0001"
    (sent,) = _Recorder.requests
    assert sent["path"] == "/v20180820/jobs"
    assert sent["headers"]["x-amz-account-id"] == "222222222222"
    root = ET.fromstring(sent["body"])

    def text(path: str) -> str | None:
        node = root.find("/".join(NS + p for p in path.split("/")))
        return None if node is None else node.text

    assert text("Manifest/Location/ObjectArn") == (
        "arn:aws:s3:::medallion-prod-staging-222222222222/_manifests/batch-copy/m.csv"
    )
    assert text("Manifest/Location/ETag") == "abc123"
    assert text("Manifest/Spec/Format") == "S3BatchOperations_CSV_20180820"
    assert [f.text for f in root.iter(NS + "member")] == ["Bucket", "Key"]
    assert text("Operation/S3PutObjectCopy/TargetResource") == "arn:aws:s3:::medallion-prod-raw-222222222222"
    assert text("Operation/S3PutObjectCopy/TargetKeyPrefix") == "landing"
    assert text("RoleArn") == "arn:aws:iam::222222222222:role/medallion-prod-batch-operations"
    assert text("Report/Bucket") == "arn:aws:s3:::medallion-prod-staging-222222222222"
    assert text("Report/Enabled") == "true" and text("Report/ReportScope") == "FailedTasksOnly"
    assert text("ConfirmationRequired") == "false"
    token = text("ClientRequestToken")
    assert token == request["ClientRequestToken"]
    again = copy_job_request(
        account_id="222222222222", names=names, manifest_key="_manifests/batch-copy/m.csv", manifest_etag="abc123"
    )
    assert again["ClientRequestToken"] == token  # resubmitting the same manifest is the same job


@pytest.mark.aws
def test_multipart_upload_is_verified_and_copied_to_landing(stack, tmp_path):
    big = tmp_path / "customers_20261125.csv"
    big.write_bytes(b"customer_id\n" + os.urandom(11 * 2**20))
    small = tmp_path / "customers_20261125b.csv"
    small.write_bytes(b"customer_id\ncus-000001\n")
    s3 = stack.client("s3")
    transfer = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
    staged = upload_exports(s3, stack.names, "customers", [big, small], when=WHEN, transfer=transfer)
    assert [s.key for s in staged] == [
        "customers/2026/11/25/customers_20261125.csv",
        "customers/2026/11/25/customers_20261125b.csv",
    ]
    assert staged[0].etag.endswith("-3")  # three parts, each checksummed; the composite was verified
    assert "-" not in staged[1].checksum_sha256

    manifest_key, etag = write_manifest(s3, stack.names.buckets["staging"], staged)
    body = s3.get_object(Bucket=stack.names.buckets["staging"], Key=manifest_key)["Body"].read().decode()
    assert body.splitlines() == [f"{stack.names.buckets['staging']},{s.key}" for s in staged]
    request = copy_job_request(
        account_id=stack.resources.account_id, names=stack.names, manifest_key=manifest_key, manifest_etag=etag
    )
    copied = copy_locally(s3, request)
    assert copied == [
        "landing/customers/2026/11/25/customers_20261125.csv",
        "landing/customers/2026/11/25/customers_20261125b.csv",
    ]
    raw = stack.names.buckets["raw"]
    assert s3.get_object(Bucket=raw, Key=copied[0])["Body"].read() == big.read_bytes()


@pytest.mark.aws
def test_a_corrupted_upload_is_rejected_and_removed(stack, tmp_path):
    class Corrupting:
        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def head_object(self, **kwargs):
            return {**self.client.head_object(**kwargs), "ChecksumSHA256": "AAAA"}

    export = tmp_path / "products_20261125.csv"
    export.write_bytes(b"product_id\nprd-00001\n")
    with pytest.raises(ChecksumMismatch, match="stored SHA-256"):
        upload_exports(Corrupting(stack.client("s3")), stack.names, "products", [export], when=WHEN)
    assert stack.keys("staging") == []


@pytest.mark.aws
def test_copy_from_a_changed_manifest_is_refused(stack, tmp_path):
    s3 = stack.client("s3")
    export = tmp_path / "products_20261125.csv"
    export.write_bytes(b"product_id\n")
    staged = upload_exports(s3, stack.names, "products", [export], when=WHEN)
    key, _etag = write_manifest(s3, stack.names.buckets["staging"], staged)
    request = copy_job_request(account_id="123456789012", names=stack.names, manifest_key=key, manifest_etag="0" * 32)
    with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):
        copy_locally(s3, request)
    assert stack.keys("raw", "landing/") == []
