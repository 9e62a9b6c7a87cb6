"""OPTIMIZE and VACUUM on the stand-in's SQL warehouse, as Databricks runs them: OPTIMIZE compacts and returns
`(path, metrics)`, VACUUM removes unreferenced files and refuses a retention under 7 days."""

from pathlib import Path

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from deltalake import DeltaTable, write_deltalake
from medallion_devtools.standins.databricks import LocalDatabricks

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(60)]


def _sql(workspace: WorkspaceClient, dbx: LocalDatabricks, statement: str):
    return workspace.statement_execution.execute_statement(
        statement=statement, warehouse_id=dbx.warehouse_id, wait_timeout="30s"
    )


def test_optimize_compacts_and_vacuum_keeps_seven_days(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient, tmp_path: Path
):
    location = str(tmp_path / "small_files")
    for n in range(4):
        write_deltalake(location, pa.table({"n": [n]}), mode="append")
    if "medallion" not in {c.name for c in workspace.catalogs.list()}:
        workspace.catalogs.create(name="medallion", storage_root=str(tmp_path / "managed"))  # no metastore root
    if "upkeep" not in {s.name for s in workspace.schemas.list(catalog_name="medallion")}:
        workspace.schemas.create(name="upkeep", catalog_name="medallion")
    created = _sql(workspace, local_databricks, f"CREATE TABLE medallion.upkeep.t USING DELTA LOCATION '{location}'")
    assert created.status is not None and created.status.error is None

    optimized = _sql(workspace, local_databricks, "optimize `medallion`.`upkeep`.`t`")
    assert optimized.status is not None and optimized.status.error is None
    assert optimized.result is not None and optimized.result.data_array
    path, metrics = optimized.result.data_array[0]
    assert path == location and '"numFilesRemoved": 4' in metrics
    assert len(DeltaTable(location).file_uris()) == 1

    too_soon = _sql(workspace, local_databricks, "VACUUM medallion.upkeep.t RETAIN 0 HOURS")
    assert too_soon.status is not None and too_soon.status.error is not None
    assert "low retention period" in (too_soon.status.error.message or "")
    vacuumed = _sql(workspace, local_databricks, "VACUUM medallion.upkeep.t RETAIN 168 HOURS")
    assert vacuumed.status is not None and vacuumed.status.error is None
    assert sorted(DeltaTable(location).to_pyarrow_table()["n"].to_pylist()) == [0, 1, 2, 3]
