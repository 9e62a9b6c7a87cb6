"""Pipes on a new account (the strict stand-in: no DBFS root): dagster-databricks' Unity Catalog Volumes channel on
a job cluster, and `PipesDatabricksServerlessClient` on serverless compute, with the platform's cluster spec."""

import base64
import io
import textwrap

import dagster as dg
import pytest
from dagster_databricks import PipesDatabricksClient
from dagster_databricks.pipes import (
    PipesDatabricksServerlessClient,
    PipesUnityCatalogVolumesContextInjector,
    PipesUnityCatalogVolumesMessageReader,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service import jobs
from databricks.sdk.service.compute import DataSecurityMode, State
from databricks.sdk.service.workspace import ImportFormat, Language
from medallion_devtools.standins.databricks import LocalDatabricks

from medallion_platform.defs.compute import jobs_api_cluster, new_cluster_from_env, notebook_cluster
from medallion_platform.settings import ConfigError

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(300)]

SCRIPT = """
from dagster_pipes import PipesUnityCatalogVolumesContextLoader as Loader
from dagster_pipes import PipesUnityCatalogVolumesMessageWriter as Writer
from dagster_pipes import open_dagster_pipes

# on a job cluster, dagster-databricks passes Pipes' parameters as the cluster's environment (the default loader)
with open_dagster_pipes(
    context_loader=Loader(),
    message_writer=Writer(),
) as pipes:
    pipes.report_asset_materialization(metadata={"zone": pipes.get_extra("zone")})
"""

NOTEBOOK = """# Databricks notebook source
from dagster_pipes import (
    PipesDatabricksNotebookWidgetsParamsLoader, PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter, open_dagster_pipes,
)

# COMMAND ----------

with open_dagster_pipes(
    context_loader=PipesUnityCatalogVolumesContextLoader(),
    message_writer=PipesUnityCatalogVolumesMessageWriter(),
    params_loader=PipesDatabricksNotebookWidgetsParamsLoader(dbutils.widgets),
) as pipes:
    pipes.report_asset_materialization(metadata={"greeting": dbutils.widgets.get("greeting")})
"""

JOB_COMPUTE = {"MEDALLION_DATABRICKS_NODE_TYPE": "m6gd.large", "MEDALLION_DATABRICKS_WORKERS": "1-2"}


@pytest.fixture
def strict(strict_databricks: LocalDatabricks) -> WorkspaceClient:
    return WorkspaceClient(host=strict_databricks.host, token=strict_databricks.token, auth_type="pat")


def _materialize(client: PipesDatabricksClient, task: jobs.SubmitTask) -> dict[str, object]:
    @dg.asset
    def pipes_asset(context: dg.AssetExecutionContext, pipes: PipesDatabricksClient) -> dg.MaterializeResult:
        return pipes.run(context=context, task=task, extras={"zone": "trusted"}).get_materialize_result()

    result = dg.materialize([pipes_asset], resources={"pipes": client})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("pipes_asset")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_a_script_on_a_job_cluster_talks_pipes_through_the_volume(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks
):
    volume = strict_databricks.volume_paths[0]
    strict.files.upload(f"{volume}/pipes/script.py", io.BytesIO(SCRIPT.encode()), overwrite=True)
    new_cluster = jobs_api_cluster(new_cluster_from_env(JOB_COMPUTE) or {})
    task = jobs.SubmitTask.from_dict(
        {
            "task_key": "volume-script",
            "new_cluster": new_cluster,
            "spark_python_task": {"python_file": f"{volume}/pipes/script.py"},
        }
    )
    client = PipesDatabricksClient(
        client=strict,
        poll_interval_seconds=0.2,
        context_injector=PipesUnityCatalogVolumesContextInjector(client=strict, volume_path=volume),
        message_reader=PipesUnityCatalogVolumesMessageReader(client=strict, volume_path=volume, interval=0.5),
    )
    mark = len(strict_databricks.requests)

    assert _materialize(client, task)["zone"] == "trusted"

    (submit,) = [r for r in strict_databricks.requests[mark:] if r.path == "/api/2.2/jobs/runs/submit"]
    sent = submit.body["tasks"][0]["new_cluster"]  # type: ignore[index]
    assert sent["node_type_id"] == "m6gd.large" and sent["autoscale"] == {"min_workers": 1, "max_workers": 2}
    assert sent["data_security_mode"] == "SINGLE_USER"


def test_a_notebook_runs_on_serverless_through_the_serverless_client(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks
):
    strict.workspace.mkdirs("/Shared/medallion")
    strict.workspace.import_(
        "/Shared/medallion/serverless_notebook",
        content=base64.b64encode(textwrap.dedent(NOTEBOOK).encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    task = jobs.SubmitTask.from_dict(
        {
            "task_key": "serverless-notebook",
            "notebook_task": {
                "notebook_path": "/Shared/medallion/serverless_notebook",
                "base_parameters": {"greeting": "hi"},
            },
        }
    )
    volume = strict_databricks.volume_paths[0]
    client = PipesDatabricksServerlessClient(
        client=strict,
        volume_path=volume,
        poll_interval_seconds=0.2,
        message_reader=PipesUnityCatalogVolumesMessageReader(client=strict, volume_path=volume, interval=0.5),
    )
    mark = len(strict_databricks.requests)

    assert _materialize(client, task)["greeting"] == "hi"

    (submit,) = [r for r in strict_databricks.requests[mark:] if r.path == "/api/2.2/jobs/runs/submit"]
    assert not {"new_cluster", "existing_cluster_id"} & set(submit.body["tasks"][0])  # type: ignore[index]


@pytest.mark.parametrize(
    ("broken", "refusal"),
    [
        ({"node_type_id": None}, "new_cluster.node_type_id"),
        ({"autoscale": None}, "new_cluster.size"),
        ({"data_security_mode": None}, "legacy access mode"),
        ({"data_security_mode": "NONE"}, "legacy access mode"),
    ],
)
def test_a_job_cluster_without_node_type_size_or_access_mode_is_refused(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks, broken: dict[str, None], refusal: str
):
    spec = {**jobs_api_cluster(new_cluster_from_env(JOB_COMPUTE) or {}), **broken}
    spec = {k: v for k, v in spec.items() if v is not None}
    task = {"task_key": "t", "new_cluster": spec, "spark_python_task": {"python_file": "/Volumes/x/y/z/a.py"}}
    with pytest.raises(DatabricksError, match=refusal) as caught:
        strict.api_client.do("POST", "/api/2.2/jobs/runs/submit", body={"run_name": "r", "tasks": [task]})
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_job_cluster_is_pending_until_it_has_started(tmp_path):
    with LocalDatabricks(root=tmp_path, volumes=("medallion.platform.staging",), cluster_start_seconds=600) as dbx:
        w = WorkspaceClient(host=dbx.host, token=dbx.token, auth_type="pat")
        w.files.upload("/Volumes/medallion/platform/staging/noop.py", io.BytesIO(b"print('up')\n"))
        task = jobs.SubmitTask.from_dict(
            {
                "task_key": "noop",
                "new_cluster": jobs_api_cluster(new_cluster_from_env(JOB_COMPUTE) or {}),
                "spark_python_task": {"python_file": "/Volumes/medallion/platform/staging/noop.py"},
            }
        )
        run = w.jobs.get_run(w.jobs.submit(run_name="pending", tasks=[task]).bind()["run_id"])
        assert run.state is not None and run.state.life_cycle_state == jobs.RunLifeCycleState.PENDING
        cluster_id = run.tasks[0].cluster_instance.cluster_id  # type: ignore[index,union-attr]
        cluster = w.clusters.get(cluster_id)
        assert cluster.state == State.PENDING and cluster.node_type_id == "m6gd.large"
        assert cluster.data_security_mode == DataSecurityMode.SINGLE_USER
        w.jobs.cancel_run(run.run_id).result()  # type: ignore[arg-type]


def test_a_notebooks_job_cluster_is_the_steps_cluster_in_standard_access_mode_unless_configured():
    steps = {**(new_cluster_from_env(JOB_COMPUTE) or {}), "single_user_name": "platform@example.com"}
    assert steps["data_security_mode"] == "SINGLE_USER"  # the step launcher's remote entry point reads `sc`

    notebook = notebook_cluster(steps, {})
    assert notebook["data_security_mode"] == "USER_ISOLATION" and "single_user_name" not in notebook
    assert {k: v for k, v in notebook.items() if k != "data_security_mode"} == {
        k: v for k, v in steps.items() if k not in ("data_security_mode", "single_user_name")
    }
    dedicated = notebook_cluster(steps, {"MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE": "dedicated"})
    assert dedicated == steps
    with pytest.raises(ConfigError, match="MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE=shared: one of dedicated"):
        notebook_cluster(steps, {"MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE": "shared"})
