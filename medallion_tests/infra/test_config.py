"""Stack config: the example stacks parse, differ only in values, and bad values are refused with the key."""

from pathlib import Path

import pytest
import yaml

from infra_pulumi.config import ConfigError, InfraConfig
from medallion_tests.infra.helpers import make_config

INFRA = Path(__file__).resolve().parents[2] / "infra_pulumi"


def _stack(name: str) -> dict:
    return yaml.safe_load((INFRA / f"Pulumi.{name}.yaml").read_text())["config"]


def _shape(value: object) -> object:
    """The keys of a config value, recursively, without the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__ if not isinstance(value, list) else "list"


def test_example_stacks_parse_into_the_config() -> None:
    dev, prod = (InfraConfig.from_values(s, _stack(s)) for s in ("dev", "prod"))
    assert (dev.stack, prod.stack) == ("dev", "prod")
    assert not dev.vpn.enabled and prod.vpn.enabled
    assert dev.protect is False and prod.protect is True


def test_example_stacks_differ_only_in_values() -> None:
    assert _shape(_stack("dev")) == _shape(_stack("prod"))


def test_project_file_is_what_the_cli_expects() -> None:
    project = yaml.safe_load((INFRA / "Pulumi.yaml").read_text())
    assert project["name"] == "medallion"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "../.venv"}}


def test_config_is_frozen() -> None:
    cfg = make_config()
    with pytest.raises(AttributeError):
        cfg.region = "us-east-1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"retention": {"noncurrentVersionDays": 30}}, "retention.noncurrentVersionDays"),
        ({"accountId": "12345"}, "accountId"),
        ({"breakGlassRoleArn": "arn:aws:iam::123456789012:user/bob"}, "breakGlassRoleArn"),
        ({"vpn": {"customerGatewayIp": "198.51.100.7", "onPremCidrs": []}}, "vpn.onPremCidrs"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_config(**overrides)


def test_overlapping_vpcs_are_refused() -> None:
    net = dict(make_config().network.__dict__)
    values = {
        "vpc1Cidr": "10.1.0.0/16",
        "vpc2Cidr": "10.1.0.0/16",
        "availabilityZones": list(net["availability_zones"]),
        "subnet1Cidr": "10.1.1.0/24",
        "subnet2Cidr": "10.1.2.0/24",
        "subnet3Cidr": "10.1.3.0/24",
        "databricksSubnetCidrs": ["10.1.64.0/19", "10.1.96.0/19"],
        "endpointSubnetCidrs": ["10.1.10.0/24", "10.1.11.0/24"],
        "vpc2EndpointSubnetCidr": "10.1.12.0/24",
    }
    with pytest.raises(ConfigError, match="overlap"):
        make_config(network=values)


def test_overlapping_subnets_are_refused() -> None:
    from medallion_tests.infra.helpers import BASE_VALUES

    network = {**BASE_VALUES["medallion:network"], "endpointSubnetCidrs": ["10.1.1.0/24", "10.1.11.0/24"]}
    with pytest.raises(ConfigError, match=r"endpointSubnetCidrs.*overlaps `subnet1Cidr`"):
        make_config(network=network)


def test_config_error_is_the_platform_one() -> None:
    from medallion_platform.settings import ConfigError as PlatformConfigError

    assert ConfigError is PlatformConfigError


@pytest.mark.parametrize("missing", ["metastoreId", "clientId", "platformPrincipal"])
def test_registration_needs_the_account_credentials_and_metastore(missing: str) -> None:
    from medallion_tests.infra.helpers import BASE_VALUES

    databricks = {
        **BASE_VALUES["medallion:databricks"],
        "register": True,
        "metastoreId": "m",
        "clientId": "c",
        "platformPrincipal": "p",
        missing: "",
    }
    with pytest.raises(ConfigError, match=f"databricks.{missing}"):
        make_config(databricks=databricks, databricksClientSecret="s")


def test_registration_needs_the_client_secret() -> None:
    from medallion_tests.infra.helpers import BASE_VALUES

    databricks = {**BASE_VALUES["medallion:databricks"], "register": True, "metastoreId": "m", "clientId": "c"}
    with pytest.raises(ConfigError, match=r"databricksClientSecret.*--secret"):
        make_config(databricks=databricks)


def test_registration_is_off_by_default_in_the_example_stacks() -> None:
    assert not any(InfraConfig.from_values(s, _stack(s)).databricks.register for s in ("dev", "prod"))


def test_load_config_reads_the_stack_through_pulumi_config() -> None:
    """What `pulumi up` does: structured keys arrive as JSON strings and parse like the stack file."""
    import json

    import pulumi

    from infra_pulumi.config import load_config
    from infra_pulumi.mocks import RecordingMocks

    values = _stack("prod")
    pulumi.runtime.set_mocks(RecordingMocks(make_config()), project="medallion", stack="prod", preview=False)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    try:
        assert load_config() == InfraConfig.from_values("prod", values)
    finally:
        pulumi.runtime.set_all_config({})


def test_load_config_reads_the_client_secret_as_a_pulumi_secret() -> None:
    import json

    import pulumi

    from infra_pulumi.config import load_config
    from infra_pulumi.mocks import RecordingMocks

    values = {**_stack("prod"), "medallion:databricksClientSecret": "oauth-secret"}
    pulumi.runtime.set_mocks(RecordingMocks(make_config()), project="medallion", stack="prod", preview=False)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()},
        ["medallion:databricksClientSecret"],
    )
    try:
        secret = load_config().databricks.client_secret
        assert isinstance(secret, pulumi.Output)
        assert pulumi.runtime.sync_await._sync_await(secret.is_secret())
    finally:
        pulumi.runtime.set_all_config({})
