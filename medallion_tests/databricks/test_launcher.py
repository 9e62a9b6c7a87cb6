"""The step launcher's configuration: from the environment at run time, with errors that say what to set."""

import importlib.metadata

import pytest

from medallion_platform.defs.launcher import (
    CLUSTER_LIBRARIES,
    DatabricksSettings,
    build_step_launcher,
    cluster_environment,
    step_launcher_config,
)
from medallion_platform.settings import ConfigError, Settings

BASE = {
    "DATABRICKS_HOST": "https://dbc.example",
    "DATABRICKS_TOKEN": "dapi-x",
    "MEDALLION_DATABRICKS_CLUSTER_ID": "c1",
    "MEDALLION_DATABRICKS_VOLUME": "/Volumes/medallion/platform/staging",
}


def test_missing_workspace_names_the_variables():
    with pytest.raises(ConfigError, match="DATABRICKS_HOST and DATABRICKS_TOKEN"):
        DatabricksSettings.from_env({})


def test_exactly_one_cluster_is_required():
    both = {**BASE, "MEDALLION_DATABRICKS_NEW_CLUSTER": '{"spark_version": "15.4.x-scala2.12"}'}
    with pytest.raises(ConfigError, match="exactly one of"):
        DatabricksSettings.from_env(both)
    with pytest.raises(ConfigError, match="not JSON"):
        DatabricksSettings.from_env(
            {**BASE, "MEDALLION_DATABRICKS_CLUSTER_ID": "", "MEDALLION_DATABRICKS_NEW_CLUSTER": "{"}
        )
    with pytest.raises(ConfigError, match="poll_seconds"):
        DatabricksSettings.from_env({**BASE, "MEDALLION_DATABRICKS_POLL_SECONDS": "0"})


def test_config_pins_libraries_to_this_deployment_and_forwards_the_lake(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path, env="databricks")
    config = step_launcher_config(settings, DatabricksSettings.from_env(BASE), str(tmp_path))
    run = config["run_config"]
    assert run["cluster"] == {"existing": "c1"} and run["install_default_libraries"] is False
    pins = {lib["pypi"]["package"] for lib in run["libraries"]}
    assert pins == {f"{n}=={importlib.metadata.version(n)}" for n in CLUSTER_LIBRARIES}
    assert "dagster==1.13.27" in pins
    env = config["env_variables"]
    assert env["MEDALLION_ENGINE"] == "databricks" and env["MEDALLION_DATA_DIR"] == str(tmp_path)
    assert config["secrets_to_env_variables"] == [] and config["databricks_host"] == "https://dbc.example"


def test_no_aws_keys_and_no_emulator_endpoint_travel_to_the_cluster(tmp_path):
    environ = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "MEDALLION_RAW_BUCKET": "r",
        "MEDALLION_AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    local = Settings.from_env({}, data_dir=tmp_path, env="databricks")
    emulated = local.model_copy(update={"aws_endpoint_url": "http://127.0.0.1:5000"})
    for settings in (local, emulated):  # storage is the cluster's side: its credential, its endpoint
        env = cluster_environment(settings, environ)
        assert not [k for k in env if k.startswith("AWS_") or k == "MEDALLION_AWS_ENDPOINT_URL"], env
        assert env["MEDALLION_RAW_BUCKET"] == "r"


def test_staging_needs_a_volume_unless_dbfs_is_chosen_for_a_classic_workspace():
    no_volume = {k: v for k, v in BASE.items() if k != "MEDALLION_DATABRICKS_VOLUME"}
    with pytest.raises(ConfigError, match="MEDALLION_DATABRICKS_VOLUME"):
        DatabricksSettings.from_env(no_volume)
    with pytest.raises(ConfigError, match="volume"):
        DatabricksSettings.from_env({**BASE, "MEDALLION_DATABRICKS_VOLUME": "/dbfs/staging"})
    assert DatabricksSettings.from_env(BASE).staging_folder == "/Volumes/medallion/platform/staging/dagster_staging"
    classic = DatabricksSettings.from_env({**no_volume, "MEDALLION_DATABRICKS_STAGING": "dbfs"})
    assert classic.staging_folder == "/dagster_staging"


def test_the_step_launcher_stages_in_the_volume_and_its_task_names_volume_paths(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path, env="databricks")
    databricks = DatabricksSettings.from_env(BASE)
    launcher = build_step_launcher(databricks, step_launcher_config(settings, databricks, str(tmp_path)))
    task = launcher._get_databricks_task("run1", "step[0]")["spark_python_task"]  # type: ignore[attr-defined]
    prefix = "/Volumes/medallion/platform/staging/dagster_staging/run1/step__0__/"
    assert task["python_file"] == prefix + "databricks_step_main.py"
    assert task["parameters"] == [prefix + n for n in ("step_run_ref.pkl", "config.pkl", "code.zip")]


def test_the_cluster_spec_goes_through_dagster_databricks_own_schema(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path, env="databricks")
    spec = {**BASE, "MEDALLION_DATABRICKS_CLUSTER_ID": "", "MEDALLION_DATABRICKS_NEW_CLUSTER": '{"spark_version": "x"}'}
    databricks = DatabricksSettings.from_env(spec)
    with pytest.raises(ConfigError, match=r"nodes.*size|size.*nodes"):
        build_step_launcher(databricks, step_launcher_config(settings, databricks, str(tmp_path)))


def test_no_databricks_token_travels_to_the_cluster(tmp_path):
    environ = {**BASE, "DATABRICKS_HOST": "http://127.0.0.1:1", "DATABRICKS_AUTH_TYPE": "pat"}
    settings = Settings.from_env({}, data_dir=tmp_path, env="databricks")
    assert not [k for k in cluster_environment(settings, environ) if k.startswith("DATABRICKS_")]
