"""The functions behind `medallion local-aws up`, `ingest stream` and `ingest batch`."""

import pytest
from medallion_devtools.serve import local_aws_down, local_aws_up

from medallion_platform.ingestion.aws.commands import ingest_batch, ingest_stream
from medallion_platform.settings import ConfigError, Settings
from medallion_tests.ingestion.aws.helpers import stream_records

pytestmark = pytest.mark.aws


def test_local_aws_up_prints_the_variables_and_the_platform_can_use_them(capsys, tmp_path):
    environ = local_aws_up("cli-check", None)
    try:
        printed = capsys.readouterr().out
        assert f"export MEDALLION_LANDING_QUEUE_URL={environ['MEDALLION_LANDING_QUEUE_URL']}" in printed
        assert environ["MEDALLION_AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert environ["MEDALLION_RAW_BUCKET"] == "medallion-cli-check-raw"
        settings = Settings.from_env({**environ, "MEDALLION_DATA_DIR": str(tmp_path)})
        result = ingest_stream(settings, "order_events", [{"event_id": "evt-0000000000000001"}])
        assert result.produced.records == 1 and result.forwarded.records == 1
    finally:
        local_aws_down(environ["MEDALLION_AWS_ENDPOINT_URL"])


def test_stream_without_forwarding_only_puts_on_the_stream(stack, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id":"evt-0000000000000001"}\n\n{"event_id":"evt-0000000000000002"}\n')
    result = ingest_stream(stack.settings, "order_events", [path], forward=False)
    assert result.forwarded is None and result.produced.records == 2
    assert len(stream_records(stack.client("kinesis"), stack.names.streams["order_events"])) == 2
    assert stack.keys("raw", "landing/") == []
    err = capsys.readouterr().err
    assert "2/2 (100%)" in err and "records/s" in err


def test_wrong_dataset_kinds_are_reported(stack, tmp_path):
    with pytest.raises(ConfigError, match="not a stream dataset; stream datasets: order_events"):
        ingest_stream(stack.settings, "customers", [])
    with pytest.raises(ConfigError, match="not a batch dataset"):
        ingest_batch(stack.settings, "order_events", [])
    with pytest.raises(ConfigError, match="no such file"):
        ingest_batch(stack.settings, "customers", [tmp_path / "missing.csv"])
