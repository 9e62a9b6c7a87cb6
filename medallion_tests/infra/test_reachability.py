"""Zone isolation, measured: one test per (subnet, bucket) pair, computed from the recorded resources.

Route tables → endpoints → endpoint policies → security groups → bucket policies (`reachability.py`).
A change that opens a path (a wider endpoint policy, a shared route table, a looser security group, a
bucket policy accepting another endpoint) fails the test named after the pair it opens.
"""

import pytest

from infra_pulumi.config import InfraConfig
from infra_pulumi.mocks import Recording
from medallion_tests.infra.reachability import matrix, paths, sources

BUCKETS = ("raw", "trusted", "refined", "staging", "access_logs")
ALL_ZONES = {"raw", "trusted", "refined"}
EXPECTED: dict[str, set[str]] = {
    "subnet1": {"raw", "staging"},  # the raw zone, and staging for the on-premises exports
    "subnet2": {"trusted"},
    "subnet3": {"refined"},
    "databricks-subnet-1": ALL_ZONES,  # clusters and Dagster workers process every zone
    "databricks-subnet-2": ALL_ZONES,
    "on-prem": {"raw", "staging"},  # over the VPN, through subnet 1's endpoint
    "endpoints-1": set(),  # endpoint subnets hold ENIs only
    "endpoints-2": set(),
    "vpc2-endpoints": set(),
}
PAIRS = [(source, bucket) for source in EXPECTED for bucket in BUCKETS]


@pytest.fixture(scope="module")
def reach(recording: Recording, config: InfraConfig) -> dict[str, set[str]]:
    return matrix(recording, config.account_id, config.vpn.on_prem_cidrs)


@pytest.mark.parametrize(
    ("source", "bucket"),
    PAIRS,
    ids=[f"{s}-{'reaches' if b in EXPECTED[s] else 'cannot-reach'}-{b}" for s, b in PAIRS],
)
def test_subnet_reaches_only_its_zone(reach: dict[str, set[str]], source: str, bucket: str) -> None:
    assert (bucket in reach[source]) == (bucket in EXPECTED[source])


def test_every_subnet_of_the_program_is_in_the_matrix(recording: Recording, config: InfraConfig) -> None:
    assert set(sources(recording, config.vpn.on_prem_cidrs)) == set(EXPECTED)


def test_zone_subnets_reach_their_zone_only_through_privatelink(recording: Recording, config: InfraConfig) -> None:
    found = sources(recording)
    buckets = {z: recording.outputs[f"{z}_bucket"] for z in ALL_ZONES}
    for subnet, zone in (("subnet1", "raw"), ("subnet2", "trusted"), ("subnet3", "refined")):
        assert paths(recording, found[subnet], buckets[zone], config.account_id) == [f"s3-{zone}-interface"]


def test_compute_subnets_reach_the_zones_through_the_compute_gateway(recording: Recording, config: InfraConfig) -> None:
    found = sources(recording)
    for zone in ALL_ZONES:
        bucket = recording.outputs[f"{zone}_bucket"]
        assert paths(recording, found["databricks-subnet-1"], bucket, config.account_id) == ["compute-s3-gateway"]


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_registered_workspace_root_bucket_is_reached_by_the_compute_subnets_only(
    registered: Recording, registered_config: InfraConfig, source: str
) -> None:
    reach = matrix(registered, registered_config.account_id, registered_config.vpn.on_prem_cidrs)
    assert ("databricks_root" in reach[source]) == source.startswith("databricks-subnet-")
