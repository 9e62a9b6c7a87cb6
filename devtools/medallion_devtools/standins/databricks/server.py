"""The stand-in's HTTP side: a stdlib `ThreadingHTTPServer` on 127.0.0.1, bearer-token auth, routing to the
DBFS, workspace and jobs services, Databricks-shaped JSON errors and an in-memory log of every request.

Routes (every one the real dagster-databricks 0.29 and databricks-sdk 0.60 clients call, and a few more):
DBFS `/api/2.0/dbfs/{create,add-block,close,put,read,get-status,list,mkdirs,delete,move}`; Jobs
`/api/2.2/jobs/{runs/submit,runs/get,runs/list,runs/cancel,runs/get-output,create,get,run-now}` (also under 2.1, as
older clients call); `/api/2.{0,1}/clusters/{get,list}`; `/api/2.0/permissions/{type}/{id}` (GET, PUT,
PATCH: recorded, not enforced); `/api/2.0/workspace/{import,get-status,mkdirs,list,delete}`.

Unity Catalog (`unity.py`, `grants.py`) under `/api/2.1/unity-catalog/`: `catalogs[/{name}]`, `schemas[/{full_name}]`
(POST, GET, PATCH, DELETE), `tables[/{full_name}[/exists]]` (GET, PATCH owner, DELETE), `functions[/{full_name}]`
(GET, DELETE; created by SQL),
`permissions/{type}/{full_name}` (GET, PATCH), `effective-permissions/{type}/{full_name}` (GET),
`entity-tag-assignments/{entity_type}/{entity_name}/tags[/{key}]` (GET), `volumes[/{full_name}]` (POST, GET, PATCH,
DELETE), `storage-credentials[/{name}]` (POST, GET), `external-locations[/{name}]` (POST, GET, PATCH, DELETE) and
`temporary-table-credentials` (POST, also under 2.0, where the SDK sends it). The Files API
(`volumes.py`): `/api/2.0/fs/files/Volumes/…` (PUT raw bytes, GET, HEAD, DELETE) and `/api/2.0/fs/directories/Volumes/…`
(PUT, GET, HEAD, DELETE). SQL (`warehouse.py`, `sql.py`): `/api/2.0/sql/statements/` (POST),
`/api/2.0/sql/statements/{id}` (GET), `…/{id}/cancel` (POST), `/api/2.0/sql/warehouses[/{id}]` (GET).

Unless the stand-in is `legacy`, DBFS is refused as a new account refuses it (no DBFS root, no mounts).

Each token is a principal (`tokens`, and each cluster's own token for the principal it runs as); a request acts as
it (`access.acting_as`), and Unity Catalog enforces that principal's privileges.
"""

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from medallion_devtools.standins.databricks.access import acting_as
from medallion_devtools.standins.databricks.dbfs import Dbfs
from medallion_devtools.standins.databricks.errors import (
    ApiError,
    JsonObject,
    bad_request,
    not_found,
    optional,
    required,
)
from medallion_devtools.standins.databricks.grants import securable_type
from medallion_devtools.standins.databricks.jobs import Jobs
from medallion_devtools.standins.databricks.unity import UnityCatalog
from medallion_devtools.standins.databricks.volumes import FileResponse
from medallion_devtools.standins.databricks.warehouse import SqlWarehouse
from medallion_devtools.standins.databricks.workspace import Workspace

__all__ = ["RecordedRequest", "StandinServer"]

RECORDED_HEADERS = ("User-Agent", "Content-Type", "Accept")
Handler = Callable[[JsonObject], JsonObject]
# A route whose path holds names: the handler gets the path's groups and the parameters.
PatternHandler = Callable[[tuple[str, ...], JsonObject], JsonObject]
UC = "/api/2.1/unity-catalog/"
FS = re.compile(r"/api/2\.0/fs/(files|directories)(/.*)")


def dbfs_disabled(path: str) -> ApiError:
    """What a workspace without DBFS root answers on a DBFS path."""
    return ApiError(403, "PERMISSION_DENIED", f"Public DBFS root is disabled. Access is denied on path: {path}")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (the token itself is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: JsonObject | None
    status: int
    data: bytes = b""  # a Files API upload's bytes

    @property
    def user_agent(self) -> str:
        """The User-Agent header ("" if none)."""
        return self.headers.get("User-Agent", "")


class StandinServer:
    """Routes requests to the services; `serve` runs the HTTP server in a background thread."""

    def __init__(
        self,
        *,
        tokens: dict[str, str],
        dbfs: Dbfs,
        workspace: Workspace,
        jobs: Jobs,
        unity: UnityCatalog,
        warehouse: SqlWarehouse,
        port: int = 0,
        legacy: bool = False,
    ) -> None:
        self.tokens = dict(tokens)  # token → principal
        self.legacy = legacy
        self.dbfs, self.workspace, self.jobs = dbfs, workspace, jobs
        self.unity, self.warehouse = unity, warehouse
        self.requests: list[RecordedRequest] = []
        self.permissions: dict[str, JsonObject] = {}
        self._lock = threading.Lock()
        self._routes = self._build_routes()
        self._pattern_routes = self._build_pattern_routes()
        self._http = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._http.server_address[1])

    def serve(self) -> None:
        """Starts serving in a daemon thread."""
        self._thread = threading.Thread(target=self._http.serve_forever, name="standin-http", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stops serving and closes the socket."""
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(10)
        self._http.server_close()

    def record(self, request: RecordedRequest) -> None:
        """Adds to the request log."""
        with self._lock:
            self.requests.append(request)

    def principal(self, authorization: str | None) -> str | tuple[int, JsonObject]:
        """The principal a request's bearer token stands for, or the 401 to answer."""
        if not authorization or not authorization.startswith("Bearer "):
            return 401, {
                "error_code": "UNAUTHENTICATED",
                "message": "Credential was not sent or was of an unsupported type for this API.",
            }
        token = authorization.removeprefix("Bearer ")
        principal = self.tokens.get(token) or self.jobs.cluster_principals().get(token)
        if principal is None:
            return 401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
        return principal

    def handle_files(
        self, method: str, path: str, query: dict[str, str], data: bytes, authorization: str | None
    ) -> FileResponse | tuple[int, JsonObject]:
        """A Files API request: raw bytes in (upload) and out (download), headers only for HEAD."""
        principal = self.principal(authorization)
        if not isinstance(principal, str):
            return principal
        with acting_as(principal):
            return self._files(method, path, query, data)

    def _files(
        self, method: str, path: str, query: dict[str, str], data: bytes
    ) -> FileResponse | tuple[int, JsonObject]:
        match = FS.fullmatch(path)
        volumes = self.unity.volumes
        try:
            if match is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
            kind, target = match.group(1), unquote(match.group(2))
            if kind == "files":
                if method == "PUT":
                    return volumes.upload(target, data, query.get("overwrite", "true").lower() != "false")
                if method in ("GET", "HEAD"):
                    return volumes.download(target, head=method == "HEAD")
                if method == "DELETE":
                    return volumes.delete_file(target)
            else:
                if method == "PUT":
                    return volumes.create_directory(target)
                if method == "HEAD":
                    return volumes.directory_metadata(target)
                if method == "GET":
                    return 200, volumes.list_directory(target, query.get("page_token"))
                if method == "DELETE":
                    return volumes.delete_directory(target)
            raise ApiError(405, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        except ApiError as exc:
            return exc.status, exc.body()

    def handle(self, method: str, path: str, params: JsonObject, authorization: str | None) -> tuple[int, JsonObject]:
        """The status and JSON body for one request, handled as its token's principal."""
        principal = self.principal(authorization)
        if not isinstance(principal, str):
            return principal
        try:
            if not self.legacy and path.startswith("/api/2.0/dbfs/"):
                raise dbfs_disabled(str(params.get("path") or params.get("source_path") or "/"))
            route = self._route(method, path)
            with acting_as(principal):
                return 200, route(params)
        except ApiError as exc:
            return exc.status, exc.body()

    def _route(self, method: str, path: str) -> Handler:
        path = re.sub(r"^/api/2\.1/jobs/", "/api/2.2/jobs/", path)
        path = re.sub(r"^/api/2\.1/clusters/", "/api/2.0/clusters/", path)
        path = re.sub(
            r"^/api/2\.0/unity-catalog/temporary-table-credentials$", UC + "temporary-table-credentials", path
        )
        found = self._routes.get((method, path))
        if found is not None:
            return found
        for route_method, pattern, handler in self._pattern_routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                groups = tuple(unquote(g) for g in match.groups())
                return lambda body: handler(groups, body)
        permissions = re.fullmatch(r"/api/2\.0/permissions/(.+)/([^/]+)", path)
        if permissions and method in ("GET", "PUT", "PATCH"):
            object_type, object_id = permissions.groups()
            return lambda body: self._permissions(method, object_type, object_id, body)
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _build_routes(self) -> dict[tuple[str, str], Handler]:
        dbfs, ws, jobs, uc = self.dbfs, self.workspace, self.jobs, self.unity
        sql_id = self.warehouse.warehouse_id
        d, j, w = "/api/2.0/dbfs/", "/api/2.2/jobs/", "/api/2.0/workspace/"
        return {
            ("POST", d + "create"): lambda b: dbfs.create(
                required(b, "path", str), optional(b, "overwrite", bool, False)
            ),
            ("POST", d + "add-block"): lambda b: dbfs.add_block(required(b, "handle", int), required(b, "data", str)),
            ("POST", d + "close"): lambda b: dbfs.close(required(b, "handle", int)),
            ("POST", d + "put"): lambda b: dbfs.put(
                required(b, "path", str), optional(b, "contents", str, None), optional(b, "overwrite", bool, False)
            ),
            ("GET", d + "read"): lambda b: dbfs.read(
                required(b, "path", str), optional(b, "offset", int, 0), optional(b, "length", int, None)
            ),
            ("GET", d + "get-status"): lambda b: dbfs.get_status(required(b, "path", str)),
            ("GET", d + "list"): lambda b: dbfs.list(required(b, "path", str)),
            ("POST", d + "mkdirs"): lambda b: dbfs.mkdirs(required(b, "path", str)),
            ("POST", d + "delete"): lambda b: dbfs.delete(
                required(b, "path", str), optional(b, "recursive", bool, False)
            ),
            ("POST", d + "move"): lambda b: dbfs.move(
                required(b, "source_path", str), required(b, "destination_path", str)
            ),
            ("POST", j + "runs/submit"): jobs.submit,
            ("GET", j + "runs/get"): lambda b: jobs.get(required(b, "run_id", int)),
            ("GET", j + "runs/list"): lambda b: jobs.list_runs(
                optional(b, "active_only", bool, False),
                optional(b, "completed_only", bool, False),
                optional(b, "job_id", int, None),
                optional(b, "limit", int, 25),
            ),
            ("POST", j + "runs/cancel"): lambda b: jobs.cancel(required(b, "run_id", int)),
            ("GET", j + "runs/get-output"): lambda b: jobs.get_output(required(b, "run_id", int)),
            ("POST", j + "create"): jobs.create,
            ("GET", j + "get"): lambda b: jobs.get_job(required(b, "job_id", int)),
            ("POST", j + "run-now"): jobs.run_now,
            ("GET", "/api/2.0/clusters/get"): lambda b: jobs.cluster_of(required(b, "cluster_id", str)).info(),
            ("GET", "/api/2.0/clusters/list"): lambda b: {"clusters": [jobs.cluster.info()]},
            ("POST", w + "import"): lambda b: ws.import_(
                required(b, "path", str),
                required(b, "content", str),
                optional(b, "format", str, "SOURCE"),
                optional(b, "language", str, None),
                optional(b, "overwrite", bool, False),
            ),
            ("GET", w + "get-status"): lambda b: ws.get_status(required(b, "path", str)),
            ("POST", w + "mkdirs"): lambda b: ws.mkdirs(required(b, "path", str)),
            ("GET", w + "list"): lambda b: ws.list(required(b, "path", str)),
            ("POST", w + "delete"): lambda b: ws.delete(
                required(b, "path", str), optional(b, "recursive", bool, False)
            ),
            ("POST", UC + "catalogs"): uc.create_catalog,
            ("GET", UC + "catalogs"): lambda b: uc.list_catalogs(),
            ("POST", UC + "schemas"): uc.create_schema,
            ("GET", UC + "schemas"): lambda b: uc.list_schemas(required(b, "catalog_name", str)),
            ("GET", UC + "tables"): lambda b: uc.list_tables(
                required(b, "catalog_name", str), required(b, "schema_name", str)
            ),
            ("GET", UC + "functions"): lambda b: uc.list_functions(
                required(b, "catalog_name", str), required(b, "schema_name", str)
            ),
            ("POST", UC + "temporary-table-credentials"): uc.temporary_table_credentials,
            ("POST", UC + "volumes"): uc.volumes.create,
            ("POST", UC + "storage-credentials"): uc.locations.create_credential,
            ("GET", UC + "storage-credentials"): lambda b: uc.locations.list_credentials(),
            ("POST", UC + "external-locations"): uc.locations.create,
            ("GET", UC + "external-locations"): lambda b: uc.locations.list(),
            ("GET", UC + "volumes"): lambda b: uc.volumes.list(
                required(b, "catalog_name", str), required(b, "schema_name", str)
            ),
            ("POST", "/api/2.0/sql/statements/"): self.warehouse.execute,
            ("POST", "/api/2.0/sql/statements"): self.warehouse.execute,
            ("GET", "/api/2.0/sql/warehouses"): lambda b: {"warehouses": [self.warehouse.info(sql_id, self.host)]},
        }

    def _build_pattern_routes(self) -> list[tuple[str, re.Pattern[str], PatternHandler]]:
        uc, sql = self.unity, self.warehouse
        routes: list[tuple[str, str, PatternHandler]] = [
            ("GET", UC + "catalogs/([^/]+)", lambda g, b: uc.get_catalog(g[0])),
            ("PATCH", UC + "catalogs/([^/]+)", lambda g, b: uc.update_catalog(g[0], b)),
            (
                "DELETE",
                UC + "catalogs/([^/]+)",
                lambda g, b: uc.delete_catalog(g[0], optional(b, "force", bool, False)),
            ),
            ("GET", UC + "schemas/([^/]+)", lambda g, b: uc.get_schema(g[0])),
            ("PATCH", UC + "schemas/([^/]+)", lambda g, b: uc.update_schema(g[0], b)),
            ("DELETE", UC + "schemas/([^/]+)", lambda g, b: uc.delete_schema(g[0], optional(b, "force", bool, False))),
            ("GET", UC + "tables/([^/]+)/exists", lambda g, b: uc.table_exists(g[0])),
            ("GET", UC + "tables/([^/]+)", lambda g, b: uc.get_table(g[0])),
            ("PATCH", UC + "tables/([^/]+)", lambda g, b: uc.update_table(g[0], b)),
            ("DELETE", UC + "tables/([^/]+)", lambda g, b: uc.delete_table(g[0])),
            ("GET", UC + "functions/([^/]+)", lambda g, b: uc.get_function(g[0])),
            ("DELETE", UC + "functions/([^/]+)", lambda g, b: uc.delete_function(g[0])),
            ("GET", UC + "permissions/([^/]+)/([^/]+)", lambda g, b: self._grants("get", g, b)),
            ("PATCH", UC + "permissions/([^/]+)/([^/]+)", lambda g, b: self._grants("update", g, b)),
            ("GET", UC + "effective-permissions/([^/]+)/([^/]+)", lambda g, b: self._grants("effective", g, b)),
            ("GET", UC + "volumes/([^/]+)", lambda g, b: uc.volumes.get(g[0])),
            ("GET", UC + "storage-credentials/([^/]+)", lambda g, b: uc.locations.get_credential(g[0])),
            ("GET", UC + "external-locations/([^/]+)", lambda g, b: uc.locations.get(g[0])),
            ("PATCH", UC + "external-locations/([^/]+)", lambda g, b: uc.locations.update(g[0], b)),
            ("DELETE", UC + "external-locations/([^/]+)", lambda g, b: uc.locations.delete(g[0])),
            ("PATCH", UC + "volumes/([^/]+)", lambda g, b: uc.volumes.update(g[0], b)),
            ("DELETE", UC + "volumes/([^/]+)", lambda g, b: uc.volumes.delete(g[0])),
            ("GET", UC + "entity-tag-assignments/([^/]+)/([^/]+)/tags", lambda g, b: uc.list_tags(g[0], g[1])),
            ("GET", UC + "entity-tag-assignments/([^/]+)/([^/]+)/tags/([^/]+)", lambda g, b: uc.get_tag(*g)),
            ("GET", "/api/2.0/sql/statements/([^/]+)", lambda g, b: sql.get(g[0])),
            ("POST", "/api/2.0/sql/statements/([^/]+)/cancel", lambda g, b: sql.cancel(g[0])),
            ("GET", "/api/2.0/sql/warehouses/([^/]+)", lambda g, b: sql.info(g[0], self.host)),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in routes]

    @property
    def host(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def _grants(self, action: str, groups: tuple[str, ...], body: JsonObject) -> JsonObject:
        """`permissions` and `effective-permissions` of a securable that exists; changing them needs ownership (or
        MANAGE, or a metastore admin)."""
        kind, full_name = securable_type(groups[0]), groups[1]
        if kind == "external_location":
            self.unity.locations.named(full_name)
        elif kind == "storage_credential":
            self.unity.locations.credential_named(full_name)
        elif kind == "metastore":
            if full_name != self.unity.metastore_id:
                raise not_found(f"Metastore '{full_name}' does not exist.")
        else:
            full_name = full_name.lower()
            self.unity.securable(kind, full_name)
        if action == "update":
            self.unity.access.require_owner(kind, full_name)
            changes = body.get("changes") or []
            if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
                raise bad_request("changes must be a list of PermissionsChange objects.")
            return self.unity.grants.update(kind, full_name, changes)
        principal = optional(body, "principal", str, None)
        if action == "effective":
            return self.unity.grants.effective(kind, full_name, principal)
        return self.unity.grants.get(kind, full_name, principal)

    def _permissions(self, method: str, object_type: str, object_id: str, body: JsonObject) -> JsonObject:
        """Permissions of an object: recorded (PUT replaces, PATCH adds), returned, not enforced."""
        if object_type == "clusters":
            self.jobs.cluster_of(object_id)
        elif object_type == "jobs" and not (object_id.isdigit() and self.jobs.has_job(int(object_id))):
            raise bad_request(f"Job {object_id} does not exist.", "RESOURCE_DOES_NOT_EXIST")
        key = f"/{object_type}/{object_id}"
        with self._lock:
            acl = [] if method == "PUT" else list(self.permissions.get(key, {}).get("access_control_list", []))
            if method != "GET":
                for entry in body.get("access_control_list") or []:
                    principal = {k: v for k, v in entry.items() if k != "permission_level"}
                    level = entry.get("permission_level")
                    acl.append({**principal, "all_permissions": [{"permission_level": level, "inherited": False}]})
            result = {"object_id": key, "object_type": object_type.rstrip("s"), "access_control_list": acl}
            self.permissions[key] = result
        return result


def _make_handler(server: StandinServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query))
            body: JsonObject | None = None
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path.startswith("/api/2.0/fs/"):
                self._serve_files(method, url.path, query, raw)
                return
            params: JsonObject = dict(query)
            status: int
            payload: JsonObject
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                status, payload = (
                    400,
                    {"error_code": "MALFORMED_REQUEST", "message": "Invalid JSON in the request body."},
                )
            else:
                body = parsed if raw else None
                params.update(parsed)
                try:
                    status, payload = server.handle(method, url.path, params, self.headers.get("Authorization"))
                except Exception as exc:  # a stand-in bug: reported as Databricks reports its own failures
                    status, payload = 500, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            headers = {h: self.headers[h] for h in RECORDED_HEADERS if self.headers.get(h)}
            server.record(RecordedRequest(method, url.path, query, headers, body, status))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve_files(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
            try:
                answer = server.handle_files(method, path, query, raw, self.headers.get("Authorization"))
            except Exception as exc:  # a stand-in bug, reported as Databricks reports its own failures
                answer = 500, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            headers = {h: self.headers[h] for h in RECORDED_HEADERS if self.headers.get(h)}
            if isinstance(answer, FileResponse):
                status, out_headers, data = answer.status, answer.headers, answer.data
            else:
                status, data = answer[0], json.dumps(answer[1]).encode()
                out_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
            server.record(RecordedRequest(method, path, query, headers, None, status, raw))
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            if "Content-Length" not in out_headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: object) -> None:  # the request log replaces access logs
            pass

    return _Handler
