"""Where the lakehouse lives and how it runs, resolved from the environment when resources are built.

Nothing here runs at import time: `Settings.from_env()` is called by the Dagster resources and the CLI.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medallion_platform.naming import ZONES

__all__ = ["DEFAULT_GRANTS", "ConfigError", "Settings"]

Env = Literal["local", "local-aws", "aws", "databricks"]


DEFAULT_GRANTS: dict[str, dict[str, list[str]]] = {
    "raw": {},
    "trusted": {"data-engineers": ["USE_SCHEMA", "SELECT"]},
    "refined": {"analysts": ["USE_SCHEMA", "SELECT"], "data-engineers": ["USE_SCHEMA", "SELECT"]},
}
"""Analysts read refined only, engineers trusted and refined; raw is readable only by the platform principal."""


class ConfigError(ValueError):
    """A configuration value that cannot be used, naming the variable and what to do."""


class Settings(BaseModel):
    """The resolved configuration of one deployment."""

    model_config = ConfigDict(frozen=True)

    env: Env = "local"
    data_dir: Path
    zone_roots: dict[str, str]
    """Root URI per zone: a local folder, or `s3://<bucket>` on AWS."""
    storage_options: dict[str, str] = Field(default_factory=dict)
    """Object-store options for delta-rs (endpoint, region, credentials) on S3."""
    engine: Literal["embedded", "spark", "databricks"] = "embedded"
    batch_rows: int = Field(default=250_000, ge=1_000)
    """Upper bound on rows held in memory per processing batch."""
    catalog_name: str = "medallion"
    catalog_kind: Literal["embedded", "unity"] = "embedded"
    """`unity` registers every table in Unity Catalog (the default in `databricks`), `embedded` beside the lake."""
    databricks_warehouse_id: str | None = None
    """The SQL warehouse Unity Catalog DDL runs on from the orchestrator (`MEDALLION_DATABRICKS_WAREHOUSE_ID`)."""
    platform_principal: str = "medallion-platform"
    """The platform's own principal: it owns the raw tables, which nobody else may read."""
    grants: dict[str, dict[str, list[str]]] = Field(default_factory=lambda: dict(DEFAULT_GRANTS))
    """Per zone, per principal, the Unity Catalog privileges granted on the zone's schema (`MEDALLION_GRANTS`, JSON)."""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    landing_queue_url: str | None = None

    @property
    def write_batch_rows(self) -> int:
        """Record batches handed to delta-rs: smaller than parse chunks, because delta-rs buffers
        each open partition's row group and a week of partitions is open at once."""
        return min(self.batch_rows, 50_000)

    @property
    def landing_root(self) -> str:
        """Landing files live under `landing/` in the raw zone (the raw bucket on AWS)."""
        return self.zone_roots["raw"]

    def table_uri(self, zone: str, name: str) -> str:
        """`<zone root>/<table>`."""
        return f"{self.zone_roots[zone].rstrip('/')}/{name}"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "_catalog" / "catalog.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Builds settings from `MEDALLION_*` variables, with keyword overrides winning."""
        env = dict(os.environ if environ is None else environ)
        kind = str(overrides.pop("env", None) or env.get("MEDALLION_ENV", "local"))
        if kind not in get_args(Env):
            raise ConfigError(
                f"MEDALLION_ENV={kind!r} is not an environment: use one of {', '.join(get_args(Env))} "
                "(unset it for local)"
            )
        data_dir = Path(str(overrides.pop("data_dir", None) or env.get("MEDALLION_DATA_DIR", "data"))).resolve()
        values: dict[str, object] = {
            "env": kind,
            "data_dir": data_dir,
            "engine": env.get("MEDALLION_ENGINE", "embedded"),
            "aws_region": env.get("MEDALLION_AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "aws_endpoint_url": env.get("MEDALLION_AWS_ENDPOINT_URL"),
            "landing_queue_url": env.get("MEDALLION_LANDING_QUEUE_URL"),
        }
        values["catalog_kind"] = env.get("MEDALLION_CATALOG_KIND") or ("unity" if kind == "databricks" else "embedded")
        for field, var in (
            ("catalog_name", "MEDALLION_CATALOG"),
            ("databricks_warehouse_id", "MEDALLION_DATABRICKS_WAREHOUSE_ID"),
            ("platform_principal", "MEDALLION_PLATFORM_PRINCIPAL"),
        ):
            if env.get(var):
                values[field] = env[var]
        if env.get("MEDALLION_GRANTS"):
            try:
                values["grants"] = json.loads(env["MEDALLION_GRANTS"])
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f'MEDALLION_GRANTS is not JSON ({exc}): give {{"<zone>": {{"<principal>": ["SELECT", ...]}}}}'
                ) from None
        if "MEDALLION_BATCH_ROWS" in env:
            values["batch_rows"] = env["MEDALLION_BATCH_ROWS"]
        if kind == "local" or (kind == "databricks" and not env.get("MEDALLION_RAW_BUCKET")):
            # databricks without zone buckets: the zones in local folders (the local Databricks stand-in)
            values["zone_roots"] = {zone: str(data_dir / zone) for zone in ZONES}
        else:
            roots = {}
            for zone in ZONES:
                var = f"MEDALLION_{zone.upper()}_BUCKET"
                bucket = env.get(var)
                if not bucket:
                    raise ConfigError(
                        f"MEDALLION_ENV={kind} needs {var} (the {zone} zone bucket); "
                        "get it from the Pulumi stack outputs: python infra_pulumi/outputs_to_env.py"
                    )
                roots[zone] = f"s3://{bucket}"
            values["zone_roots"] = roots
            values["storage_options"] = _s3_storage_options(env, values)
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid Medallion configuration ({problems})") from None


def _s3_storage_options(env: Mapping[str, str], values: Mapping[str, object]) -> dict[str, str]:
    options: dict[str, str] = {}
    if values.get("aws_region"):
        options["AWS_REGION"] = str(values["aws_region"])
    endpoint = values.get("aws_endpoint_url")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if env.get(key):
            options[key] = env[key]
    return options
