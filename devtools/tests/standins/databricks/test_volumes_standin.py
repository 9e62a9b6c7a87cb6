"""The stand-in as strict as a new account, through the real SDK: no DBFS root (refused with Databricks' error),
Unity Catalog volumes and the Files API instead, drivers that see volumes at `/Volumes` and act as their cluster's
own principal."""

import base64
import io
import json
import time
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
from databricks.sdk.service import jobs
from databricks.sdk.service.catalog import PermissionsChange, Privilege, VolumeType
from medallion_devtools.standins.databricks import STORAGE_CREDENTIAL, LocalDatabricks

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]


@pytest.fixture
def strict(strict_databricks: LocalDatabricks) -> WorkspaceClient:
    return WorkspaceClient(host=strict_databricks.host, token=strict_databricks.token, auth_type="pat")


def _wait(w: WorkspaceClient, run_id: int) -> jobs.Run:
    deadline, run = time.monotonic() + 90, w.jobs.get_run(run_id)
    while run.state and run.state.life_cycle_state not in (
        jobs.RunLifeCycleState.TERMINATED,
        jobs.RunLifeCycleState.INTERNAL_ERROR,
    ):
        assert time.monotonic() < deadline, run.state
        time.sleep(0.2)
        run = w.jobs.get_run(run_id)
    return run


def test_dbfs_root_is_refused_as_on_a_new_account(strict: WorkspaceClient, strict_databricks: LocalDatabricks):
    with pytest.raises(PermissionDenied, match="Public DBFS root is disabled"):
        strict.dbfs.put("/hello.txt", contents=base64.b64encode(b"hi").decode())
    with pytest.raises(PermissionDenied, match="Public DBFS root is disabled"):
        list(strict.dbfs.list("/"))
    task = jobs.SubmitTask(
        task_key="from_dbfs",
        existing_cluster_id=strict_databricks.cluster_id,
        spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/x.py"),
    )
    run = _wait(strict, strict.jobs.submit(run_name="dbfs", tasks=[task]).bind()["run_id"])
    assert run.state is not None and "DBFS root is disabled" in (run.state.state_message or "")
    assert "MEDALLION_DATABRICKS_DBFS_ROOT" not in strict_databricks.environ()


def test_volumes_are_created_listed_and_read_back(strict: WorkspaceClient, strict_databricks: LocalDatabricks):
    # the platform's principal may not create volumes (the account's registration does, as its admin)
    with pytest.raises(PermissionDenied, match=r"CREATE VOLUME on Schema 'medallion\.platform'"):
        strict.volumes.create("medallion", "platform", "scratch", VolumeType.MANAGED)
    strict = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    created = strict.volumes.create("medallion", "platform", "scratch", VolumeType.MANAGED, comment="tmp")
    assert created.full_name == "medallion.platform.scratch" and created.owner
    names = {v.full_name for v in strict.volumes.list("medallion", "platform")}
    assert names == {"medallion.platform.staging", "medallion.platform.scratch"}
    assert strict.volumes.read("medallion.platform.scratch").comment == "tmp"
    with pytest.raises(DatabricksError, match="already exists"):
        strict.volumes.create("medallion", "platform", "scratch", VolumeType.MANAGED)
    with pytest.raises(NotFound):
        strict.volumes.create("medallion", "nowhere", "scratch", VolumeType.MANAGED)
    strict.volumes.delete("medallion.platform.scratch")
    with pytest.raises(NotFound):
        strict.volumes.read("medallion.platform.scratch")


def test_the_files_api_uploads_downloads_lists_and_deletes(strict: WorkspaceClient, strict_databricks: LocalDatabricks):
    base = strict_databricks.volume_paths[0] + "/files-test"
    strict.files.upload(f"{base}/a/one.bin", io.BytesIO(b"\x00\x01" * 1000), overwrite=True)
    assert strict.files.download(f"{base}/a/one.bin").contents.read() == b"\x00\x01" * 1000  # type: ignore[union-attr]
    assert strict.files.get_metadata(f"{base}/a/one.bin").content_length == 2000
    with pytest.raises(DatabricksError, match="already exists"):
        strict.files.upload(f"{base}/a/one.bin", io.BytesIO(b"again"), overwrite=False)
    strict.files.create_directory(f"{base}/empty")
    entries = {e.name: e.is_directory for e in strict.files.list_directory_contents(base)}
    assert entries == {"a": True, "empty": True}
    strict.files.get_directory_metadata(f"{base}/a")
    with pytest.raises(DatabricksError, match="not empty"):
        strict.files.delete_directory(f"{base}/a")
    strict.files.delete(f"{base}/a/one.bin")
    strict.files.delete_directory(f"{base}/a")
    with pytest.raises(NotFound):
        strict.files.download(f"{base}/a/one.bin")
    with pytest.raises(NotFound, match=r"medallion\.platform\.nope"):  # outside any volume
        strict.files.upload("/Volumes/medallion/platform/nope/x", io.BytesIO(b"x"))


SCRIPT = """
import json, os, sys
from databricks.sdk import WorkspaceClient
w = WorkspaceClient()  # the runtime's native authentication, as on a cluster
me = {"argv": sys.argv[1:], "read": open(sys.argv[1]).read(), "catalogs": [c.name for c in w.catalogs.list()]}
me["token_is_the_callers"] = os.environ.get("DATABRICKS_TOKEN") == sys.argv[2]
with open(os.path.join(os.path.dirname(sys.argv[1]), "out.json"), "w") as out:
    json.dump(me, out)
"""


def test_a_task_runs_from_a_volume_sees_it_at_volumes_and_acts_as_its_cluster(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks
):
    base = strict_databricks.volume_paths[0] + "/task-test"
    strict.files.upload(f"{base}/main.py", io.BytesIO(SCRIPT.encode()), overwrite=True)
    strict.files.upload(f"{base}/input.txt", io.BytesIO(b"from the volume"), overwrite=True)
    task = jobs.SubmitTask(
        task_key="from_volume",
        existing_cluster_id=strict_databricks.cluster_id,
        spark_python_task=jobs.SparkPythonTask(
            python_file=f"{base}/main.py", parameters=[f"{base}/input.txt", strict_databricks.token]
        ),
    )
    run = _wait(strict, strict.jobs.submit(run_name="volume", tasks=[task]).bind()["run_id"])
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    out = json.loads(strict.files.download(f"{base}/out.json").contents.read())  # type: ignore[union-attr]
    assert out["read"] == "from the volume" and "medallion" in out["catalogs"]
    assert out["token_is_the_callers"] is False


def test_a_catalog_needs_a_managed_location_when_the_metastore_has_no_root(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks
):
    with pytest.raises(DatabricksError, match="Metastore storage root URL does not exist") as caught:
        strict.catalogs.create(name="rootless")
    assert caught.value.error_code == "INVALID_STATE"
    # in the external location the set-up keeps for managed storage, where only the admin has CREATE MANAGED STORAGE
    root = f"file://{strict_databricks.root}/managed/rooted"
    with pytest.raises(DatabricksError, match="User does not have CREATE MANAGED STORAGE on External Location"):
        strict.catalogs.create(name="rooted", storage_root=root)
    admin = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    assert admin.catalogs.create(name="rooted", storage_root=root).storage_root == root


AS_ANALYST = """
import io, json, os, sys
from databricks.sdk import WorkspaceClient
w = WorkspaceClient()  # the runtime's native authentication: the cluster's principal
me = {"sees": sorted(os.listdir("/Volumes/medallion/platform"))}
try:
    w.files.upload(sys.argv[1] + "/by-the-cluster.txt", io.BytesIO(b"x"), overwrite=True)
    me["files_api"] = None
except Exception as exc:
    me["files_api"] = getattr(exc, "error_code", None)
    me["message"] = str(exc)
try:
    with open(sys.argv[1] + "/by-the-mount.txt", "w") as out:  # the /Volumes mount: read-only without WRITE VOLUME
        out.write("x")
    me["mount"] = "written"
except OSError as exc:
    me["mount"] = exc.strerror
print("ME=" + json.dumps(me))
"""


def test_a_dedicated_job_cluster_acts_as_its_single_user_with_that_principals_privileges(
    strict: WorkspaceClient, strict_databricks: LocalDatabricks
):
    """A dedicated cluster runs as its single user: it reads its code and sees at /Volumes only the volumes that
    principal may read, read-only without WRITE VOLUME, and the Files API refuses it what the principal lacks."""
    base = strict_databricks.volume_paths[0] + "/single-user-test"
    staging = base.removeprefix("/Volumes/").split("/")[:3]
    strict.files.upload(f"{base}/main.py", io.BytesIO(AS_ANALYST.encode()), overwrite=True)
    cluster = {
        "spark_version": "17.3.x-scala2.13",
        "node_type_id": "i3.xlarge",
        "num_workers": 1,
        "data_security_mode": "SINGLE_USER",
        "single_user_name": "analysts",  # not the submitter: the cluster is analysts'
    }
    task = {
        "task_key": "as_analysts",
        "new_cluster": cluster,
        "spark_python_task": {"python_file": f"{base}/main.py", "parameters": [base]},
    }

    def submit() -> jobs.Run:
        run_id = strict.api_client.do("POST", "/api/2.2/jobs/runs/submit", body={"run_name": "su", "tasks": [task]})
        return _wait(strict, run_id["run_id"])  # type: ignore[index]

    # analysts may not read the staging volume: the cluster cannot even read its code
    run = submit()
    assert run.state is not None and run.state.result_state == jobs.RunResultState.FAILED, run.state
    assert "User does not have USE CATALOG on Catalog 'medallion'" in (run.state.state_message or ""), run.state

    admin = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    readable = [
        ("catalog", staging[0], Privilege.USE_CATALOG),
        ("schema", ".".join(staging[:2]), Privilege.USE_SCHEMA),
        ("volume", ".".join(staging), Privilege.READ_VOLUME),
    ]
    for kind, name, privilege in readable:
        admin.grants.update(kind, name, changes=[PermissionsChange(principal="analysts", add=[privilege])])
    try:
        run = submit()
    finally:  # the session's stand-in goes on without analysts' grants
        for kind, name, privilege in readable:
            admin.grants.update(kind, name, changes=[PermissionsChange(principal="analysts", remove=[privilege])])
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    logs = strict.jobs.get_run_output(run.tasks[0].run_id).logs or ""  # type: ignore[index]
    me = json.loads(logs.split("ME=", 1)[1].splitlines()[0])
    assert me["sees"] == [staging[2]]  # only the volume it may read, not the rest of the metastore's
    assert me["files_api"] == "PERMISSION_DENIED" and "WRITE VOLUME" in me["message"], me
    assert me["mount"] == "Read-only file system", me
    assert not any(Path(strict_databricks.volumes_root, *staging).glob("single-user-test/by-the-*"))
    strict.files.upload(f"{base}/by-the-cluster.txt", io.BytesIO(b"x"), overwrite=True)  # the submitter may


LISTING = """
import json, os, sys
folder, out = sys.argv[1], sys.argv[2]
try:
    open(os.path.join(folder, "written-by-the-driver"), "w").close()
    wrote = True
except OSError:
    wrote = False
with open(out, "w") as f:
    json.dump({"listed": sorted(os.listdir(folder)), "wrote": wrote}, f)
"""


def test_a_driver_sees_an_external_locations_storage_only_through_spark(
    strict_databricks: LocalDatabricks, tmp_path_factory: pytest.TempPathFactory
):
    """As on a Unity Catalog cluster, whose driver holds no storage credential: the local folder of an external
    location is empty and read-only to a task's driver, while the stand-in (and Spark) still reach its files."""
    storage = tmp_path_factory.mktemp("zone")
    (storage / "part-0.parquet").write_bytes(b"PAR1")
    admin = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.admin_token, auth_type="pat")
    admin.external_locations.create(
        name=f"zone-{storage.name}", url=f"file://{storage}", credential_name=STORAGE_CREDENTIAL
    )
    strict = WorkspaceClient(host=strict_databricks.host, token=strict_databricks.token, auth_type="pat")
    base = strict_databricks.volume_paths[0] + "/listing-test"
    strict.files.upload(f"{base}/main.py", io.BytesIO(LISTING.encode()), overwrite=True)
    task = jobs.SubmitTask(
        task_key="listing",
        existing_cluster_id=strict_databricks.cluster_id,
        spark_python_task=jobs.SparkPythonTask(
            python_file=f"{base}/main.py", parameters=[str(storage), f"{base}/out.json"]
        ),
    )
    run = _wait(strict, strict.jobs.submit(run_name="listing", tasks=[task]).bind()["run_id"])
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    out = json.loads(strict.files.download(f"{base}/out.json").contents.read())  # type: ignore[union-attr]
    assert out == {"listed": [], "wrote": False}
    assert sorted(p.name for p in storage.iterdir()) == ["part-0.parquet"]
