"""Refined tables run as Databricks notebooks through Dagster Pipes.

`medallion_platform/notebooks/` holds Databricks source-format notebooks. `refined_table.py` builds a
refined table with the same module code as the assets, on the cluster's `spark` (the `databricks`
engine). A notebook asset (`refined/<table>_notebook`) imports the notebook into the workspace, ships
the `medallion_platform` package to the staging Unity Catalog volume as a zip, and runs the notebook as a
one-time `notebook_task` through `dagster_databricks.PipesDatabricksClient`, with Pipes' context and messages
in the volume (`PipesUnityCatalogVolumesContextInjector`/`MessageReader`; DBFS on a classic workspace,
`MEDALLION_DATABRICKS_STAGING=dbfs`); the notebook reports its write (rows, Delta version) back through
Pipes. It writes its own table (`refined/<table>_notebook`), so the notebook and the step-launched asset can be
compared row for row.
"""

import base64
import dataclasses
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from medallion_platform.catalog import TableEntry
from medallion_platform.defs.compute import jobs_api_cluster, notebook_cluster
from medallion_platform.defs.launcher import DatabricksSettings, cluster_environment, cluster_libraries
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.settings import Settings
from medallion_platform.zones.refined import REFINED_TABLES, RefinedTable
from medallion_platform.zones.refined.base import RefreshResult

__all__ = ["NOTEBOOKS", "RUNS_ON", "SKIPPED", "DatabricksNotebooks", "build_notebook_asset", "refresh_on_cluster"]

RUNS_ON = "medallion/runs_on"
"""Tag of assets that run only in the databricks environment (a notebook task)."""
SKIPPED = "medallion/skipped"
"""Metadata of a notebook asset's materialization outside databricks: why nothing was built."""
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WORKSPACE_FOLDER = "/Shared/medallion"
CODE_FOLDER = "/medallion/code"


def refresh_on_cluster(
    spark: Any,
    *,
    table: str,
    target: str | None,
    dates: Sequence[str] | None,
    environment: Mapping[str, str] | None,
) -> RefreshResult:
    """What the notebook runs: refined `table` built on `spark` and written as `target` (default `table`)."""
    from medallion_platform.engine.databricks import DatabricksEngine
    from medallion_platform.write.writers import table_columns
    from medallion_platform.zones.refined.base import refresh_refined

    os.environ.update(environment or {})
    tables = {t.name: t for t in REFINED_TABLES}
    if table not in tables:
        raise ValueError(f"unknown refined table {table!r}: one of {sorted(tables)}")
    definition = dataclasses.replace(tables[table], name=target or table)
    if not dates:  # a dated table built for every date: one whole-table rewrite
        definition = dataclasses.replace(definition, partitioned=False)
    lakehouse = LakehouseResource()  # the notebook's own resource, resolved from the environment set above
    lake, engine = lakehouse.lake(), DatabricksEngine(spark)
    result = refresh_refined(lake, engine, definition, dates if definition.partitioned else None)
    # registered again with the notebook's description; its columns as Spark reads them (the driver reaches no
    # storage on a Unity Catalog cluster: no delta-rs here)
    entry = TableEntry(description=f"{definition.description} (built by a notebook)", owner=definition.owner)
    columns = table_columns(engine, lake.refined(definition.name))
    lakehouse.catalog().register("refined", definition.name, schema=definition.schema, entry=entry, columns=columns)
    return result


class DatabricksNotebooks(dg.ConfigurableResource):
    """Runs Medallion notebooks on Databricks through Pipes (workspace and cluster from `MEDALLION_DATABRICKS_*`)."""

    poll_interval_seconds: float = 5.0
    message_interval_seconds: float = 10.0
    compute: str | None = None
    """`cluster`: the steps' compute (the existing cluster, or a job cluster); `serverless`: serverless compute
    through `PipesDatabricksServerlessClient` (needs the staging volume); default from
    `MEDALLION_DATABRICKS_NOTEBOOK_COMPUTE`, else `cluster`."""

    def run(
        self, context: dg.AssetExecutionContext, notebook: str, widgets: Mapping[str, str], settings: Settings
    ) -> dg.MaterializeResult:
        from dagster_databricks import (
            PipesDatabricksClient,
            PipesDbfsContextInjector,
            PipesDbfsMessageReader,
        )
        from dagster_databricks.pipes import (
            PipesDatabricksServerlessClient,
            PipesUnityCatalogVolumesContextInjector,
            PipesUnityCatalogVolumesMessageReader,
        )
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.service import jobs
        from databricks.sdk.service.workspace import ImportFormat, Language

        if settings.env != "databricks":
            raise dg.Failure(
                f"{notebook} runs as a Databricks notebook: set MEDALLION_ENV=databricks "
                "(for the local stand-in: medallion local-databricks up, then source its exports)"
            )
        databricks = DatabricksSettings.from_env()
        client = WorkspaceClient(host=databricks.host, token=databricks.token, auth_type="pat")
        path = f"{WORKSPACE_FOLDER}/{notebook}"
        client.workspace.mkdirs(WORKSPACE_FOLDER)
        client.workspace.import_(
            path,
            content=base64.b64encode((NOTEBOOKS / f"{notebook}.py").read_bytes()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
        task: dict[str, Any] = {
            "task_key": notebook,
            "notebook_task": {
                "notebook_path": path,
                "base_parameters": {
                    **widgets,
                    "medallion_code": _upload_code(client, databricks),
                    "pipes_channel": databricks.staging,
                },
            },
        }
        compute = self.compute or os.environ.get("MEDALLION_DATABRICKS_NOTEBOOK_COMPUTE") or "cluster"
        if compute not in ("cluster", "serverless"):
            raise dg.Failure(
                f"notebook compute {compute!r}: cluster or serverless (MEDALLION_DATABRICKS_NOTEBOOK_COMPUTE)"
            )
        extras = {"environment": cluster_environment(settings)}
        if compute == "serverless":  # no cluster, no cluster libraries: the notebook's environment
            if databricks.volume is None:
                raise dg.Failure("serverless notebooks need the staging volume: set MEDALLION_DATABRICKS_VOLUME")
            serverless = PipesDatabricksServerlessClient(
                client=client,
                volume_path=databricks.volume,
                message_reader=PipesUnityCatalogVolumesMessageReader(
                    client=client, volume_path=databricks.volume, interval=self.message_interval_seconds
                ),
                poll_interval_seconds=self.poll_interval_seconds,
            )
            return serverless.run(
                context=context, task=jobs.SubmitTask.from_dict(task), extras=extras
            ).get_materialize_result()
        task["libraries"] = cluster_libraries()
        if databricks.cluster_id:
            task["existing_cluster_id"] = databricks.cluster_id
        else:  # the Jobs API's shape (the SDK drops dagster-databricks' `nodes` and `size`), standard access mode
            task["new_cluster"] = jobs_api_cluster(notebook_cluster(databricks.new_cluster or {}, os.environ))
        if databricks.volume is not None and databricks.staging == "volume":
            injector: Any = PipesUnityCatalogVolumesContextInjector(client=client, volume_path=databricks.volume)
            reader: Any = PipesUnityCatalogVolumesMessageReader(
                client=client, volume_path=databricks.volume, interval=self.message_interval_seconds
            )
        else:  # a classic workspace with DBFS root
            injector = PipesDbfsContextInjector(client=client)
            reader = PipesDbfsMessageReader(client=client, interval=self.message_interval_seconds)
        pipes = PipesDatabricksClient(
            client=client,
            poll_interval_seconds=self.poll_interval_seconds,
            context_injector=injector,
            message_reader=reader,
        )
        return pipes.run(
            context=context,
            task=jobs.SubmitTask.from_dict(task),
            extras=extras,
        ).get_materialize_result()


def _upload_code(client: Any, databricks: DatabricksSettings) -> str:
    """Zips `medallion_platform` to the staging volume (DBFS on a classic workspace), one file per content, and
    returns the path the notebook imports it from (`/Volumes/…`, or `/dbfs/…`)."""
    import zipfile

    import medallion_platform

    source = Path(medallion_platform.__file__).resolve().parent
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                name = f"{source.name}/{path.relative_to(source).as_posix()}"
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), path.read_bytes())
    data = out.getvalue()
    name = f"medallion_platform-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if databricks.volume is not None and databricks.staging == "volume":
        # imported here: `staging` imports dagster-databricks, which imports pyspark (never at definitions load)
        from medallion_platform.defs.staging import upload_to_volume

        target = f"{databricks.volume}{CODE_FOLDER}/{name}"
        upload_to_volume(client, target, data)
        return target
    target = f"{CODE_FOLDER}/{name}"
    client.dbfs.upload(target, io.BytesIO(data), overwrite=True)
    return f"/dbfs{target}"


def build_notebook_asset(table: RefinedTable) -> dg.AssetsDefinition:
    """`refined/<table>_notebook`: `table` built by the `refined_table` notebook on Databricks, through Pipes."""
    target = f"{table.name}_notebook"

    @dg.asset(
        key=["refined", target],
        group_name="refined",
        tags={RUNS_ON: "databricks"},
        description=f"{table.description} Built by the Databricks notebook `notebooks/refined_table.py` "
        f"(the same module code as refined/{table.name}), run as a notebook task through Dagster Pipes.",
        owners=[table.owner],
        kinds={"delta", "databricks", "pyspark"},
        deps=[dg.AssetKey(["trusted", name]) for name in table.inputs],
    )
    def notebook_asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, notebooks: DatabricksNotebooks
    ) -> dg.MaterializeResult:
        settings = lakehouse.settings()
        if settings.env != "databricks":  # "Materialize all" elsewhere: done, with nothing written
            reason = f"runs only as a Databricks notebook (MEDALLION_ENV=databricks; here {settings.env}): not built"
            context.log.warning(f"refined/{target} {reason}")
            return dg.MaterializeResult(metadata={SKIPPED: reason})
        widgets = {"table": table.name, "target": target, "dates": ""}
        return notebooks.run(context, "refined_table", widgets, settings)

    return notebook_asset
