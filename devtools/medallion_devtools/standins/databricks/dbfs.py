"""DBFS 2.0 over a local folder: the semantics of `/api/2.0/dbfs/*` that the clients rely on.

`dbfs:/a`, `dbfs:///a`, `//a` and `/a` all name `<root>/a` (the step launcher sends `dbfs:///…`, the
Pipes log reader `dbfs:/…`). Streamed uploads (`create` → `add-block` → `close`) are staged beside the
root and appear at `close`, as on DBFS; files a driver writes through `/dbfs` are served while they
are being written (the step launcher reads its events file as the remote step appends to it).
"""

import base64
import itertools
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request, not_found

__all__ = ["MAX_BLOCK_BYTES", "Dbfs", "dbfs_path"]

MAX_BLOCK_BYTES = 1024 * 1024  # add-block, put and read all stop at 1 MB
DEFAULT_READ_BYTES = 512 * 1024  # `read` without `length` returns at most 0.5 MB, as documented


def dbfs_path(path: str) -> PurePosixPath:
    """The absolute DBFS path `path` names (`dbfs:` scheme and repeated slashes removed, `..` refused)."""
    raw = path.removeprefix("dbfs:")
    if not raw.startswith("/"):
        raise bad_request(f"Path must be absolute: {path}")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise bad_request(f"Path must not contain '..': {path}")
    return PurePosixPath("/", *parts)


@dataclass
class _Upload:
    path: PurePosixPath
    staged: Path


class Dbfs:
    """DBFS rooted at `root`; `staging` holds open uploads (outside the root, so they stay invisible)."""

    def __init__(self, root: Path, staging: Path) -> None:
        self.root = root
        self.staging = staging
        root.mkdir(parents=True, exist_ok=True)
        staging.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[int, _Upload] = {}
        self._handles = itertools.count(1_000_001)
        self._lock = threading.Lock()

    def local(self, path: str | PurePosixPath) -> Path:
        """The local file behind a DBFS path."""
        p = path if isinstance(path, PurePosixPath) else dbfs_path(path)
        return self.root.joinpath(*p.parts[1:])

    def _info(self, path: PurePosixPath, local: Path) -> JsonObject:
        stat = local.stat()
        is_dir = local.is_dir()
        return {
            "path": str(path),
            "is_dir": is_dir,
            "file_size": 0 if is_dir else stat.st_size,
            "modification_time": int(stat.st_mtime * 1000),
        }

    def _existing(self, path: str) -> tuple[PurePosixPath, Path]:
        p = dbfs_path(path)
        local = self.local(p)
        if not local.exists():
            raise not_found(f"No file or directory exists on path {p}.")
        return p, local

    def _prepare_write(self, path: str, overwrite: bool) -> Path:
        p = dbfs_path(path)
        local = self.local(p)
        if local.is_dir():
            raise bad_request(f"A directory already exists at the input path {p}.", "RESOURCE_ALREADY_EXISTS")
        if local.exists() and not overwrite:
            raise bad_request(f"A file or directory already exists at the input path {p}.", "RESOURCE_ALREADY_EXISTS")
        self._mkdirs(p.parent)
        return local

    def _mkdirs(self, p: PurePosixPath) -> None:
        for ancestor in [*reversed(p.parents), p]:
            local = self.local(ancestor)
            if local.exists() and not local.is_dir():
                raise bad_request(
                    f"Cannot create directory {p}: a file exists at {ancestor}.", "RESOURCE_ALREADY_EXISTS"
                )
        self.local(p).mkdir(parents=True, exist_ok=True)

    # -- the API, one method per endpoint -------------------------------------------------------

    def create(self, path: str, overwrite: bool) -> JsonObject:
        """`create`: opens a streamed upload, returns `{handle}`."""
        p = dbfs_path(path)
        self._prepare_write(path, overwrite)
        with self._lock:
            handle = next(self._handles)
            staged = self.staging / f"upload-{handle}"
            staged.write_bytes(b"")
            self._uploads[handle] = _Upload(p, staged)
        return {"handle": handle}

    def add_block(self, handle: int, data: str) -> JsonObject:
        """`add-block`: appends one base64 block (≤ 1 MB) to an open upload."""
        block = _decode(data, "data")
        upload = self._upload(handle)
        with upload.staged.open("ab") as out:
            out.write(block)
        return {}

    def close(self, handle: int) -> JsonObject:
        """`close`: the uploaded file appears at its path."""
        upload = self._upload(handle)
        with self._lock:
            self._uploads.pop(handle, None)
        local = self.local(upload.path)
        self._mkdirs(upload.path.parent)
        upload.staged.replace(local)
        return {}

    def _upload(self, handle: int) -> _Upload:
        with self._lock:
            upload = self._uploads.get(handle)
        if upload is None:
            raise not_found(f"The handle {handle} does not exist.")
        return upload

    def put(self, path: str, contents: str | None, overwrite: bool) -> JsonObject:
        """`put`: a whole file in one call, base64 `contents` ≤ 1 MB."""
        if contents is None:
            raise bad_request("The stand-in accepts `put` with base64 `contents` only (no multipart form).")
        data = _decode(contents, "contents")
        local = self._prepare_write(path, overwrite)
        local.write_bytes(data)
        return {}

    def read(self, path: str, offset: int, length: int | None) -> JsonObject:
        """`read`: `{bytes_read, data}` from `offset`, at most `length` (≤ 1 MB) bytes."""
        length = DEFAULT_READ_BYTES if length is None else length
        if length > MAX_BLOCK_BYTES:
            raise bad_request(
                f"Cannot read more than {MAX_BLOCK_BYTES} bytes at a time; got {length}.", "MAX_READ_SIZE_EXCEEDED"
            )
        if length < 0 or offset < 0:
            raise bad_request(f"offset and length must not be negative; got {offset}, {length}.")
        p, local = self._existing(path)
        if local.is_dir():
            raise bad_request(f"The path {p} is a directory.")
        with local.open("rb") as f:
            f.seek(offset)
            data = f.read(length)
        return {"bytes_read": len(data), "data": base64.b64encode(data).decode("ascii")}

    def get_status(self, path: str) -> JsonObject:
        """`get-status`: `{path, is_dir, file_size, modification_time}`."""
        p, local = self._existing(path)
        return self._info(p, local)

    def list(self, path: str) -> JsonObject:
        """`list`: the entries of a directory (a file lists as itself); `{}` for an empty directory."""
        p, local = self._existing(path)
        if not local.is_dir():
            return {"files": [self._info(p, local)]}
        entries = [self._info(p / child.name, child) for child in sorted(local.iterdir())]
        return {"files": entries} if entries else {}

    def mkdirs(self, path: str) -> JsonObject:
        """`mkdirs`: the directory and its parents (an existing directory is fine)."""
        self._mkdirs(dbfs_path(path))
        return {}

    def delete(self, path: str, recursive: bool) -> JsonObject:
        """`delete`: a file, an empty directory, or with `recursive` a tree; a missing path is no error."""
        p = dbfs_path(path)
        local = self.local(p)
        if p == PurePosixPath("/"):
            raise bad_request("Cannot delete the DBFS root.")
        if local.is_dir():
            if any(local.iterdir()) and not recursive:
                raise bad_request(f"The directory {p} is not empty; pass recursive=true.", "IO_ERROR")
            shutil.rmtree(local)
        elif local.exists():
            local.unlink()
        return {}

    def move(self, source_path: str, destination_path: str) -> JsonObject:
        """`move`: a file or a directory tree to a path that does not exist yet."""
        _, source = self._existing(source_path)
        dest = dbfs_path(destination_path)
        if self.local(dest).exists():
            raise bad_request(
                f"A file or directory already exists at the input path {dest}.", "RESOURCE_ALREADY_EXISTS"
            )
        self._mkdirs(dest.parent)
        source.rename(self.local(dest))
        return {}


def _decode(data: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise bad_request(f"{name} is not valid base64.") from None
    if len(raw) > MAX_BLOCK_BYTES:
        raise ApiError(
            400, "MAX_BLOCK_SIZE_EXCEEDED", f"The block of {len(raw)} bytes exceeds the maximum of {MAX_BLOCK_BYTES}."
        )
    return raw
