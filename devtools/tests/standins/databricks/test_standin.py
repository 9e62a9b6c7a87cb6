"""The stand-in's own contract, through the real SDK: Databricks-shaped errors, DBFS semantics the clients
rely on, and runs that cannot hang a client (time limits end them TIMEDOUT)."""

import base64
import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service import jobs
from medallion_devtools.standins.databricks import LocalDatabricks

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]


def _error(call) -> DatabricksError:
    with pytest.raises(DatabricksError) as caught:
        call()
    return caught.value


def test_errors_are_databricks_shaped(local_databricks: LocalDatabricks, workspace: WorkspaceClient):
    wrong = WorkspaceClient(host=local_databricks.host, token="not-the-token", auth_type="pat")
    assert _error(lambda: wrong.dbfs.get_status("/")).error_code == "UNAUTHENTICATED"
    missing = _error(lambda: workspace.dbfs.read("/no/such/file"))
    assert isinstance(missing, NotFound) and missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    workspace.dbfs.put("/errors/once", contents=base64.b64encode(b"1").decode())
    again = _error(lambda: workspace.dbfs.put("/errors/once", contents=base64.b64encode(b"2").decode()))
    assert again.error_code == "RESOURCE_ALREADY_EXISTS"
    too_big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert _error(lambda: workspace.dbfs.put("/errors/big", contents=too_big)).error_code == "MAX_BLOCK_SIZE_EXCEEDED"
    assert _error(lambda: workspace.clusters.get("0000-no-cluster")).error_code == "INVALID_PARAMETER_VALUE"
    unknown = _error(lambda: workspace.api_client.do("GET", "/api/2.0/no/such/endpoint"))
    assert unknown.error_code == "ENDPOINT_NOT_FOUND"


def test_dbfs_paths_are_normalised_and_reads_stop_at_one_mebibyte(
    local_databricks: LocalDatabricks, workspace: WorkspaceClient
):
    handle = workspace.dbfs.create("dbfs:///norm//big.bin", overwrite=True).handle
    assert handle is not None
    for chunk in (b"a" * 1024 * 1024, b"b" * 10):
        workspace.dbfs.add_block(handle, base64.b64encode(chunk).decode())
    assert not (local_databricks.dbfs_root / "norm" / "big.bin").exists()  # appears at close, as on DBFS
    workspace.dbfs.close(handle)
    assert workspace.dbfs.get_status("/norm/big.bin").file_size == 1024 * 1024 + 10
    first = workspace.dbfs.read("dbfs:/norm/big.bin", length=1024 * 1024)
    rest = workspace.dbfs.read("//norm/big.bin", offset=1024 * 1024, length=1024 * 1024)
    assert (first.bytes_read, rest.bytes_read) == (1024 * 1024, 10)
    assert base64.b64decode(rest.data or "") == b"b" * 10
    over = _error(lambda: workspace.dbfs.read("/norm/big.bin", length=1024 * 1024 + 1))
    assert over.error_code == "MAX_READ_SIZE_EXCEEDED"


def test_a_run_over_its_timeout_ends_timedout(local_databricks: LocalDatabricks, workspace: WorkspaceClient):
    script = "import time\nprint('waiting', flush=True)\ntime.sleep(600)\n"
    workspace.dbfs.put("/timeout/sleep.py", contents=base64.b64encode(script.encode()).decode(), overwrite=True)
    task = jobs.SubmitTask(
        task_key="sleeper",
        existing_cluster_id=local_databricks.cluster_id,
        spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/timeout/sleep.py"),
    )
    run_id = workspace.jobs.submit(run_name="sleeper", tasks=[task], timeout_seconds=2).bind()["run_id"]
    deadline, run = time.monotonic() + 60, workspace.jobs.get_run(run_id)
    while run.state and run.state.life_cycle_state != jobs.RunLifeCycleState.TERMINATED and time.monotonic() < deadline:
        time.sleep(0.2)
        run = workspace.jobs.get_run(run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.TIMEDOUT
    assert run.state.user_cancelled_or_timedout
    assert run.tasks and run.tasks[0].run_id is not None
    output = workspace.jobs.get_run_output(run.tasks[0].run_id)
    assert output.logs == "waiting\n"
