"""Shared helpers for the infra tests: a config built in the test, policy document access."""

import copy
import json
from typing import TYPE_CHECKING, Any

from infra_pulumi.config import InfraConfig

if TYPE_CHECKING:
    from infra_pulumi.mocks import Recorded, Recording

ACCOUNT = "123456789012"

BASE_VALUES: dict[str, Any] = {
    "aws:region": "eu-central-1",
    "medallion:accountId": ACCOUNT,
    "medallion:deployRoleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer",
    "medallion:breakGlassRoleArn": f"arn:aws:iam::{ACCOUNT}:role/break-glass",
    "medallion:protect": True,
    "medallion:network": {
        "vpc1Cidr": "10.1.0.0/16",
        "vpc2Cidr": "10.2.0.0/16",
        "availabilityZones": ["eu-central-1a", "eu-central-1b"],
        "subnet1Cidr": "10.1.1.0/24",
        "subnet2Cidr": "10.1.2.0/24",
        "subnet3Cidr": "10.2.3.0/24",
        "databricksSubnetCidrs": ["10.1.64.0/19", "10.1.96.0/19"],
        "endpointSubnetCidrs": ["10.1.10.0/24", "10.1.11.0/24"],
        "vpc2EndpointSubnetCidr": "10.2.10.0/24",
    },
    "medallion:vpn": {"customerGatewayIp": "198.51.100.7", "bgpAsn": 65010, "onPremCidrs": ["192.168.0.0/16"]},
    "medallion:databricks": {
        "accountId": "dbx-account-uuid",
        "awsAccountId": "414351767826",
        "unityCatalogPrincipalArn": "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL",
        "unityCatalogExternalId": "uc-external-id",
        "workspaceEndpointService": "com.amazonaws.vpce.eu-central-1.vpce-svc-workspace",
        "relayEndpointService": "com.amazonaws.vpce.eu-central-1.vpce-svc-relay",
        "regionalBuckets": {
            "artifacts": ["databricks-prod-artifacts-eu-central-1"],
            "logs": ["databricks-prod-storage-frankfurt"],
            "systemTables": ["system-tables-prod-eu-central-1-uc-metastore-bucket"],
            "datasets": ["databricks-datasets-frankfurt"],
        },
        "platformPrincipal": "platform-sp-application-id",
    },
    "medallion:retention": {"landingDays": 30, "noncurrentVersionDays": 7, "logDays": 365, "kinesisHours": 48},
}


def make_config(stack: str = "test", **overrides: Any) -> InfraConfig:
    """A config built in the test (mocks cannot read Pulumi.<stack>.yaml); overrides replace whole keys."""
    values = copy.deepcopy(BASE_VALUES)
    values.update({f"medallion:{k}": v for k, v in overrides.items()})
    return InfraConfig.from_values(stack, values)


def doc(resource: "Recorded", key: str = "policy") -> dict[str, Any]:
    """A JSON policy document input, parsed."""
    return json.loads(resource.inputs[key])


def statements(resource: "Recorded", key: str = "policy") -> list[dict[str, Any]]:
    """Statements of a JSON policy input."""
    return doc(resource, key)["Statement"]


def as_list(value: Any) -> list:
    """IAM fields may be a string or a list."""
    return value if isinstance(value, list) else [value]


def by_bucket(recording: "Recording", token: str) -> dict[str, "Recorded"]:
    """Bucket-attached resources of `token`, keyed by bucket name."""
    return {r.inputs["bucket"]: r for r in recording.of_type(token)}


def make_registered_config(stack: str = "reg") -> InfraConfig:
    """The test config with `databricks.register` on (account credentials and metastore filled in)."""
    values = copy.deepcopy(BASE_VALUES)
    values["medallion:databricks"] = {
        **values["medallion:databricks"],
        "register": True,
        "metastoreId": "metastore-eu-central-1",
        "clientId": "account-sp-client-id",
    }
    values["medallion:databricksClientSecret"] = "account-sp-oauth-secret"
    return InfraConfig.from_values(stack, values)
