"""The Databricks step launcher of the `databricks` environment, configured from settings at run time.

With `MEDALLION_ENV=databricks`, every Medallion step (each source step's raw + trusted +
quarantine, and each refined table) runs on a Databricks cluster through dagster-databricks'
`DatabricksPySparkStepLauncher`: the step's code is zipped to a Unity Catalog volume (`staging.py`; DBFS
on classic workspaces), submitted as a `spark_python_task`, and its events come back to the orchestrator.
On the cluster the step's transforms use the `databricks` engine (the cluster's SparkSession); raw parsing stays on the
driver with the embedded parser (DuckDB), and the IO manager writes Delta there.

Configuration comes from `MEDALLION_DATABRICKS_*` variables (written from the Pulumi stack outputs,
or printed by `medallion local-databricks up`), read when the resource is built, never at import:

| variable | meaning |
|---|---|
| `DATABRICKS_HOST`, `DATABRICKS_TOKEN` | the workspace and a token (PAT) |
| `MEDALLION_DATABRICKS_CLUSTER_ID` | an existing cluster to run on, or job compute: |
| `MEDALLION_DATABRICKS_NODE_TYPE` … | a new cluster per step: node type, workers, access mode (`compute.py`), or |
| `MEDALLION_DATABRICKS_NEW_CLUSTER` | a new cluster as JSON, in dagster-databricks' `new` shape |
| `MEDALLION_DATABRICKS_VOLUME` | the Unity Catalog volume for staging, `/Volumes/<catalog>/<schema>/<volume>` |
| `MEDALLION_DATABRICKS_STAGING` | `volume` (default; new accounts have no DBFS root) or `dbfs` (classic workspaces) |
| `MEDALLION_DATABRICKS_STAGING_PREFIX` | staging folder (default `<volume>/dagster_staging`, DBFS `/dagster_staging`) |
| `MEDALLION_DATABRICKS_POLL_SECONDS` | how often the run is polled (default 5) |
| `MEDALLION_DATABRICKS_MAX_WAIT_SECONDS` | the longest a step may run (default 6 h) |
"""

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from medallion_platform.defs.compute import new_cluster_from_env
from medallion_platform.settings import ConfigError, Settings

__all__ = [
    "CLUSTER_LIBRARIES",
    "DatabricksSettings",
    "StepLauncherParam",
    "build_step_launcher",
    "cluster_environment",
    "cluster_libraries",
    "medallion_step_launcher",
    "step_launcher_config",
    "validated_launcher_config",
]

CLUSTER_LIBRARIES = (
    "dagster",
    "dagster-databricks",
    "dagster-pyspark",
    "dagster-pipes",
    "databricks-sdk",
    "deltalake",
    "duckdb",
    "sqlframe",
    "pyarrow",
    "pydantic",
    "pyyaml",
)
"""What a step needs on the cluster, pinned to the versions installed here: the step's pickled
context only unpickles with the same dagster, and the transforms expect the same libraries."""

NOT_FORWARDED = ("MEDALLION_AWS_ENDPOINT_URL",)
"""Variables of the orchestrator's that a cluster never gets: the emulator's endpoint (storage is the cluster's)."""

ON_CLUSTER = "MEDALLION_ON_CLUSTER"
"""Set on the cluster: there the steps run in place (no launcher)."""


class DatabricksSettings(BaseModel):
    """Where and how steps run on Databricks."""

    model_config = ConfigDict(frozen=True)

    host: str
    token: str
    cluster_id: str | None = None
    new_cluster: dict[str, Any] | None = None
    staging: Literal["volume", "dbfs"] = "volume"
    volume: str | None = Field(default=None, pattern=r"^/Volumes/[^/]+/[^/]+/[^/]+$")
    staging_prefix: str | None = None
    poll_seconds: float = Field(default=5.0, gt=0)
    max_wait_seconds: int = Field(default=6 * 3600, gt=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "DatabricksSettings":
        env = dict(os.environ if environ is None else environ)
        missing = [v for v in ("DATABRICKS_HOST", "DATABRICKS_TOKEN") if not env.get(v)]
        if missing:
            raise ConfigError(
                f"MEDALLION_ENV=databricks needs {' and '.join(missing)}: the workspace URL and a token "
                "(`medallion local-databricks up` prints them for the local stand-in)"
            )
        cluster_id = env.get("MEDALLION_DATABRICKS_CLUSTER_ID") or None
        new_cluster = new_cluster_from_env(env)
        if (cluster_id is None) == (new_cluster is None):
            raise ConfigError(
                "MEDALLION_ENV=databricks needs exactly one of MEDALLION_DATABRICKS_CLUSTER_ID (an existing "
                "cluster) and job compute: MEDALLION_DATABRICKS_NODE_TYPE (with _WORKERS, _ACCESS_MODE, _POLICY_ID, "
                "see defs/compute.py) or MEDALLION_DATABRICKS_NEW_CLUSTER (a new-cluster spec as JSON)"
            )
        values: dict[str, Any] = {
            "host": env["DATABRICKS_HOST"],
            "token": env["DATABRICKS_TOKEN"],
            "cluster_id": cluster_id,
            "new_cluster": new_cluster,
        }
        for field, var in (
            ("staging", "MEDALLION_DATABRICKS_STAGING"),
            ("volume", "MEDALLION_DATABRICKS_VOLUME"),
            ("staging_prefix", "MEDALLION_DATABRICKS_STAGING_PREFIX"),
            ("poll_seconds", "MEDALLION_DATABRICKS_POLL_SECONDS"),
            ("max_wait_seconds", "MEDALLION_DATABRICKS_MAX_WAIT_SECONDS"),
        ):
            if env.get(var):
                values[field] = env[var]
        try:
            settings = cls.model_validate(values)
        except ValueError as exc:
            raise ConfigError(f"invalid Databricks configuration: {exc}") from None
        if settings.staging == "volume" and settings.volume is None:
            raise ConfigError(
                "MEDALLION_ENV=databricks stages code in a Unity Catalog volume: set MEDALLION_DATABRICKS_VOLUME "
                "to /Volumes/<catalog>/<schema>/<volume> (the Pulumi stack output `staging_volume`; "
                "`medallion local-databricks up` prints it), or MEDALLION_DATABRICKS_STAGING=dbfs on a classic "
                "workspace that has DBFS root"
            )
        return settings

    @property
    def staging_folder(self) -> str:
        """Where the step launcher stages: the configured prefix, else `dagster_staging` in the volume (or DBFS)."""
        if self.staging_prefix:
            return self.staging_prefix
        return f"{self.volume}/dagster_staging" if self.staging == "volume" else "/dagster_staging"


def cluster_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a step needs on the cluster: the lake's settings and the `databricks` engine. Never a credential
    and never an emulator endpoint: no Databricks token (code on the cluster authenticates as the cluster's own
    principal, the runtime's native authentication; the local stand-in gives each cluster a token of its own), no
    AWS keys and no `MEDALLION_AWS_ENDPOINT_URL` (storage is the cluster's side: on an account its Unity Catalog
    storage credential or instance profile, on the stand-in the cluster's own environment)."""
    env = dict(os.environ if environ is None else environ)
    out = {
        k: v
        for k, v in env.items()
        if k.startswith("MEDALLION_") and not k.startswith(("MEDALLION_DATABRICKS_", *NOT_FORWARDED))
    }
    out |= {
        "MEDALLION_ENV": "databricks",
        "MEDALLION_ENGINE": "databricks",
        "MEDALLION_DATA_DIR": str(settings.data_dir),
        ON_CLUSTER: "1",
    }
    if env.get("MEDALLION_DATABRICKS_WAREHOUSE_ID"):  # Unity Catalog registration from the cluster
        out["MEDALLION_DATABRICKS_WAREHOUSE_ID"] = env["MEDALLION_DATABRICKS_WAREHOUSE_ID"]
    return out


def cluster_libraries() -> list[dict[str, Any]]:
    """`CLUSTER_LIBRARIES` as a task's `libraries`, each pinned to the version installed here."""
    return [{"pypi": {"package": f"{name}=={version(name)}"}} for name in CLUSTER_LIBRARIES]


def _package_dir() -> str:
    """A folder holding only the `medallion_platform` package, for the step launcher to zip (it zips
    a whole folder, and the project folder holds the virtual environment and the lake)."""
    import medallion_platform

    source = Path(medallion_platform.__file__).parent
    target = Path(tempfile.mkdtemp(prefix="medallion-step-package-"))
    shutil.copytree(source, target / "medallion_platform", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return str(target)


def step_launcher_config(settings: Settings, databricks: DatabricksSettings, package_dir: str) -> dict[str, Any]:
    """The `DatabricksPySparkStepLauncher` configuration for this deployment."""
    cluster: dict[str, Any] = (
        {"existing": databricks.cluster_id} if databricks.cluster_id else {"new": databricks.new_cluster}
    )
    libraries = cluster_libraries()
    return {
        "run_config": {
            "run_name": "medallion",
            "cluster": cluster,
            "libraries": libraries,
            "install_default_libraries": False,  # pinned above, to this deployment's versions
        },
        "permissions": {},
        "databricks_host": databricks.host,
        "databricks_token": databricks.token,
        "secrets_to_env_variables": [],
        "env_variables": cluster_environment(settings),
        "staging_prefix": databricks.staging_folder,
        "wait_for_logs": False,
        "max_completion_wait_time_seconds": databricks.max_wait_seconds,
        "poll_interval_sec": databricks.poll_seconds,
        "local_pipeline_package_path": package_dir,
        "verbose_logs": True,
        "add_dagster_env_variables": False,
    }


StepLauncherParam = dg.ResourceParam[dg.StepLauncher | None]
"""How an asset asks for the `step_launcher` resource: Databricks' step launcher in the databricks environment,
else None (the step runs in place)."""


@dg.resource(description="Runs each step on a Databricks cluster when MEDALLION_ENV=databricks (else: in place).")
def medallion_step_launcher(context: dg.InitResourceContext) -> Iterator[dg.StepLauncher | None]:
    """dagster-databricks' step launcher in the `databricks` environment off the cluster; None elsewhere
    (a resource that is not a step launcher leaves steps running in the run's own process)."""
    settings = Settings.from_env()
    if settings.env != "databricks" or os.environ.get(ON_CLUSTER):
        yield None
        return
    databricks = DatabricksSettings.from_env()
    package = _package_dir()
    try:
        yield build_step_launcher(databricks, step_launcher_config(settings, databricks, package))
    finally:
        shutil.rmtree(package, ignore_errors=True)


def validated_launcher_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` checked against dagster-databricks' own step launcher schema (the one its resource applies),
    defaults filled in; a refusal names every field it rejects."""
    from dagster._config import process_config
    from dagster_databricks import databricks_pyspark_step_launcher

    schema = databricks_pyspark_step_launcher.config_schema
    assert schema is not None  # the resource always declares its schema
    result = process_config(schema.config_type, dict(config))
    if not result.success:
        problems = "; ".join(str(e.message) for e in result.errors or [])
        raise ConfigError(f"the Databricks step launcher's configuration is invalid: {problems}")
    return dict(result.value or {})


def build_step_launcher(databricks: DatabricksSettings, config: Mapping[str, Any]) -> dg.StepLauncher:
    """The step launcher for `config` (validated first): staging in the volume, or in DBFS on a classic workspace."""
    from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

    from medallion_platform.defs.staging import VolumeStepLauncher

    values = validated_launcher_config(config)
    if databricks.staging == "dbfs":
        return DatabricksPySparkStepLauncher(**values)
    return VolumeStepLauncher(**values)
