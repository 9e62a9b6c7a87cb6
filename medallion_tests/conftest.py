"""Shared fixtures: one Spark session and one generated sample lake per test run."""

from collections.abc import Iterable
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


# Run-wide emulators and sessions, by the fixture that starts them. Under pytest-xdist (`make test` runs two
# workers, `--dist loadgroup`) every test that needs one of a family runs on the same worker, so a run still
# starts one AWS emulator, one Databricks stand-in (one Sail server) and one Spark session; every other test
# is scheduled with the rest of its module, so module-scoped servers (the UI's) start once too.
_SHARED_FAMILIES = {
    "stand-ins": ("local_aws", "local_databricks", "strict_databricks", "unity_databricks", "s3_storage_options"),
    "spark": ("spark_engine",),
    "sample-lake": ("sample_lake",),
}


def xdist_group(fixturenames: Iterable[str], nodeid: str) -> str:
    """The xdist group of a test: the first shared family whose fixture it uses, else its module."""
    used = set(fixturenames)
    family = next((name for name, fixtures in _SHARED_FAMILIES.items() if used.intersection(fixtures)), None)
    return family or nodeid.split("::", 1)[0]


# Run on each worker, where pytest-xdist sets `numprocesses` to None and `loadgroup` to whether the run is
# `--dist loadgroup`; xdist's own collection hook turns the marker into the item's group, so this runs first.
# pytest 9.2 broke that step (pytest-dev/pytest-xdist#1386: the group is written to a node id pytest no longer
# reads), so pytest stays on 9.1 until xdist fixes it; the test in test_xdist_groups.py shows the grouping holds.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(getattr(item, "fixturenames", ()), item.nodeid)))
