"""Run the program offline under Pulumi mocks and record every resource it declares.

Used by the unit tests (`medallion_tests/infra/`) and by the plan exporter of the security scan, so
both look at exactly the same resources. Mock ids and ARNs are unique per resource, which lets the
exporter restore references by value.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra_pulumi.config import InfraConfig
from infra_pulumi.program import build
from medallion_platform.contracts import Contract

__all__ = ["Recorded", "Recording", "RecordingMocks", "record_program"]


@dataclass
class Recorded:
    """One resource as the engine would receive it: type token, logical name, inputs, mock state."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    id: str


@dataclass
class Recording:
    """Everything `build` declared, and its resolved stack outputs."""

    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    """Provider calls (data sources) the program made, each answered by the mocks."""

    def of_type(self, token: str) -> list[Recorded]:
        """Resources whose type token is `token` (e.g. `aws:s3/bucket:Bucket`)."""
        return [r for r in self.resources if r.type == token]

    def named(self, name: str) -> Recorded:
        """The resource with logical name `name`."""
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back with plausible, unique ids and ARNs, and record every resource."""

    def __init__(self, config: InfraConfig) -> None:
        self.config = config
        self.resources: list[Recorded] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """Record the resource; return an id and state with the computed attributes filled in."""
        resource_id, computed = self._computed(args.typ, args.name, args.inputs)
        state = {**args.inputs, **computed}
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), state, resource_id))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """Answer the data sources the program reads (pulumi-databricks' policy generators); fail on any other."""
        self.calls.append(args.token)
        if args.token == "databricks:index/getAwsBucketPolicy:getAwsBucketPolicy":
            return {"id": "root", "json": databricks_root_bucket_policy(args.args)}, []
        raise NotImplementedError(f"unexpected provider call {args.token}: answer it in infra_pulumi/mocks.py")

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        region, account = self.config.region, self.config.account_id
        given = inputs.get("name") or name
        service = typ.split(":")[1].split("/")[0]
        if typ == "aws:s3/bucket:Bucket":
            return inputs["bucket"], {"arn": f"arn:aws:s3:::{inputs['bucket']}", "bucket": inputs["bucket"]}
        if typ == "aws:iam/role:Role":
            return given, {"arn": f"arn:aws:iam::{account}:role/{given}", "name": given}
        if typ == "aws:kms/key:Key":
            return f"key-{name}", {"arn": f"arn:aws:kms:{region}:{account}:key/key-{name}", "keyId": f"key-{name}"}
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{given}"
            return url, {"arn": f"arn:aws:sqs:{region}:{account}:{given}", "url": url, "name": given}
        if typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
            dns = f"vpce-{name}.{service}.{region}.vpce.amazonaws.com"
            return f"vpce-{name}", {
                "arn": f"arn:aws:ec2:{region}:{account}:vpc-endpoint/vpce-{name}",
                "prefixListId": f"pl-{name}",
                "dnsEntries": [{"dnsName": f"*.{dns}" if service == "s3" else dns, "hostedZoneId": "Z7HUB22UULQXV"}],
            }
        if typ.startswith("databricks:"):
            return self._databricks(typ, name, inputs)
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return given, {"arn": f"arn:aws:logs:{region}:{account}:log-group:{given}", "name": given}
        if typ == "aws:sfn/stateMachine:StateMachine":
            return given, {"arn": f"arn:aws:states:{region}:{account}:stateMachine:{given}", "name": given}
        if typ == "aws:kinesis/stream:Stream":
            return given, {"arn": f"arn:aws:kinesis:{region}:{account}:stream/{given}", "name": given}
        resource_id = f"{service}-{name}-id"
        return resource_id, {"arn": f"arn:aws:{service}:{region}:{account}:{name}", "name": given}

    def _databricks(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Ids Databricks assigns: credential/storage/network/endpoint/workspace ids, the external id."""
        kind = typ.rsplit(":", 1)[-1]
        ids = {
            "MwsCredentials": "credentialsId",
            "MwsStorageConfigurations": "storageConfigurationId",
            "MwsVpcEndpoint": "vpcEndpointId",
            "MwsNetworks": "networkId",
            "MwsPrivateAccessSettings": "privateAccessSettingsId",
        }
        state: dict[str, Any] = {"name": inputs.get("name") or name}
        if kind in ids:
            state[ids[kind]] = f"{kind.lower()}-{name}"
        if kind == "MwsWorkspaces":
            state |= {"workspaceId": 1234567890123456, "workspaceUrl": f"https://{name}.cloud.databricks.com"}
        if kind == "StorageCredential":
            state["awsIamRole"] = {**inputs["awsIamRole"], "externalId": f"issued-external-id-{name}"}
        return f"{kind.lower()}-{name}", state


def databricks_root_bucket_policy(args: dict[str, Any]) -> str:
    """What `get_aws_bucket_policy` returns: Databricks' account (with its E2 account tag) on the root bucket."""
    bucket = args["bucket"]
    statement = {
        "Sid": "GrantDatabricksAccess",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::414351767826:root"},
        "Action": [
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
        ],
        "Resource": [f"arn:aws:s3:::{bucket}/*", f"arn:aws:s3:::{bucket}"],
        "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": [args.get("databricksE2AccountId")]}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def record_program(config: InfraConfig, contracts: dict[str, Contract] | None = None) -> Recording:
    """Build the whole program once under mocks; wait on every output so every resource is recorded."""
    mocks = RecordingMocks(config)
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=config.stack, preview=False)
    recording = Recording(mocks.resources, calls=mocks.calls)

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        outputs = {k: v for k, v in build(config, contracts).items() if v is not None}
        return pulumi.Output.from_input(outputs).apply(recording.outputs.update)

    run()
    return recording
