"""A local stand-in of the Databricks REST API that the real dagster-databricks and databricks-sdk clients
drive unchanged: Unity Catalog volumes and the Files API over a folder, Jobs 2.2 runs executed for real in driver
subprocesses with `dbutils`/`spark`/`sc` and a `/Volumes` mount, clusters whose `spark` is a Spark Connect session to
one Sail server with native Delta over this stand-in's Unity Catalog (`cluster_engine.py`), workspace notebooks and
permissions, a Unity Catalog metastore of EXTERNAL Delta tables (registered by SQL through the one SQL warehouse,
readable by delta-rs' own `uc://` client with the temporary S3 credentials it vends).

As strict as a new account by default: no DBFS root (every DBFS call and `dbfs:/` path is refused with
Databricks' error); every token is a principal whose Unity Catalog privileges hold (`access.py`): `token` is
`current_user`, a metastore admin only when listed in `metastore_admins`; `admin_token` is the account admin that
deploys the workspace (as Pulumi does); each cluster has a token of its own for the principal it runs as, which its
drivers and the cluster engine use, never the caller's. External tables must lie in an external location
(`locations.py`). `LocalDatabricks(legacy=True)` (`medallion local-databricks up --legacy`) brings DBFS back, over
a folder with a `/dbfs` mount, for the classic workspace's launcher.

    with LocalDatabricks() as dbx:
        w = WorkspaceClient(host=dbx.host, token=dbx.token)

Loopback only. `medallion local-databricks up` serves one from the command line (`medallion_devtools/commands.py`).
"""

import secrets
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from medallion_devtools.standins.databricks.access import ACCOUNT_USERS
from medallion_devtools.standins.databricks.cluster_engine import DEFAULT_CLUSTER_CATALOGS, SailServer
from medallion_devtools.standins.databricks.dbfs import Dbfs
from medallion_devtools.standins.databricks.jobs import Cluster, Jobs
from medallion_devtools.standins.databricks.mount import DbfsMount, probe_dbfs_mount
from medallion_devtools.standins.databricks.server import RecordedRequest, StandinServer
from medallion_devtools.standins.databricks.unity import ACCOUNT_ADMIN, DEFAULT_CURRENT_USER, UnityCatalog
from medallion_devtools.standins.databricks.warehouse import DEFAULT_WAREHOUSE_ID, SqlWarehouse
from medallion_devtools.standins.databricks.workspace import Workspace

__all__ = [
    "ACCOUNT_ADMIN",
    "DEFAULT_CLUSTER_ID",
    "DEFAULT_CURRENT_USER",
    "DEFAULT_MAX_RUN_SECONDS",
    "DEFAULT_WAREHOUSE_ID",
    "STORAGE_CREDENTIAL",
    "LocalDatabricks",
    "RecordedRequest",
]

DEFAULT_CLUSTER_ID = "0101-000000-standin0"
STORAGE_CREDENTIAL = "standin-storage-credential"  # the one the set-up's external locations use
DEFAULT_MAX_RUN_SECONDS = 900.0


class LocalDatabricks:
    """One stand-in: `start()` (or `with`) serves it, `stop()` ends every run's driver and the server.

    Args:
        root: where DBFS (`<root>/dbfs`), the workspace and run directories live; a temporary directory,
            removed at `stop`, when not given.
        port: port on 127.0.0.1 (0: a free one).
        token: the personal access token clients must send (random when not given).
        cluster_id: the id of the one existing cluster.
        spark_env_vars: the existing cluster's `spark_env_vars`, set in its drivers' environment.
        spark_conf: the existing cluster's Spark configuration.
        cluster_log_destination: `dbfs:/…` to deliver driver logs there (`cluster_log_conf`); none by default.
        secret_scopes: `{scope: {key: value}}` for `dbutils.secrets.get`.
        max_run_seconds: any run still going after this long ends TIMEDOUT.
        storage_options: delta-rs storage options for `s3://` table locations (`AWS_ENDPOINT_URL`,
            `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP` …): Unity Catalog reads
            Delta logs with them and vends their keys, endpoint as `access_point`, as temporary table credentials.
        warehouse_id: the id of the one SQL warehouse.
        current_user: the principal `token` stands for (owner of what it creates).
        principals: the users, groups and service principals Unity Catalog knows besides `current_user`; a
            grant or owner naming any other fails with PRINCIPAL_DOES_NOT_EXIST.
        metastore_admins: principals with every privilege; none by default (the account admin of `admin_token`
            always is one).
        groups: `{group: members}`, account groups and who is in them: a grant to (or ownership by) a group
            applies to its members; every principal is also in `account users`. `token_for` gives a member a token.
        metastore_privileges: privileges on the metastore (`CREATE_CATALOG`, `CREATE_EXTERNAL_LOCATION`, …) by
            principal, granted at set-up.
        cluster_principal: the principal the existing cluster runs as (its drivers' and the cluster engine's
            identity); `current_user` when not given. A job cluster runs as its `single_user_name`, else its submitter.
        volumes: Unity Catalog volumes (`catalog.schema.volume`) the set-up creates, with their catalog and schema
            when missing, as the Pulumi registration creates them on a real account (READ and WRITE VOLUME, USE SCHEMA
            and USE CATALOG granted to `current_user`); the first is exported as `MEDALLION_DATABRICKS_VOLUME`.
        external_locations: `{name: url}` external locations (read-write, on one storage credential) the set-up
            creates, with every file privilege granted to `current_user`; a URL may be as broad as `s3://` here,
            which a real account would refuse.
        metastore_storage_root: the metastore's root storage; none by default, as on new auto-enabled workspaces,
            so a catalog needs its own managed location (`storage_root`).
        cluster_start_seconds: how long a job cluster stays PENDING before it is RUNNING and its task starts.
        legacy: a classic workspace with DBFS root (`/api/2.0/dbfs`, `dbfs:/` files, `/dbfs` on drivers); off by
            default, as on every new account.
        cluster_catalogs: the Unity Catalog catalogs the clusters' Spark Connect engine (Sail, see
            `cluster_engine.py`) resolves three-level names in.
        cluster_engine: False: no Sail server; drivers' `spark` is a lazily started local PySpark session.
    """

    def __init__(
        self,
        *,
        root: Path | None = None,
        port: int = 0,
        token: str | None = None,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        spark_env_vars: Mapping[str, str] | None = None,
        spark_conf: Mapping[str, str] | None = None,
        cluster_log_destination: str | None = None,
        secret_scopes: Mapping[str, Mapping[str, str]] | None = None,
        max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS,
        storage_options: Mapping[str, str] | None = None,
        warehouse_id: str = DEFAULT_WAREHOUSE_ID,
        current_user: str = DEFAULT_CURRENT_USER,
        principals: Iterable[str] = (),
        metastore_admins: Iterable[str] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
        metastore_privileges: Mapping[str, Iterable[str]] | None = None,
        cluster_principal: str | None = None,
        volumes: Iterable[str] = (),
        external_locations: Mapping[str, str] | None = None,
        legacy: bool = False,
        cluster_start_seconds: float = 0.5,
        metastore_storage_root: str | None = None,
        cluster_catalogs: Iterable[str] = DEFAULT_CLUSTER_CATALOGS,
        cluster_engine: bool = True,
    ) -> None:
        self.legacy = legacy
        self._cluster_start_seconds = cluster_start_seconds
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="medallion-databricks-")) if root is None else Path(root).resolve()
        self.token = token or f"dapi{secrets.token_hex(16)}"
        self.admin_token = f"dapi-admin-{secrets.token_hex(16)}"
        self.cluster = Cluster(
            cluster_id=cluster_id,
            spark_env_vars=dict(spark_env_vars or {}),
            spark_conf=dict(spark_conf or {}),
            log_destination=cluster_log_destination,
            principal=cluster_principal or current_user,
        )
        self._port = port
        self._secret_scopes = {scope: dict(keys) for scope, keys in (secret_scopes or {}).items()}
        self._max_run_seconds = max_run_seconds
        self.unity = UnityCatalog(
            storage_options=dict(storage_options or {}),
            current_user=current_user,
            principals=principals,
            volumes_root=self.volumes_root,
            metastore_storage_root=metastore_storage_root,
            metastore_admins=metastore_admins,
            groups=groups,
        )
        for principal, privileges in (metastore_privileges or {}).items():
            change = {"principal": principal, "add": list(privileges)}
            self.unity.grants.update("metastore", self.unity.metastore_id, [change])
        # the account's Unity Catalog storage credential, as the workspace's registration creates it
        self.unity.locations.create_credential({"name": STORAGE_CREDENTIAL})
        self.warehouse = SqlWarehouse(self.unity, warehouse_id)
        for name, url in (external_locations or {}).items():
            self.create_external_location(name, url)
        self.volume_paths = [self.create_volume(v) for v in volumes]
        self._cluster_catalogs = tuple(cluster_catalogs)
        self._cluster_engine = cluster_engine
        self._storage_options = dict(storage_options or {})
        self._server: StandinServer | None = None
        self.engine: SailServer | None = None
        self.mount: DbfsMount | None = None

    @property
    def dbfs_root(self) -> Path:
        """The local folder behind DBFS (`dbfs:/x` is `<dbfs_root>/x`)."""
        return self.root / "dbfs"

    def create_volume(self, full_name: str) -> str:
        """Creates the MANAGED volume `catalog.schema.volume` (and its catalog and schema when missing), as an
        account's set-up does; returns its `/Volumes/…` path."""
        catalog, schema, name = full_name.lower().split(".")
        if self.unity.find_catalog(catalog) is None:
            managed = f"file://{self.root}/managed"
            if self.unity.locations.covering(managed) is None:  # a managed location lies in an external location
                self.unity.locations.create({"name": "managed", "url": managed, "credential_name": STORAGE_CREDENTIAL})
            self.unity.create_catalog({"name": catalog, "storage_root": f"{managed}/{catalog}"})
        if self.unity.find_schema(f"{catalog}.{schema}") is None:
            self.unity.create_schema({"name": schema, "catalog_name": catalog})
        self.unity.volumes.create({"catalog_name": catalog, "schema_name": schema, "name": name})
        user = self.unity.current_user
        grants = self.unity.grants
        grants.update("catalog", catalog, [{"principal": user, "add": ["USE_CATALOG"]}])
        grants.update("schema", f"{catalog}.{schema}", [{"principal": user, "add": ["USE_SCHEMA"]}])
        grants.update("volume", full_name.lower(), [{"principal": user, "add": ["READ_VOLUME", "WRITE_VOLUME"]}])
        return f"/Volumes/{catalog}/{schema}/{name}"

    def create_external_location(self, name: str, url: str, *, read_only: bool = False) -> None:
        """Creates an external location (on the set-up's storage credential), as an account admin does, and
        grants `current_user` CREATE EXTERNAL TABLE, READ FILES and (unless `read_only`) WRITE FILES on it."""
        self.unity.locations.create(
            {"name": name, "url": url, "credential_name": STORAGE_CREDENTIAL, "read_only": read_only}
        )
        files = ["READ_FILES"] if read_only else ["READ_FILES", "WRITE_FILES"]
        change = {"principal": self.unity.current_user, "add": ["CREATE_EXTERNAL_TABLE", *files]}
        self.unity.grants.update("external_location", name, [change])

    def token_for(self, principal: str) -> str:
        """A new personal access token of `principal` (a user or service principal Unity Catalog knows), as an
        admin mints one for a member of the account; the stand-in must be running."""
        if principal not in self.unity.grants.principals or principal in {*self.unity.groups, ACCOUNT_USERS}:
            raise ValueError(
                f"{principal!r} is not a user or service principal of this stand-in (a group has no token)"
            )
        token = f"dapi{secrets.token_hex(16)}"
        self._running().tokens[token] = principal
        return token

    @property
    def volumes_root(self) -> Path:
        """The local folder behind `/Volumes` (`/Volumes/c/s/v/x` is `<volumes_root>/c/s/v/x`)."""
        return self.root / "volumes"

    @property
    def cluster_id(self) -> str:
        """The existing cluster's id."""
        return self.cluster.cluster_id

    @property
    def warehouse_id(self) -> str:
        """The one SQL warehouse's id (for `statement_execution.execute_statement`)."""
        return self.warehouse.warehouse_id

    @property
    def host(self) -> str:
        """`http://127.0.0.1:<port>`, for `DATABRICKS_HOST`."""
        return f"http://127.0.0.1:{self._running().port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        server = self._running()
        with server._lock:
            return list(server.requests)

    @property
    def permissions(self) -> dict[str, dict[str, object]]:
        """The permissions set through `/api/2.0/permissions`, by `/type/id`."""
        return dict(self._running().permissions)

    def _running(self) -> StandinServer:
        if self._server is None:
            raise RuntimeError("The local Databricks is not running; call start() first.")
        return self._server

    def environ(self) -> dict[str, str]:
        """The variables that point the SDK and the platform at this stand-in (a PAT, no config file)."""
        return {
            "DATABRICKS_HOST": self.host,
            "DATABRICKS_TOKEN": self.token,
            "DATABRICKS_AUTH_TYPE": "pat",
            "DATABRICKS_CONFIG_FILE": str(self.root / "no-databrickscfg"),  # never created: no profile leaks in
            "MEDALLION_ENV": "databricks",
            "MEDALLION_DATABRICKS_CLUSTER_ID": self.cluster_id,
            **({"MEDALLION_DATABRICKS_DBFS_ROOT": str(self.dbfs_root)} if self.legacy else {}),
            **({"MEDALLION_DATABRICKS_VOLUME": self.volume_paths[0]} if self.volume_paths else {}),
            "MEDALLION_DATABRICKS_POLL_SECONDS": "1",  # a local run is seconds long: poll it often
            "MEDALLION_DATABRICKS_WAREHOUSE_ID": self.warehouse_id,  # Unity Catalog DDL runs there
        }

    def start(self) -> "LocalDatabricks":
        """Serves on 127.0.0.1; probes the `/dbfs` mount strategy once (see `mount.py`)."""
        dbfs = Dbfs(self.dbfs_root, self.root / "uploads")
        workspace = Workspace(self.root / "workspace")
        self.mount = probe_dbfs_mount(self.dbfs_root if self.legacy else None, self.volumes_root)
        server: StandinServer | None = None
        engine: SailServer | None = None
        jobs = Jobs(
            host=lambda: f"http://127.0.0.1:{server.port if server else 0}",
            dbfs=dbfs,
            workspace=workspace,
            cluster=self.cluster,
            mount=self.mount,
            runs_dir=self.root / "runs",
            secret_scopes=self._secret_scopes,
            max_run_seconds=self._max_run_seconds,
            volumes=self.unity.volumes,
            legacy=self.legacy,
            cluster_start_seconds=self._cluster_start_seconds,
            spark_remote=lambda: engine.remote if engine else None,
            storage_folders=self.unity.locations.local_folders,
        )
        server = StandinServer(
            tokens={self.token: self.unity.current_user, self.admin_token: ACCOUNT_ADMIN},
            dbfs=dbfs,
            workspace=workspace,
            jobs=jobs,
            unity=self.unity,
            warehouse=self.warehouse,
            port=self._port,
            legacy=self.legacy,
        )
        server.serve()
        self._server = server
        try:
            if not self._cluster_engine:
                return self
            engine = SailServer(
                unity_uri=f"{self.host}/api/2.1/unity-catalog",
                token=self.cluster.token,  # the cluster's own identity, never the caller's
                catalogs=self._cluster_catalogs,
                work_dir=self.root / "cluster-engine",
                storage_options=self._storage_options,
            ).start()
        except BaseException:
            self.stop()
            raise
        self.engine = engine
        return self

    def stop(self) -> None:
        """Cancels every run (SIGTERM, then SIGKILL, to each driver's process group), stops the server and,
        when the root was temporary, removes it."""
        server, self._server = self._server, None
        engine, self.engine = self.engine, None
        if server is not None:
            server.jobs.stop()
        if engine is not None:
            engine.stop()
        if server is not None:
            server.shutdown()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalDatabricks":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
