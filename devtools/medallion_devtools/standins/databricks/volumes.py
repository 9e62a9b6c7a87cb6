"""Unity Catalog Volumes and the Files API over a local folder: `/api/2.1/unity-catalog/volumes` and
`/api/2.0/fs/{files,directories}/Volumes/<catalog>/<schema>/<volume>/…`, as databricks-sdk's `w.volumes` and
`w.files` call them.

Each volume is a folder, `<root>/<catalog>/<schema>/<volume>`. A driver sees at `/Volumes/<catalog>/<schema>/<volume>`
the volumes its cluster's principal may read (`mounts_for`, `mount.py`), read-only without WRITE VOLUME: a
cluster's Unity Catalog FUSE mount checks the same privileges as the Files API. A path outside an existing volume
is refused as the Files API refuses it. Files API errors are Databricks': 404 NOT_FOUND, 409 ALREADY_EXISTS,
400 INVALID_PARAMETER_VALUE, 403 PERMISSION_DENIED: reading a file or listing a directory needs READ VOLUME,
writing or deleting WRITE VOLUME (with USE CATALOG and USE SCHEMA), creating a volume CREATE VOLUME on its schema
(`access.py`).
"""

import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path, PurePosixPath

from medallion_devtools.standins.databricks.access import Access, acting_as, caller
from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request

__all__ = ["MOUNT_POINT", "FileResponse", "VolumeMount", "Volumes"]

MOUNT_POINT = "/Volumes"
LIST_PAGE = 1000  # list_directory_contents returns at most 1000 entries a page, as documented


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


@dataclass
class _Volume:
    catalog_name: str
    schema_name: str
    name: str
    owner: str
    volume_type: str
    storage_location: str
    comment: str | None = None
    volume_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: int = field(default_factory=_now_ms)

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}.{self.name}"

    def info(self, metastore_id: str) -> JsonObject:
        info: JsonObject = {
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "name": self.name,
            "full_name": self.full_name,
            "volume_type": self.volume_type,
            "storage_location": self.storage_location,
            "owner": self.owner,
            "volume_id": self.volume_id,
            "metastore_id": metastore_id,
            "created_at": self.created_at,
            "created_by": self.owner,
            "updated_at": self.created_at,
            "updated_by": self.owner,
        }
        if self.comment is not None:
            info["comment"] = self.comment
        return info


@dataclass(frozen=True)
class FileResponse:
    """A Files API answer that is not JSON: raw bytes (a download) or headers only (HEAD)."""

    status: int
    headers: dict[str, str]
    data: bytes = b""


@dataclass(frozen=True)
class VolumeMount:
    """One volume as a driver sees it: `folder` at `/Volumes/<relative>`, read-only unless `writable`."""

    folder: Path
    relative: str
    writable: bool


def not_found(message: str) -> ApiError:
    """The Files API's 404."""
    return ApiError(404, "NOT_FOUND", message)


class Volumes:
    """The volumes of a metastore and the files in them.

    Args:
        root: the folder behind `/Volumes`.
        schema_exists: raises the REST 404 when `catalog.schema` does not exist (the metastore's lookup).
        access: the metastore's privilege checks.
        metastore_id: stamped on every `VolumeInfo`.
        admin: who owns what the stand-in's set-up creates.
        require_location: the external location covering a URL on which the caller holds a privilege, refused
            otherwise (an EXTERNAL volume's `storage_location` needs CREATE EXTERNAL VOLUME there).
    """

    def __init__(
        self,
        root: Path,
        schema_exists: Callable[[str], object],
        access: Access,
        metastore_id: str,
        admin: str,
        require_location: Callable[[str, str], object],
    ) -> None:
        self.root = root
        self._require_location = require_location
        root.mkdir(parents=True, exist_ok=True)
        self._schema_exists = schema_exists
        self._access = access
        self._admin = admin
        self._metastore_id = metastore_id
        self._volumes: dict[str, _Volume] = {}
        self._lock = threading.RLock()

    # -- Unity Catalog volumes -------------------------------------------------------------------

    def create(self, body: JsonObject) -> JsonObject:
        """`POST volumes`: a MANAGED volume (EXTERNAL ones need `storage_location`)."""
        names = [body.get(k) for k in ("catalog_name", "schema_name", "name")]
        if not all(isinstance(n, str) and n for n in names):
            raise bad_request("catalog_name, schema_name and name are required.")
        catalog, schema, name = (str(n).lower() for n in names)
        volume_type = body.get("volume_type") or "MANAGED"
        if volume_type not in ("MANAGED", "EXTERNAL"):
            raise bad_request(f"Invalid volume_type: {volume_type}; MANAGED or EXTERNAL.")
        location = body.get("storage_location")
        if volume_type == "EXTERNAL" and not location:
            raise bad_request("An EXTERNAL volume needs a storage_location.")
        if volume_type == "MANAGED" and location:
            raise bad_request("A MANAGED volume takes no storage_location.")
        self._schema_exists(f"{catalog}.{schema}")
        self._access.require("schema", f"{catalog}.{schema}", "CREATE_VOLUME")
        if location:
            self._require_location(str(location), "CREATE_EXTERNAL_VOLUME")
        volume = _Volume(
            catalog,
            schema,
            name,
            caller() or self._admin,
            volume_type,
            str(location or f"{self.root}/{catalog}/{schema}/{name}"),
            body.get("comment"),
        )
        with self._lock:
            if volume.full_name in self._volumes:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"Volume '{volume.full_name}' already exists.")
            self._volumes[volume.full_name] = volume
            self._folder(volume).mkdir(parents=True, exist_ok=True)
        return volume.info(self._metastore_id)

    def named(self, full_name: str) -> _Volume:
        """The volume `catalog.schema.volume` (the REST 404 when missing)."""
        with self._lock:
            found = self._volumes.get(full_name.lower())
        if found is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Volume '{full_name.lower()}' does not exist.")
        return found

    def find(self, full_name: str) -> _Volume | None:
        with self._lock:
            return self._volumes.get(full_name.lower())

    def get(self, full_name: str) -> JsonObject:
        volume = self.named(full_name)
        self._access.require_any("volume", volume.full_name, "READ_VOLUME", "BROWSE")
        return volume.info(self._metastore_id)

    def list(self, catalog_name: str, schema_name: str) -> JsonObject:
        self._schema_exists(f"{catalog_name}.{schema_name}".lower())
        self._access.require("schema", f"{catalog_name}.{schema_name}".lower(), "USE_SCHEMA")
        prefix = f"{catalog_name}.{schema_name}.".lower()
        with self._lock:
            volumes = [v for k, v in sorted(self._volumes.items()) if k.startswith(prefix)]
        visible = [v for v in volumes if self._access.may_see("volume", v.full_name, "READ_VOLUME", "BROWSE")]
        return {"volumes": [v.info(self._metastore_id) for v in visible]}

    def update(self, full_name: str, body: JsonObject) -> JsonObject:
        volume = self.named(full_name)
        self._access.require_owner("volume", volume.full_name)
        with self._lock:
            if "comment" in body:
                volume.comment = body["comment"]
            if body.get("owner"):
                volume.owner = str(body["owner"])
        return volume.info(self._metastore_id)

    def delete(self, full_name: str) -> JsonObject:
        volume = self.named(full_name)
        self._access.require_owner("volume", volume.full_name)
        with self._lock:
            del self._volumes[volume.full_name]
            shutil.rmtree(self._folder(volume), ignore_errors=True)
        return {}

    def mounts_for(self, principal: str | None) -> tuple[VolumeMount, ...]:
        """The volumes a driver running as `principal` sees: those it may read (USE CATALOG, USE SCHEMA and READ
        VOLUME, or ownership), writable where it may also write. None is the stand-in's own set-up: every volume."""
        with self._lock:
            volumes = sorted(self._volumes.values(), key=lambda v: v.full_name)
        mounts = []
        with acting_as(principal):
            for volume in volumes:
                if self._access.may_see("volume", volume.full_name, "READ_VOLUME"):
                    writable = self._access.may_see("volume", volume.full_name, "WRITE_VOLUME")
                    relative = f"{volume.catalog_name}/{volume.schema_name}/{volume.name}"
                    mounts.append(VolumeMount(self._folder(volume), relative, writable))
        return tuple(mounts)

    def _folder(self, volume: _Volume) -> Path:
        return self.root / volume.catalog_name / volume.schema_name / volume.name

    # -- the Files API ---------------------------------------------------------------------------

    def local(self, path: str, *, directory: bool = False, write: bool = False) -> Path:
        """The local file (or with `directory`, folder: the volume's root included) behind
        `/Volumes/<catalog>/<schema>/<volume>/…`; the volume must exist, and the caller may read it (or `write`)."""
        parts = [x for x in PurePosixPath(path).parts[1:] if x not in ("", ".")]
        if not path.startswith(MOUNT_POINT + "/") or ".." in parts or len(parts) < (4 if directory else 5):
            raise bad_request(
                f"Invalid path {path}: the Files API takes /Volumes/<catalog>/<schema>/<volume>/<path>.",
            )
        volume = self.named(".".join(parts[1:4]))
        self._access.require("volume", volume.full_name, "WRITE_VOLUME" if write else "READ_VOLUME")
        return self.root.joinpath(*parts[1:])

    def upload(self, path: str, data: bytes, overwrite: bool) -> FileResponse:
        """`PUT /fs/files{path}`: the whole file (parents created)."""
        local = self.local(path, write=True)
        if local.is_dir():
            raise ApiError(409, "ALREADY_EXISTS", f"A directory already exists at {path}.")
        if local.exists() and not overwrite:
            raise ApiError(409, "ALREADY_EXISTS", f"The file {path} already exists.")
        local.parent.mkdir(parents=True, exist_ok=True)
        staged = local.with_name(f".{local.name}.upload-{uuid.uuid4().hex}")
        staged.write_bytes(data)
        staged.replace(local)  # appears whole, as an upload does
        return FileResponse(204, {})

    def download(self, path: str, *, head: bool = False) -> FileResponse:
        """`GET`/`HEAD /fs/files{path}`: the bytes, `content-length`, `content-type`, `last-modified`."""
        local = self.local(path)
        if not local.is_file():
            raise not_found(f"The file {path} does not exist.")
        data = local.read_bytes()
        headers = {
            "Content-Length": str(len(data)),
            "Content-Type": "application/octet-stream",
            "Last-Modified": formatdate(local.stat().st_mtime, usegmt=True),
        }
        return FileResponse(200, headers, b"" if head else data)

    def delete_file(self, path: str) -> FileResponse:
        local = self.local(path, write=True)
        if not local.is_file():
            raise not_found(f"The file {path} does not exist.")
        local.unlink()
        return FileResponse(204, {})

    def create_directory(self, path: str) -> FileResponse:
        local = self.local(path, directory=True, write=True)
        if local.exists() and not local.is_dir():
            raise ApiError(409, "ALREADY_EXISTS", f"A file already exists at {path}.")
        local.mkdir(parents=True, exist_ok=True)
        return FileResponse(204, {})

    def directory_metadata(self, path: str) -> FileResponse:
        if not self.local(path, directory=True).is_dir():
            raise not_found(f"The directory {path} does not exist.")
        return FileResponse(200, {})

    def delete_directory(self, path: str) -> FileResponse:
        local = self.local(path, directory=True, write=True)
        if not local.is_dir():
            raise not_found(f"The directory {path} does not exist.")
        if any(local.iterdir()):
            raise bad_request(f"The directory {path} is not empty.", "DIRECTORY_NOT_EMPTY")
        local.rmdir()
        return FileResponse(204, {})

    def list_directory(self, path: str, page_token: str | None) -> JsonObject:
        """`GET /fs/directories{path}`: `{contents: [DirectoryEntry], next_page_token}`, 1000 a page."""
        base = path.rstrip("/")
        local = self.local(base, directory=True)
        if not local.is_dir():
            raise not_found(f"The directory {path} does not exist.")
        children = sorted(c for c in local.iterdir() if not c.name.startswith("."))
        start = int(page_token) if page_token and page_token.isdigit() else 0
        page = children[start : start + LIST_PAGE]
        contents = []
        for child in page:
            stat = child.stat()
            entry: JsonObject = {"path": f"{base}/{child.name}", "name": child.name, "is_directory": child.is_dir()}
            if not child.is_dir():
                entry |= {"file_size": stat.st_size, "last_modified": int(stat.st_mtime * 1000)}
            contents.append(entry)
        out: JsonObject = {"contents": contents} if contents else {}
        if start + LIST_PAGE < len(children):
            out["next_page_token"] = str(start + LIST_PAGE)
        return out
