"""The stand-in's cluster engine: one Sail Spark Connect server per stand-in, started and stopped with it, whose
catalog is the stand-in's Unity Catalog; a driver's `spark` is a Spark Connect session to it."""

import base64
import json
import socket
import time
from pathlib import Path

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from deltalake import write_deltalake
from medallion_devtools.standins.databricks import LocalDatabricks

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]

SCRIPT = """
import json, os, sys
out = {"remote": type(spark.range(1)).__module__}
out["rows"] = spark.table(sys.argv[1]).count()
out["cluster"] = spark.conf.get("spark.databricks.clusterUsageTags.clusterId")
out["runtime"] = os.environ.get("DATABRICKS_RUNTIME_VERSION")
try:
    sc.parallelize([1])
    out["sc"] = "usable"
except Exception as exc:
    out["sc"] = type(exc).__name__ + ": " + str(exc)[:80]
print(json.dumps(out))
"""


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_cluster_engine_starts_and_stops_with_the_stand_in(tmp_path: Path):
    with LocalDatabricks(root=tmp_path, external_locations={"managed": f"file://{tmp_path}/managed"}) as dbx:
        assert dbx.engine is not None and dbx.engine.remote.startswith("sc://127.0.0.1:")
        port = dbx.engine.port
        assert _open(port)
        environ = dbx.engine.environ()
        assert not any(k.startswith(("DATABRICKS_", "UNITY_", "UC_")) for k in environ)  # they would replace the uri
        assert f"{dbx.host}/api/2.1/unity-catalog" in environ["SAIL_CATALOG__LIST"]
    assert dbx.engine is None and not _open(port)


def test_a_driver_reads_a_unity_catalog_table_by_name_on_spark_connect(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient, tmp_path: Path
):
    location = str(tmp_path / "engine_probe")
    write_deltalake(location, pa.table({"id": [1, 2, 3]}))
    if "medallion" not in {c.name for c in workspace.catalogs.list()}:
        workspace.catalogs.create(name="medallion", storage_root=str(tmp_path / "managed"))  # no metastore root
    if "probe" not in {s.name for s in workspace.schemas.list(catalog_name="medallion")}:
        workspace.schemas.create(name="probe", catalog_name="medallion")
    statement = f"CREATE TABLE IF NOT EXISTS medallion.probe.t USING DELTA LOCATION '{location}'"
    done = workspace.statement_execution.execute_statement(
        statement=statement, warehouse_id=local_databricks.warehouse_id, wait_timeout="30s"
    )
    assert done.status is not None and done.status.error is None
    workspace.dbfs.put("/engine/probe.py", contents=base64.b64encode(SCRIPT.encode()).decode(), overwrite=True)
    task = jobs.SubmitTask(
        task_key="probe",
        existing_cluster_id=local_databricks.cluster_id,
        spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/engine/probe.py", parameters=["medallion.probe.t"]),
    )
    run_id = workspace.jobs.submit(run_name="probe", tasks=[task]).bind()["run_id"]
    deadline, run = time.monotonic() + 90, workspace.jobs.get_run(run_id)
    while run.state and run.state.life_cycle_state != jobs.RunLifeCycleState.TERMINATED and time.monotonic() < deadline:
        time.sleep(0.2)
        run = workspace.jobs.get_run(run_id)
    assert run.tasks and run.tasks[0].run_id is not None
    output = workspace.jobs.get_run_output(run.tasks[0].run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, output.error_trace
    seen = json.loads((output.logs or "").strip().splitlines()[-1])
    assert seen["rows"] == 3
    assert seen["remote"].startswith("pyspark.sql.connect")
    assert seen["cluster"] == local_databricks.cluster_id
    assert seen["runtime"] == "17.3"
    assert "JVM_ATTRIBUTE_NOT_SUPPORTED" in seen["sc"]  # standard access mode: no sc
