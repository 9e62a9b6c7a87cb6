"""Turn `pulumi stack output --json` into a `.env` file of MEDALLION_* settings for Dagster.

    cd infra_pulumi && pulumi stack output --json --show-secrets \\
        | ../.venv/bin/python outputs_to_env.py --env aws > ../.env.aws

`--env` is the Dagster environment (`aws` or `databricks`); the databricks one also carries the
Unity Catalog and cross-account role ARNs, and, when the program registered the workspace, its URL
(`DATABRICKS_HOST`), the catalog and the platform principal.

`--site` is where the client runs, which decides the endpoints it must use (botocore's standard
service-specific variables, honoured by boto3 and so by `medallion ingest`):

- `compute` (default): Dagster workers and Databricks in the compute subnets. No endpoint variables: S3
  goes through the compute gateway endpoint and the other services through private DNS.
- `on-prem`: over the VPN. `AWS_ENDPOINT_URL_S3` (subnet 1's S3 endpoint: staging uploads, raw),
  `AWS_ENDPOINT_URL_S3_CONTROL` (the batch copy job), `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL_STS`.
- `subnet1`, `subnet2`, `subnet3`: the zone subnet's own S3 endpoint (and VPC 2's STS for subnet 3).
"""

import argparse
import json
import re
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["to_env", "to_env_lines"]

_COMMON = {
    # the AWS ingestion commands derive stream, queue and staging names from these (`naming.resource_names`)
    "MEDALLION_STACK": "stack",
    "MEDALLION_PROJECT": "project",
    "MEDALLION_BUCKET_SUFFIX": "bucket_suffix",
    "MEDALLION_AWS_REGION": "aws_region",
    "MEDALLION_AWS_ACCOUNT_ID": "aws_account_id",
    "MEDALLION_RAW_BUCKET": "raw_bucket",
    "MEDALLION_TRUSTED_BUCKET": "trusted_bucket",
    "MEDALLION_REFINED_BUCKET": "refined_bucket",
    "MEDALLION_STAGING_BUCKET": "staging_bucket",
    "MEDALLION_LANDING_QUEUE_URL": "landing_queue_url",
    "MEDALLION_BATCH_OPERATIONS_ROLE_ARN": "batch_operations_role_arn",
    "MEDALLION_BATCH_COPY_STATE_MACHINE_ARN": "batch_copy_state_machine_arn",
    "MEDALLION_DAGSTER_WORKER_ROLE_ARN": "dagster_worker_role_arn",
    "MEDALLION_RAW_KMS_KEY_ARN": "raw_key_arn",
    "MEDALLION_TRUSTED_KMS_KEY_ARN": "trusted_key_arn",
    "MEDALLION_REFINED_KMS_KEY_ARN": "refined_key_arn",
    "MEDALLION_STAGING_KMS_KEY_ARN": "staging_key_arn",
}
_DATABRICKS = {
    "MEDALLION_UNITY_CATALOG_ROLE_ARN": "unity_catalog_role_arn",
    "MEDALLION_DATABRICKS_CROSS_ACCOUNT_ROLE_ARN": "databricks_cross_account_role_arn",
}
_DATABRICKS_REGISTERED = {
    # only when the program registered the workspace (`databricks.register`)
    "DATABRICKS_HOST": "databricks_workspace_url",
    "MEDALLION_CATALOG": "databricks_catalog",
    "MEDALLION_PLATFORM_PRINCIPAL": "databricks_platform_principal",
    "MEDALLION_DATABRICKS_VOLUME": "databricks_staging_volume",
    "MEDALLION_CATALOG_STORAGE_ROOT": "databricks_catalog_storage_root",
    "MEDALLION_DATABRICKS_POLICY_ID": "databricks_cluster_policy_id",
}
ENVIRONMENTS = ("aws", "databricks")
SITES: dict[str, dict[str, tuple[str, ...]]] = {
    "compute": {},
    "on-prem": {
        "AWS_ENDPOINT_URL_S3": ("s3_endpoint_urls", "raw"),
        "AWS_ENDPOINT_URL_S3_CONTROL": ("s3_control_endpoint_url",),
        "AWS_ENDPOINT_URL_KINESIS": ("kinesis_endpoint_url",),
        "AWS_ENDPOINT_URL_STS": ("sts_endpoint_url",),
    },
    "subnet1": {"AWS_ENDPOINT_URL_S3": ("s3_endpoint_urls", "raw")},
    "subnet2": {"AWS_ENDPOINT_URL_S3": ("s3_endpoint_urls", "trusted")},
    "subnet3": {
        "AWS_ENDPOINT_URL_S3": ("s3_endpoint_urls", "refined"),
        "AWS_ENDPOINT_URL_STS": ("sts_vpc2_endpoint_url",),
    },
}
"""Per client site, the botocore endpoint variables and the stack output (path) each comes from."""


def _dataset_var(prefix: str, dataset: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', dataset).upper()}"


def _endpoints(outputs: Mapping[str, Any], site: str) -> dict[str, str]:
    """The AWS_ENDPOINT_URL_* variables of `site` (see the module docstring)."""
    if site not in SITES:
        raise ValueError(f"--site must be one of {tuple(SITES)}, got {site!r}")
    variables = {}
    for var, path in SITES[site].items():
        value: Any = outputs
        for key in path:
            if not isinstance(value, Mapping) or key not in value:
                raise KeyError(f"stack outputs lack {'.'.join(path)}: run `pulumi up` in infra_pulumi/ first")
            value = value[key]
        variables[var] = str(value)
    return variables


def to_env(outputs: Mapping[str, Any], *, env: str, site: str = "compute") -> dict[str, str]:
    """MEDALLION_* variables for Dagster environment `env`, and the endpoint variables of `site`."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"--env must be one of {ENVIRONMENTS}, got {env!r}")
    wanted = {**_COMMON, **(_DATABRICKS if env == "databricks" else {})}
    missing = sorted(key for key in wanted.values() if key not in outputs)
    if missing:
        raise KeyError(f"stack outputs lack {', '.join(missing)}: run `pulumi up` in infra_pulumi/ first")
    variables = {"MEDALLION_ENV": env, **{var: str(outputs[key]) for var, key in wanted.items()}}
    if env == "databricks":
        variables |= {var: str(outputs[key]) for var, key in _DATABRICKS_REGISTERED.items() if key in outputs}
    for dataset, stream in sorted(outputs.get("kinesis_streams", {}).items()):
        variables[_dataset_var("MEDALLION_KINESIS_STREAM", dataset)] = stream
    for dataset, stream in sorted(outputs.get("firehose_delivery_streams", {}).items()):
        variables[_dataset_var("MEDALLION_FIREHOSE_STREAM", dataset)] = stream
    return {**variables, **_endpoints(outputs, site)}


def to_env_lines(outputs: Mapping[str, Any], *, env: str, site: str = "compute") -> str:
    """The `.env` file text (KEY=value lines, values quoted when they need it)."""
    lines = [f"# generated by infra_pulumi/outputs_to_env.py from stack {outputs.get('stack', '?')} for site {site}"]
    for key, value in to_env(outputs, env=env, site=site).items():
        needs_quotes = re.search(r"[\s#'\"$]", value)
        lines.append(f"{key}={json.dumps(value) if needs_quotes else value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Read outputs JSON from a file or stdin; write the .env text to stdout or --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=ENVIRONMENTS, default="aws")
    parser.add_argument("--site", choices=tuple(SITES), default="compute", help="where the client runs")
    parser.add_argument("--outputs", type=argparse.FileType("r"), default=sys.stdin, help="default: stdin")
    parser.add_argument("--out", type=argparse.FileType("w"), default=sys.stdout, help="default: stdout")
    args = parser.parse_args(argv)
    try:
        text = to_env_lines(json.load(args.outputs), env=args.env, site=args.site)
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise SystemExit(f"outputs_to_env: {exc}") from exc
    args.out.write(text)


if __name__ == "__main__":
    main()
