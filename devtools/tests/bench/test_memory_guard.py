"""Memory guard: with `batch_rows=1000`, no record batch written to raw, trusted or quarantine is larger."""

from pathlib import Path

from medallion_devtools.bench.data import generate_events

from medallion_platform.engine.embedded import EmbeddedEngine
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_and_promote, ingest_raw
from medallion_platform.zones.trusted import promote


def _lake(tmp_path: Path) -> tuple[Settings, int]:
    settings = Settings.from_env({}, data_dir=tmp_path / "lake", batch_rows=1000)
    data = generate_events(Path(settings.landing_root), 6_000)
    assert data.lines > 5_000
    return settings, data.lines


def _assert_totals(settings: Settings, lines: int, raw, result) -> None:
    lake = Lakehouse(settings)
    assert raw.rows == lines == result.raw_rows and result.reconciled
    assert result.inserted + result.duplicates + result.quarantined == lines
    assert lake.trusted("order_events").table().count() == result.inserted
    assert lake.quarantine("order_events").table().count() == result.quarantined


def test_fused_ingest_streams_bounded_batches(tmp_path, contracts):
    settings, lines = _lake(tmp_path)
    engine = EmbeddedEngine()
    raw, result = ingest_and_promote(Lakehouse(settings), engine, contracts["order_events"])
    engine.close()
    assert result.built_from_batch
    assert 0 < raw.max_batch_rows <= 1000 and 0 < result.max_batch_rows <= 1000
    _assert_totals(settings, lines, raw, result)


def test_promote_from_raw_streams_bounded_batches(tmp_path, contracts):
    settings, lines = _lake(tmp_path)
    lake = Lakehouse(settings)
    raw = ingest_raw(lake, contracts["order_events"])
    engine = EmbeddedEngine()
    result = promote(lake, engine, contracts["order_events"])
    engine.close()
    assert not result.built_from_batch
    assert 0 < raw.max_batch_rows <= 1000 and 0 < result.max_batch_rows <= 1000
    _assert_totals(settings, lines, raw, result)
