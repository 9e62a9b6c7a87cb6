"""Where the lakehouse lives and how it runs, resolved from the environment when resources are built.

Nothing here runs at import time: `Settings.from_env()` is called by the Dagster resources and the CLI.
`MedallionEnvironment` (pydantic-settings) is the one reader of `MEDALLION_*` variables.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from medallion_platform.errors import ConfigError
from medallion_platform.naming import ZONES

if TYPE_CHECKING:
    import boto3

__all__ = ["DEFAULT_GRANTS", "AwsAccess", "ConfigError", "MedallionEnvironment", "Settings"]

Env = Literal["local", "local-aws", "aws", "databricks"]

EngineKind = Literal["embedded", "spark", "databricks"]
"""The transform engines: SQLFrame on DuckDB, local PySpark, the Databricks cluster's session."""


DEFAULT_GRANTS: dict[str, dict[str, list[str]]] = {
    "raw": {},
    "trusted": {"data-engineers": ["USE_SCHEMA", "SELECT"]},
    "refined": {"analysts": ["USE_SCHEMA", "SELECT"], "data-engineers": ["USE_SCHEMA", "SELECT"]},
}
"""Analysts read refined only, engineers trusted and refined; raw is readable only by the platform principal."""


class MedallionEnvironment(BaseSettings):
    """Every `MEDALLION_*` variable the platform reads, typed, and the standard `AWS_*` ones it forwards.

    Read from `os.environ` by pydantic-settings, or from an explicit mapping (`read(environ)`: tests,
    subprocess environments). `Settings.from_env` resolves these into a deployment's settings.
    """

    model_config = SettingsConfigDict(
        env_prefix="MEDALLION_", env_ignore_empty=True, extra="ignore", frozen=True, populate_by_name=True
    )

    env: Env = "local"
    data_dir: Path = Path("data")
    engine: EngineKind = "embedded"
    batch_rows: int = 250_000
    catalog: str = "medallion"
    catalog_kind: Literal["embedded", "unity"] | None = None
    catalog_storage_root: str | None = None
    """The Unity Catalog catalog's managed location (`s3://…`): new metastores have no root storage."""
    databricks_warehouse_id: str | None = None
    platform_principal: str = "medallion-platform"
    grants: Annotated[dict[str, dict[str, list[str]]] | None, NoDecode] = None
    """JSON: per zone, per principal, Unity Catalog privileges on the zone's schema."""
    raw_bucket: str | None = None
    trusted_bucket: str | None = None
    refined_bucket: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    landing_queue_url: str | None = None
    duckdb_memory_limit: str = "384MB"
    """DuckDB's memory limit in the embedded engine; past it DuckDB spills to its temp directory."""
    plan_cache: str | None = None
    """Where the embedded engine keeps the plans it builds (`engine/plans.py`), or `off`; default
    `$XDG_CACHE_HOME/medallion/plans` (else `~/.cache/medallion/plans`)."""
    pii_hash_key: SecretStr | None = None
    """The key of the keyed hash that stands in for personal data outside raw and trusted (`zones/pii.py`)."""
    quality_batches: int = 20
    """How many recent batches the quality anomaly checks take as their baseline (N)."""
    quality_width: float = 3.0
    """How many scaled median absolute deviations from the baseline's median a figure may stray (k)."""
    principal: str | None = None
    """Who `medallion sql` reads as: masks and row filters apply as for this principal (default: the platform's)."""
    principal_groups: str = ""
    """Comma-separated groups of `MEDALLION_PRINCIPAL` (what `is_account_group_member` asks locally)."""
    stack: str | None = None
    """The Pulumi stack (or emulator stack) the AWS resource names derive from."""
    project: str = "medallion"
    bucket_suffix: str = ""
    """Appended to bucket names (the account id in AWS; empty on the emulator)."""
    contracts_dir: Path | None = None
    """A folder of contract YAML files in the user's own repository (`medallion contracts check`)."""
    default_region: str | None = Field(default=None, validation_alias="AWS_DEFAULT_REGION")
    access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    secret_access_key: str | None = Field(default=None, validation_alias="AWS_SECRET_ACCESS_KEY")
    session_token: str | None = Field(default=None, validation_alias="AWS_SESSION_TOKEN")

    @field_validator("grants", mode="before")
    @classmethod
    def _grants_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'not JSON ({exc}): give {{"<zone>": {{"<principal>": ["SELECT", ...]}}}}') from None
        return value

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> "MedallionEnvironment":
        """The variables of `os.environ` (None) or of `environ` alone."""
        try:
            if environ is None:
                return cls()
            prefix = cls.model_config.get("env_prefix", "")
            values: dict[str, Any] = {
                (key.removeprefix(prefix).lower() if key.startswith(prefix) else key): value
                for key, value in environ.items()
                if value != ""
            }
            return _ExplicitEnvironment(**values)
        except ValidationError as exc:
            for error in exc.errors():
                if error["loc"] == ("env",):
                    raise ConfigError(
                        f"MEDALLION_ENV={error['input']!r} is not an environment: use one of "
                        f"{', '.join(get_args(Env))} (unset it for local)"
                    ) from None
            raise ConfigError(f"invalid Medallion configuration ({_env_problems(exc)})") from None


class _ExplicitEnvironment(MedallionEnvironment):
    """The variables of an explicit mapping only: no other source (`os.environ`, dotenv) is read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _env_problems(exc: ValidationError) -> str:
    """Names each bad variable as the user wrote it (`MEDALLION_BATCH_ROWS`, not `batch_rows`)."""
    out = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field if field.isupper() else f"MEDALLION_{field.upper()}"
        out.append(f"{name}: {error['msg']}")
    return "; ".join(out)


class AwsAccess(BaseModel):
    """Region, endpoint and (optional) keys of a deployment: one translation to boto3, Arrow and delta-rs.

    Without keys, boto3's default chain (profile, SSO, instance role) and delta-rs' own chain apply.
    """

    model_config = ConfigDict(frozen=True)

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @classmethod
    def from_storage_options(cls, options: Mapping[str, str], *, default_region: str | None = None) -> "AwsAccess":
        """From delta-rs style storage options (`AWS_REGION`, `AWS_ENDPOINT_URL`, keys)."""
        return cls(
            region=options.get("AWS_REGION") or default_region or "us-east-1",
            endpoint_url=options.get("AWS_ENDPOINT_URL"),
            access_key_id=options.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=options.get("AWS_SECRET_ACCESS_KEY"),
            session_token=options.get("AWS_SESSION_TOKEN"),
        )

    def session(self) -> "boto3.session.Session":
        """A boto3 session with these keys (or the default chain) in this region."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=self.region,
        )

    def arrow_s3(self) -> dict[str, object]:
        """Keyword arguments of `pyarrow.fs.S3FileSystem`."""
        kwargs: dict[str, object] = {"region": self.region}
        if self.endpoint_url:
            url = urlparse(self.endpoint_url)
            kwargs["endpoint_override"] = url.netloc
            kwargs["scheme"] = url.scheme or "https"
        if self.access_key_id:
            kwargs |= {
                "access_key": self.access_key_id,
                "secret_key": self.secret_access_key,
                "session_token": self.session_token,
            }
        return kwargs


class Settings(BaseModel):
    """The resolved configuration of one deployment."""

    model_config = ConfigDict(frozen=True)

    env: Env = "local"
    data_dir: Path
    zone_roots: dict[str, str]
    """Root URI per zone: a local folder, or `s3://<bucket>` on AWS."""
    storage_options: dict[str, str] = Field(default_factory=dict)
    """Object-store options for delta-rs (endpoint, region, credentials) on S3."""
    engine: EngineKind = "embedded"
    batch_rows: int = Field(default=250_000, ge=1_000)
    """Upper bound on rows held in memory per processing batch."""
    catalog_name: str = "medallion"
    catalog_kind: Literal["embedded", "unity"] = "embedded"
    """`unity` registers every table in Unity Catalog (the default in `databricks`), `embedded` beside the lake."""
    catalog_storage_root: str | None = None
    """The catalog's managed location when the platform creates it (`MEDALLION_CATALOG_STORAGE_ROOT`)."""
    databricks_warehouse_id: str | None = None
    """The SQL warehouse Unity Catalog DDL runs on from the orchestrator (`MEDALLION_DATABRICKS_WAREHOUSE_ID`)."""
    platform_principal: str = "medallion-platform"
    """The platform's own principal: it owns the raw tables, which nobody else may read."""
    grants: dict[str, dict[str, list[str]]] = Field(default_factory=lambda: dict(DEFAULT_GRANTS))
    """Per zone, per principal, the Unity Catalog privileges granted on the zone's schema (`MEDALLION_GRANTS`, JSON)."""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    landing_queue_url: str | None = None
    duckdb_memory_limit: str = "384MB"
    pii_hash_key: SecretStr | None = None
    """`MEDALLION_PII_HASH_KEY`: the key personal data is hashed with outside raw and trusted; unset, a key is
    generated once per lake (`zones/pii.py::pii_hasher`)."""
    quality_batches: int = Field(default=20, ge=3)
    """`MEDALLION_QUALITY_BATCHES`: the anomaly checks' baseline is the last N batches (fewer: no verdict yet)."""
    quality_width: float = Field(default=3.0, gt=0)
    """`MEDALLION_QUALITY_WIDTH`: a figure outside median +- k x 1.4826 x MAD of the baseline is an anomaly."""
    principal: str | None = None
    """`MEDALLION_PRINCIPAL`: who `medallion sql` reads as (default: the platform principal)."""
    principal_groups: tuple[str, ...] = ()
    """`MEDALLION_PRINCIPAL_GROUPS` (comma-separated): the reader's groups, which masks and row filters test."""
    stack: str | None = None
    project: str = "medallion"
    bucket_suffix: str = ""
    contracts_dir: Path | None = None
    """`MEDALLION_CONTRACTS_DIR`: the folder of the user's own contracts (their repository), which the definitions,
    sensors, CLI and `medallion contracts check` read (None: the packaged ones; `contracts.contracts_dir()`)."""

    @property
    def reader(self) -> str:
        """The principal `medallion sql` reads as."""
        return self.principal or self.platform_principal

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

    def table_name(self, zone: str, name: str) -> str:
        """`<catalog>.<zone>.<table>`: the table's three-level name in Unity Catalog (and on a cluster's Spark)."""
        return f"{self.catalog_name}.{zone}.{name}"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "_catalog" / "catalog.json"

    @property
    def aws(self) -> "AwsAccess":
        """How this deployment reaches AWS (or the emulator): the one translation every client uses."""
        return AwsAccess.from_storage_options(self.storage_options, default_region=self.aws_region)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Settings from `MEDALLION_*` variables (of `os.environ`, or of `environ` alone); keyword overrides win."""
        variables = MedallionEnvironment.read(environ)
        kind = str(overrides.pop("env", None) or variables.env)
        data_dir = Path(str(overrides.pop("data_dir", None) or variables.data_dir)).resolve()
        values: dict[str, object] = {
            "env": kind,
            "data_dir": data_dir,
            "engine": variables.engine,
            "batch_rows": variables.batch_rows,
            "catalog_name": variables.catalog,
            "catalog_kind": variables.catalog_kind or ("unity" if kind == "databricks" else "embedded"),
            "catalog_storage_root": variables.catalog_storage_root,
            "databricks_warehouse_id": variables.databricks_warehouse_id,
            "platform_principal": variables.platform_principal,
            "grants": variables.grants if variables.grants is not None else dict(DEFAULT_GRANTS),
            "aws_region": variables.aws_region or variables.default_region,
            "aws_endpoint_url": variables.aws_endpoint_url,
            "landing_queue_url": variables.landing_queue_url,
            "duckdb_memory_limit": variables.duckdb_memory_limit,
            "pii_hash_key": variables.pii_hash_key,
            "quality_batches": variables.quality_batches,
            "quality_width": variables.quality_width,
            "principal": variables.principal,
            "principal_groups": tuple(g.strip() for g in variables.principal_groups.split(",") if g.strip()),
            "stack": variables.stack,
            "project": variables.project,
            "bucket_suffix": variables.bucket_suffix,
            "contracts_dir": variables.contracts_dir.resolve() if variables.contracts_dir else None,
        }
        buckets = {zone: getattr(variables, f"{zone}_bucket") for zone in ZONES}
        if kind == "local" or (kind == "databricks" and not buckets["raw"]):
            # databricks without zone buckets: the zones in local folders (the local Databricks stand-in)
            values["zone_roots"] = {zone: str(data_dir / zone) for zone in ZONES}
        else:
            for zone, bucket in buckets.items():
                if not bucket:
                    raise ConfigError(
                        f"MEDALLION_ENV={kind} needs MEDALLION_{zone.upper()}_BUCKET (the {zone} zone bucket); "
                        "get it from the Pulumi stack outputs: python infra_pulumi/outputs_to_env.py"
                    )
            values["zone_roots"] = {zone: f"s3://{bucket}" for zone, bucket in buckets.items()}
            values["storage_options"] = _s3_storage_options(variables, values)
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"invalid Medallion configuration ({_problems(exc)})") from None


def _s3_storage_options(variables: "MedallionEnvironment", values: Mapping[str, object]) -> dict[str, str]:
    options: dict[str, str] = {}
    if values.get("aws_region"):
        options["AWS_REGION"] = str(values["aws_region"])
    endpoint = values.get("aws_endpoint_url")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    for key, value in (
        ("AWS_ACCESS_KEY_ID", variables.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", variables.secret_access_key),
        ("AWS_SESSION_TOKEN", variables.session_token),
    ):
        if value:
            options[key] = value
    return options


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
