"""`medallion local-aws up`, `ingest stream` and `ingest batch` as users run them, on the emulator.

What a user relies on: the exit code, the printed lines, the objects in raw landing, and the code
location's landing sensor turning those objects into raw runs.
"""

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest

from medallion_platform.cli import main
from medallion_platform.definitions import build_definitions
from medallion_platform.ingestion.landing import landing_date
from medallion_platform.resources import LakehouseResource
from medallion_tests.ingestion.aws.conftest import Stack

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, start: int = 0) -> str:
    return "".join(json.dumps({"event_id": f"evt-{i:016d}", "order_id": f"ord-{i}"}) + "\n" for i in range(start, n))


def _landing_sensor() -> dg.SensorDefinition:
    (sensor,) = [s for s in build_definitions().sensors if s.name == "landing_sensor"]
    return sensor


def test_ingest_stream_lands_every_record_and_the_landing_sensor_requests_its_runs(stack_env: Stack, tmp_path, capsys):
    stack = stack_env
    plain, zipped = tmp_path / "events.jsonl", tmp_path / "more.jsonl.gz"
    plain.write_text(_events(30))
    zipped.write_bytes(gzip.compress(_events(50, start=30).encode()))

    assert main(["ingest", "stream", "order_events", str(plain), str(zipped)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"stream     {stack.names.streams['order_events']}: 50 records, 0 retried",
        f"forwarded  {stack.names.delivery_streams['order_events']}: 50 records (Firehose → raw landing)",
    ]

    s3 = stack.client("s3")
    landed = stack.keys("raw", "landing/order_events/")
    assert landed and all(landing_date(k) for k in landed), landed
    lines = [
        json.loads(line)["event_id"]
        for key in landed
        for line in s3.get_object(Bucket=stack.names.buckets["raw"], Key=key)["Body"].read().decode().splitlines()
    ]
    assert sorted(lines) == [f"evt-{i:016d}" for i in range(50)]

    with dg.DagsterInstance.ephemeral() as instance:
        result = _landing_sensor()(
            dg.build_sensor_context(instance=instance, resources={"lakehouse": LakehouseResource()})
        )
    assert {r.tags["medallion/landing_key"] for r in result.run_requests} == set(landed)
    assert {r.partition_key for r in result.run_requests} == {landing_date(k) for k in landed}


def test_ingest_batch_copies_staged_exports_into_dated_raw_landing(stack_env: Stack, tmp_path, capsys):
    stack = stack_env
    exports = [tmp_path / "customers_20261101.csv", tmp_path / "customers_20261104.csv"]
    exports[0].write_text("customer_id,name,email\n1,Ada,ada@example.com\n")
    exports[1].write_text("customer_id,name,email\n2,Bob,bob@example.com\n")

    assert main(["ingest", "batch", "customers", *map(str, exports)]) == 0
    out = capsys.readouterr().out.splitlines()

    staged = [line.split()[1] for line in out if line.startswith("staged ")]
    landed = [line.split()[1] for line in out if line.startswith("landed ")]
    assert out[-1] == "copy     local"
    raw, staging = stack.names.buckets["raw"], stack.names.buckets["staging"]
    for staged_uri, landed_uri, export in zip(staged, landed, exports, strict=True):
        key = staged_uri.removeprefix(f"s3://{staging}/")
        assert key.startswith("customers/") and key.endswith(f"/{export.name}") and len(key.split("/")) == 5
        assert landed_uri == f"s3://{raw}/landing/{key}"  # landing/customers/YYYY/MM/DD/<file>
        body = stack.client("s3").get_object(Bucket=raw, Key=f"landing/{key}")["Body"].read()
        assert body == export.read_bytes()
    landing_keys = stack.keys("raw", "landing/customers/")
    assert landing_keys == sorted(u.removeprefix(f"s3://{raw}/") for u in landed)
    assert all(landing_date(k) for k in landing_keys)

    with dg.DagsterInstance.ephemeral() as instance:
        result = _landing_sensor()(
            dg.build_sensor_context(instance=instance, resources={"lakehouse": LakehouseResource()})
        )
    assert {r.tags["medallion/landing_key"] for r in result.run_requests} == set(landing_keys)
    assert {r.asset_selection[0].path[-1] for r in result.run_requests} == {"customers"}


def test_an_unreachable_emulator_is_one_line_exit_1(stack_env: Stack, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MEDALLION_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    export = tmp_path / "customers.csv"
    export.write_text("customer_id\n1\n")
    assert main(["ingest", "batch", "customers", str(export)]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("medallion ")]
    assert "Could not connect" in line and line.endswith("(is `medallion local-aws up` running?)")


@contextlib.contextmanager
def _local_aws_up(stack: str, tmp_path: Path, *, as_background_job: bool = False) -> Iterator[subprocess.Popen]:
    """`medallion local-aws up` as a user runs it, in its own process; killed at the end if it is still
    running. stdout is piped; stderr goes to a file, so the server never blocks on a full pipe.
    `as_background_job`: started with Ctrl-C ignored, as a script's `... &` starts it."""
    ignore_ctrl_c = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if as_background_job else None
    with (tmp_path / "local-aws-up.stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medallion_platform.cli", "local-aws", "up", "--stack", stack, "--shards", "1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "MEDALLION_DATA_DIR": str(tmp_path)},
            preexec_fn=ignore_ctrl_c,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _ctrl_c(proc: subprocess.Popen) -> int:
    """Presses Ctrl-C and returns the exit code (at most 30 s later)."""
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=30)


def test_local_aws_up_serves_until_ctrl_c(tmp_path):
    with _local_aws_up("cliup", tmp_path) as proc:
        exports = {}
        deadline = time.monotonic() + 60
        while "AWS_SECRET_ACCESS_KEY" not in exports and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("export "):
                key, value = line.removeprefix("export ").strip().split("=", 1)
                exports[key] = value
        assert exports["MEDALLION_STACK"] == "cliup" and exports["MEDALLION_RAW_BUCKET"] == "medallion-cliup-raw"
        endpoint = exports["MEDALLION_AWS_ENDPOINT_URL"]
        assert endpoint.startswith("http://127.0.0.1:")

        def client(service: str):  # with exactly what the printed exports say
            return boto3.client(
                service,
                endpoint_url=endpoint,
                region_name=exports["MEDALLION_AWS_REGION"],
                aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            )

        s3 = client("s3")
        assert "medallion-cliup-staging" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        kinesis = client("kinesis")
        shards = kinesis.list_shards(StreamName="medallion-cliup-order-events")["Shards"]
        assert len(shards) == 1
        assert _ctrl_c(proc) == 0


def test_local_aws_up_stops_on_ctrl_c_even_while_printing_the_exports_and_as_a_background_job(tmp_path):
    """Ctrl-C right after the first export line (before the serve loop) still stops the emulator and
    exits 0, also when the command was started with Ctrl-C ignored (it installs its own handler)."""
    with _local_aws_up("early", tmp_path, as_background_job=True) as proc:
        line = proc.stdout.readline()
        while line and not line.startswith("export "):
            line = proc.stdout.readline()
        assert line.startswith("export ")
        assert _ctrl_c(proc) == 0
