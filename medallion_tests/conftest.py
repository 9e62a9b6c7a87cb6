"""Shared fixtures: one Spark session and one generated sample lake per test run."""

from pathlib import Path

import dagster as dg
import pytest

from medallion_platform.contracts import load_contracts
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings


@pytest.fixture(scope="session")
def contracts():
    return load_contracts()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An empty local lake in a temporary data directory."""
    return Settings.from_env({}, data_dir=tmp_path / "lake")


@pytest.fixture
def lake(settings: Settings) -> Lakehouse:
    """The tables of `settings`' lake."""
    return Lakehouse(settings)


@pytest.fixture
def embedded():
    from medallion_platform.engine import EmbeddedEngine

    engine = EmbeddedEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def spark_engine():
    """One local[2] Spark session for the whole run (start-up costs seconds)."""
    from medallion_platform.engine.spark import SparkEngine, local_spark_session

    spark = local_spark_session("local[2]")
    yield SparkEngine(spark)
    spark.stop()


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory):
    """Generated sample data taken through every asset once, with real Dagster runs."""
    from medallion_platform.run.materialize import materialize_all

    data_dir = tmp_path_factory.mktemp("sample_lake")
    settings = Settings.from_env({}, data_dir=data_dir)
    manifest = generate_sample_data(Path(settings.landing_root), SampleSpec(orders=600, customers=80, products=20))
    (data_dir / ".dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(data_dir / ".dagster")) as instance:
        report = materialize_all(settings, instance=instance)
        yield settings, manifest, report, instance
