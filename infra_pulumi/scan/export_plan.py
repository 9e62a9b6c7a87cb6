"""Turn the resources recorded under Pulumi mocks into a Terraform plan JSON that checkov can scan.

pulumi-aws is bridged from the Terraform AWS provider, so each Pulumi resource has a Terraform twin:
`aws:s3/bucket:Bucket` is `aws_s3_bucket`, `kmsKeyId` is `kms_key_id`, Pulumi's plural list blocks
(`rules`) are Terraform's repeated block (`rule`), and a single nested block is a one-element list.
Inputs that held another resource's id or ARN become `references` in `configuration`, and are left
unknown in `planned_values` as in a real plan, so checkov's graph connects, e.g., a bucket policy to
its bucket.

Run: `.venv/bin/python -m infra_pulumi.scan.export_plan --stack prod --out infra_pulumi/scan/out/plan.json`
"""

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

from infra_pulumi.config import InfraConfig

__all__ = ["TERRAFORM_VERSION", "snake", "tf_type", "to_terraform_plan"]

TERRAFORM_VERSION = "1.9.8"
FORMAT_VERSION = "1.2"
PROVIDER = "registry.terraform.io/hashicorp/aws"
MAP_ATTRIBUTES = frozenset({"tags", "tags_all"})
"""Attributes that are maps, not blocks: their keys are user data and stay as they are."""
UNKNOWN_ATTRIBUTES = {"id": "id", "arn": "arn", "keyId": "key_id", "prefixListId": "prefix_list_id", "url": "url"}
"""Computed attributes whose value is unknown until apply; references to them are unknown in the plan."""
_MODULE_IS_PREFIX_ONLY = frozenset({"ec2"})  # aws:ec2/vpc:Vpc -> aws_vpc, not aws_ec2_vpc
_TYPE_OVERRIDES: dict[str, str] = {}  # add a token here when the generic rule does not give the Terraform name
_INFRA = Path(__file__).resolve().parents[1]


def snake(name: str) -> str:
    """camelCase (Pulumi wire name) to snake_case (Terraform attribute): `kmsKeyId` -> `kms_key_id`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def tf_type(token: str) -> str:
    """Pulumi type token to Terraform resource type: `aws:s3/bucketPolicy:BucketPolicy` -> `aws_s3_bucket_policy`."""
    if token in _TYPE_OVERRIDES:
        return _TYPE_OVERRIDES[token]
    provider, path, _ = token.split(":")
    module, resource = path.split("/")
    prefix = "" if module in _MODULE_IS_PREFIX_ONLY else f"{module}_"
    return f"{provider}_{prefix}{snake(resource)}"


def _block_name(key: str) -> str:
    """Pulumi pluralizes repeated blocks (`rules`); Terraform names them singular (`rule`)."""
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Exporter:
    def __init__(self, resources: list) -> None:
        self.resources = [r for r in resources if r.type.startswith("aws:")]
        self.addresses: dict[int, str] = {}
        used: set[str] = set()
        for r in self.resources:
            name = re.sub(r"\W", "_", r.name)
            name = f"r_{name}" if name[0].isdigit() else name
            address = f"{tf_type(r.type)}.{name}"
            while address in used:
                address += "_"
            used.add(address)
            self.addresses[id(r)] = address
        # Value -> "address.attribute" for every computed attribute, to restore references by value.
        self.refs: dict[str, str] = {}
        for r in self.resources:
            address = self.addresses[id(r)]
            self.refs.setdefault(r.id, f"{address}.id")
            for key, attr in UNKNOWN_ATTRIBUTES.items():
                value = r.state.get(key)
                if key != "id" and isinstance(value, str):
                    self.refs.setdefault(value, f"{address}.{attr}")

    def _ref(self, value: Any, own: str) -> str | None:
        ref = self.refs.get(value) if isinstance(value, str) else None
        return ref if ref and not ref.startswith(own + ".") else None

    def convert(self, value: Any, own: str) -> tuple[Any, Any, bool]:
        """(planned value, configuration expression, unknown?) of one input value."""
        if isinstance(value, dict):
            values: dict[str, Any] = {}
            exprs: dict[str, Any] = {}
            for key, item in value.items():
                if key.startswith("__"):
                    continue
                name = snake(key)
                if isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
                    name = _block_name(name)
                    converted = [self.convert(i, own) for i in item]
                    values[name] = [c[0] for c in converted]
                    exprs[name] = [c[1] for c in converted]
                elif isinstance(item, dict) and name not in MAP_ATTRIBUTES:
                    sub_value, sub_expr, _ = self.convert(item, own)
                    values[name], exprs[name] = [sub_value], [sub_expr]
                elif name in MAP_ATTRIBUTES:
                    values[name], exprs[name] = item, {"constant_value": item}
                else:
                    sub_value, sub_expr, unknown = self.convert(item, own)
                    if not unknown:
                        values[name] = sub_value
                    exprs[name] = sub_expr
            return values, exprs, False
        if isinstance(value, list):
            refs = [r for r in (self._ref(v, own) for v in value) if r]
            plain = [_number(v) for v in value]
            if refs:
                return plain, {"references": [x for r in refs for x in (r, r.rsplit(".", 1)[0])]}, True
            return plain, {"constant_value": plain}, False
        ref = self._ref(value, own)
        if ref:
            return value, {"references": [ref, ref.rsplit(".", 1)[0]]}, True
        return _number(value), {"constant_value": _number(value)}, False

    def plan(self, region: str) -> dict[str, Any]:
        planned, changes, configured = [], [], []
        for r in self.resources:
            address = self.addresses[id(r)]
            kind, name = address.split(".", 1)
            values, exprs, _ = self.convert(r.inputs, address)
            unknown = {k: True for k in exprs if k not in values}
            common = {"address": address, "mode": "managed", "type": kind, "name": name, "provider_name": PROVIDER}
            planned.append({**common, "schema_version": 0, "values": values, "sensitive_values": {}})
            changes.append(
                {
                    **common,
                    "change": {
                        "actions": ["create"],
                        "before": None,
                        "after": values,
                        "after_unknown": {**unknown, "id": True},
                        "before_sensitive": False,
                        "after_sensitive": {},
                    },
                }
            )
            configured.append(
                {
                    "address": address,
                    "mode": "managed",
                    "type": kind,
                    "name": name,
                    "provider_config_key": "aws",
                    "expressions": {k: v for k, v in exprs.items()},
                    "schema_version": 0,
                }
            )
        return {
            "format_version": FORMAT_VERSION,
            "terraform_version": TERRAFORM_VERSION,
            "planned_values": {"root_module": {"resources": planned}},
            "resource_changes": changes,
            "configuration": {
                "provider_config": {
                    "aws": {"name": "aws", "full_name": PROVIDER, "expressions": {"region": {"constant_value": region}}}
                },
                "root_module": {"resources": configured},
            },
        }


def to_terraform_plan(resources: list, *, region: str) -> dict[str, Any]:
    """A Terraform plan JSON (format 1.2) describing `resources` (as recorded by `infra_pulumi.mocks`)."""
    return _Exporter(resources).plan(region)


REGISTERED_SUFFIX = "+register"
"""`--stack prod+register`: the example stack with `databricks.register` on (placeholder account values),
so the scan also sees what the registration adds on the AWS side (the workspace root bucket)."""


def stack_config(stack: str) -> InfraConfig:
    """The config of an example stack, parsed from `infra_pulumi/Pulumi.<stack>.yaml` (see `REGISTERED_SUFFIX`)."""
    name = stack.removesuffix(REGISTERED_SUFFIX)
    values = yaml.safe_load((_INFRA / f"Pulumi.{name}.yaml").read_text())["config"]
    if stack.endswith(REGISTERED_SUFFIX):
        placeholders = {"metastoreId": "scan", "clientId": "scan", "platformPrincipal": "scan"}
        values["medallion:databricks"] = {**values["medallion:databricks"], "register": True, **placeholders}
        values["medallion:databricksClientSecret"] = "scan"
    return InfraConfig.from_values(name, values)


def main(argv: list[str] | None = None) -> None:
    """Build the stack under mocks and write its Terraform plan JSON."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # pulumi-aws's own deprecated V2 classes
    from infra_pulumi.mocks import record_program

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stack", default="prod", help=f"example stack whose Pulumi.<stack>.yaml to use (suffix {REGISTERED_SUFFIX})"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the plan JSON")
    args = parser.parse_args(argv)
    config = stack_config(args.stack)
    recording = record_program(config)
    plan = to_terraform_plan(recording.resources, region=config.region)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(plan, indent=1, sort_keys=True))
    print(f"wrote {len(plan['resource_changes'])} resources of stack {args.stack} to {args.out}")


if __name__ == "__main__":
    main()
