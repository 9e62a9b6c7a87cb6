"""`PipesDatabricksClient` with the real databricks-sdk `WorkspaceClient` against the stand-in: a Python
script on DBFS and a SOURCE notebook in the workspace report materializations through Pipes over `/dbfs`.

These start the driver's Spark (one JVM each): `PipesDbfsMessageWriter` requires the cluster's session.
"""

import base64
import textwrap

import dagster as dg
import pytest
from dagster_databricks import PipesDatabricksClient, PipesDbfsMessageReader
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language
from medallion_devtools.standins.databricks import LocalDatabricks

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(300)]

SCRIPT = """
from dagster_pipes import PipesCliArgsParamsLoader, PipesDbfsContextLoader, PipesDbfsMessageWriter, open_dagster_pipes

with open_dagster_pipes(
    context_loader=PipesDbfsContextLoader(),
    message_writer=PipesDbfsMessageWriter(),
    params_loader=PipesCliArgsParamsLoader(),
) as pipes:
    rows = spark.range(5).count()  # the cluster's session, which the message writer already found active
    cluster = spark.conf.get("spark.databricks.clusterUsageTags.clusterId")
    pipes.log.info(f"counted {rows} rows")
    pipes.report_asset_materialization(metadata={"rows": rows, "cluster": cluster, "extra": pipes.get_extra("zone")})
"""

NOTEBOOK = """# Databricks notebook source
from dagster_pipes import PipesDbfsContextLoader, PipesDbfsMessageWriter, PipesMappingParamsLoader, open_dagster_pipes

# COMMAND ----------

dbutils.widgets.text("greeting", "unset")
with open_dagster_pipes(
    context_loader=PipesDbfsContextLoader(),
    message_writer=PipesDbfsMessageWriter(),
    params_loader=PipesMappingParamsLoader(dbutils.widgets.getAll()),
) as pipes:
    pipes.report_asset_materialization(metadata={"greeting": dbutils.widgets.get("greeting")})
"""


def _client(workspace: WorkspaceClient) -> PipesDatabricksClient:
    """Pipes polling every 0.2 s and reading messages every 0.5 s (the defaults, 5 s and 10 s, are slow)."""
    return PipesDatabricksClient(
        client=workspace,
        poll_interval_seconds=0.2,
        message_reader=PipesDbfsMessageReader(client=workspace, interval=0.5),
    )


def _materialize(task: jobs.SubmitTask, workspace: WorkspaceClient) -> dict[str, object]:
    """Materializes one asset whose body is the Databricks task; returns its materialization's metadata."""

    @dg.asset
    def pipes_asset(context: dg.AssetExecutionContext, pipes: PipesDatabricksClient) -> dg.MaterializeResult:
        return pipes.run(context=context, task=task, extras={"zone": "trusted"}).get_materialize_result()

    result = dg.materialize([pipes_asset], resources={"pipes": _client(workspace)})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("pipes_asset")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_pipes_runs_a_python_script_from_dbfs(local_databricks: LocalDatabricks, workspace: WorkspaceClient):
    workspace.dbfs.put("/pipes/script.py", contents=base64.b64encode(SCRIPT.encode()).decode(), overwrite=True)
    mark = len(local_databricks.requests)
    task = jobs.SubmitTask.from_dict(
        {
            "task_key": "pipes-script",
            "existing_cluster_id": local_databricks.cluster_id,
            "spark_python_task": {"python_file": "dbfs:/pipes/script.py"},
            "libraries": [{"pypi": {"package": "dagster-pipes"}}],
        }
    )

    metadata = _materialize(task, workspace)

    assert metadata["rows"] == 5 and metadata["cluster"] == local_databricks.cluster_id
    assert metadata["extra"] == "trusted"
    assert str(metadata["Databricks Job Run URL"]).startswith(local_databricks.host)
    wire = local_databricks.requests[mark:]
    (submit,) = [r for r in wire if r.path == "/api/2.2/jobs/runs/submit"]
    assert submit.body is not None
    parameters = submit.body["tasks"][0]["spark_python_task"]["parameters"]
    assert parameters[0::2] == ["--dagster-pipes-context", "--dagster-pipes-messages"]
    deleted = [r.body["path"] for r in wire if r.path == "/api/2.0/dbfs/delete" and r.body]
    assert len(deleted) == 2 and not any((local_databricks.dbfs_root / d.lstrip("/")).exists() for d in deleted)


def test_pipes_runs_a_source_notebook_with_base_parameters(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient
):
    workspace.workspace.mkdirs("/Shared/medallion")
    workspace.workspace.import_(
        "/Shared/medallion/pipes_notebook",
        content=base64.b64encode(textwrap.dedent(NOTEBOOK).encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    assert workspace.workspace.get_status("/Shared/medallion/pipes_notebook").object_type is not None
    task = jobs.SubmitTask.from_dict(
        {
            "task_key": "pipes-notebook",
            "existing_cluster_id": local_databricks.cluster_id,
            "notebook_task": {
                "notebook_path": "/Shared/medallion/pipes_notebook",
                "base_parameters": {"greeting": "hi"},
            },
        }
    )

    metadata = _materialize(task, workspace)

    assert metadata["greeting"] == "hi"
