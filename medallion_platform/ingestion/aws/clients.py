"""boto3 clients and AWS resource names for a deployment, from `Settings` and `MEDALLION_*` variables."""

from typing import Any

from botocore.config import Config

from medallion_platform.naming import ResourceNames, resource_names
from medallion_platform.settings import ConfigError, Settings

__all__ = ["aws_client", "deployment_names"]

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


def aws_client(settings: Settings, service: str, *, config: Config | None = None) -> Any:
    """A boto3 client for `service` at the deployment's endpoint and region.

    Credentials come from the settings' storage options when set (the `AWS_*` variables the
    settings read), else from boto3's default chain (profile, SSO, instance role).
    """
    merged = _RETRIES.merge(config) if config is not None else _RETRIES
    return settings.aws.session().client(service, endpoint_url=settings.aws_endpoint_url, config=merged)


def deployment_names(settings: Settings) -> ResourceNames:
    """The resource names of the deployment: `resource_names(MEDALLION_STACK)`, checked against the buckets.

    `MEDALLION_PROJECT` (default `medallion`) and `MEDALLION_BUCKET_SUFFIX` (the account id in AWS,
    empty on the emulator) complete the names, exactly as the Pulumi program builds them.
    """
    if settings.env == "local":
        raise ConfigError(
            "MEDALLION_ENV is local, which has no AWS resources: run `medallion local-aws up` and export the "
            "variables it prints (or the Pulumi outputs, for aws)"
        )
    stack = settings.stack
    if not stack:
        raise ConfigError(
            "MEDALLION_STACK is not set: the stream, queue and staging names derive from the stack name "
            "(export it with the other MEDALLION_* variables from `medallion local-aws up` or the Pulumi outputs)"
        )
    names = resource_names(stack, project=settings.project, bucket_suffix=settings.bucket_suffix)
    if settings.zone_roots.get("raw") != names.zone_root("raw"):
        raise ConfigError(
            f"MEDALLION_RAW_BUCKET ({settings.zone_roots.get('raw')}) is not the raw bucket of stack {stack!r} "
            f"({names.zone_root('raw')}): check MEDALLION_STACK, MEDALLION_PROJECT and MEDALLION_BUCKET_SUFFIX"
        )
    return names
