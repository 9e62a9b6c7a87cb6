"""`make test`'s two workers still start one AWS emulator, one Databricks stand-in and one Spark session per run:
every test of a fixture family shares an xdist group (one worker); the rest go with their module."""

import pytest

from medallion_tests.conftest import xdist_group


@pytest.mark.parametrize(
    "fixtures",
    [("local_aws",), ("local_databricks", "tmp_path"), ("strict_databricks",), ("unity_databricks",), ("lake",)],
)
def test_every_test_of_the_emulator_and_stand_in_family_shares_one_group(fixtures: tuple[str, ...]) -> None:
    expected = "stand-ins" if fixtures != ("lake",) else "medallion_tests/zones/test_x.py"
    assert xdist_group(fixtures, "medallion_tests/zones/test_x.py::test_y[1]") == expected


def test_a_test_needing_a_stand_in_and_spark_goes_with_the_stand_ins_and_spark_keeps_its_own_group() -> None:
    assert xdist_group(("spark_engine", "s3_storage_options"), "a.py::t") == "stand-ins"
    assert xdist_group(("spark_engine",), "a.py::t") == xdist_group(("spark_engine", "tmp_path"), "b.py::u") == "spark"


def test_under_xdist_this_test_runs_in_its_group(request: pytest.FixtureRequest) -> None:
    """pytest-xdist reads the marker in its own collection hook: a marker added after it groups nothing."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("only `make pytest` (-n 2 --dist loadgroup) groups tests")
    assert request.node.nodeid.endswith("@medallion_tests/test_xdist_groups.py")
