# Databricks notebook source
# MAGIC %md
# MAGIC # A refined table, built on the cluster
# MAGIC
# MAGIC Builds one of Medallion's refined tables with the same module code the Dagster assets use
# MAGIC (`medallion_platform/zones/refined/`), on this cluster's `spark`, and reports the write back to
# MAGIC Dagster through Pipes. Dagster runs it as a notebook task (`refined/<table>_notebook` assets,
# MAGIC `medallion_platform/defs/notebooks.py`); to develop in the notebook UI, set the widgets by hand.
# MAGIC
# MAGIC Widgets: `table` (the refined module), `target` (the table to write, default `table`), `dates`
# MAGIC (comma-separated event dates of a dated table; empty: all), `medallion_code` (a `/Volumes/…` zip of
# MAGIC `medallion_platform`, if it is not installed on the cluster), `pipes_channel` (`volume`: Pipes' context
# MAGIC and messages in a Unity Catalog volume; `dbfs` on a classic workspace).

# COMMAND ----------

import sys

dbutils.widgets.text("table", "daily_revenue")
dbutils.widgets.text("target", "")
dbutils.widgets.text("dates", "")
dbutils.widgets.text("medallion_code", "")
dbutils.widgets.text("pipes_channel", "volume")
if dbutils.widgets.get("medallion_code"):
    sys.path.insert(0, dbutils.widgets.get("medallion_code"))

# COMMAND ----------

from dagster_pipes import (
    PipesDatabricksNotebookWidgetsParamsLoader,
    PipesDbfsContextLoader,
    PipesDbfsMessageWriter,
    PipesEnvVarParamsLoader,
    PipesParamsLoader,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)

from medallion_platform.defs.notebooks import refresh_on_cluster


def pipes_params_loader() -> PipesParamsLoader:
    """Pipes' parameters: widgets on an existing cluster or serverless, the cluster's environment on a job cluster
    (dagster-databricks puts them in `new_cluster.spark_env_vars` there)."""
    widgets = PipesDatabricksNotebookWidgetsParamsLoader(dbutils.widgets)
    try:
        if widgets.is_dagster_pipes_process():
            return widgets
    except Exception:  # the widget is not defined (Databricks raises InputWidgetNotDefined)
        pass
    return PipesEnvVarParamsLoader()


on_volume = dbutils.widgets.get("pipes_channel") != "dbfs"
with open_dagster_pipes(
    context_loader=PipesUnityCatalogVolumesContextLoader() if on_volume else PipesDbfsContextLoader(),
    message_writer=PipesUnityCatalogVolumesMessageWriter() if on_volume else PipesDbfsMessageWriter(),
    params_loader=pipes_params_loader(),
) as pipes:
    dates = [d for d in dbutils.widgets.get("dates").split(",") if d] or None
    result = refresh_on_cluster(
        spark,
        table=dbutils.widgets.get("table"),
        target=dbutils.widgets.get("target") or None,
        dates=dates,
        environment=pipes.get_extra("environment"),
    )
    pipes.log.info(f"{result.mode}: {result.rows} rows, Delta version {result.version}")
    pipes.report_asset_materialization(
        metadata={"rows_written": result.rows, "delta_version": result.version, "refresh": result.mode}
    )
