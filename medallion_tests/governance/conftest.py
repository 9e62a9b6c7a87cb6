"""A small lake after a full run (every source, every refined table), copied per test."""

import shutil
from pathlib import Path

import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.engine import EmbeddedEngine
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.refined.dependents import refresh_dependents


@pytest.fixture(scope="module")
def built_lake(tmp_path_factory) -> Path:
    """Sample data (300 orders, 40 customers) through raw, trusted, quarantine and every refined table."""
    data_dir = tmp_path_factory.mktemp("governed") / "lake"
    settings = Settings.from_env({}, data_dir=data_dir)
    generate_sample_data(Path(settings.landing_root), SampleSpec(orders=300, customers=40, products=20))
    lake, engine = Lakehouse(settings), EmbeddedEngine()
    try:
        for contract in load_contracts().values():
            ingest_and_promote(lake, engine, contract)
        for contract in load_contracts().values():
            if contract.history is not None:  # the history assets (segment_revenue reads the customers')
                refresh_history(lake, engine, contract)
    finally:
        engine.close()
    assert len(refresh_dependents(lake, ["order_events", "customers", "products", "customers_history"])) == 4
    return data_dir


@pytest.fixture
def full_lake(built_lake: Path, tmp_path: Path) -> Lakehouse:
    """A copy of the built lake for one test (tables are found by the settings, so a copy is a lake)."""
    data_dir = tmp_path / "lake"
    shutil.copytree(built_lake, data_dir, symlinks=True)
    return Lakehouse(Settings.from_env({}, data_dir=data_dir))
