"""The workspace tree behind `/api/2.0/workspace/*`: directories, notebooks and files, on a local folder.

A SOURCE notebook is kept exactly as imported (`# Databricks notebook source` header, `# COMMAND ----------`
separators: both are Python comments, so the driver runs the file as it is). `/Workspace/Users/x` and
`/Users/x` name the same object, as in Databricks.
"""

import base64
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from medallion_devtools.standins.databricks.errors import JsonObject, bad_request, not_found

__all__ = ["NOTEBOOK_HEADER", "Workspace", "WorkspaceObject", "workspace_path"]

NOTEBOOK_HEADER = "# Databricks notebook source"
ObjectType = Literal["DIRECTORY", "NOTEBOOK", "FILE"]


def workspace_path(path: str) -> PurePosixPath:
    """The canonical workspace path (`/Workspace` prefix dropped, `..` refused)."""
    if not path.startswith("/"):
        raise bad_request(f"Path ({path}) doesn't start with '/'")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise bad_request(f"Path must not contain '..': {path}")
    if parts[:1] == ["Workspace"]:
        parts = parts[1:]
    return PurePosixPath("/", *parts)


@dataclass(frozen=True)
class WorkspaceObject:
    """One object: its type, language (notebooks), id and the local file holding it."""

    path: PurePosixPath
    object_type: ObjectType
    object_id: int
    local: Path
    language: str | None = None

    def info(self) -> JsonObject:
        """The `ObjectInfo` JSON of `get-status` and `list`."""
        info: JsonObject = {"path": str(self.path), "object_type": self.object_type, "object_id": self.object_id}
        if self.language:
            info["language"] = self.language
        return info


class Workspace:
    """The workspace tree, with `/Users` and `/Shared` present from the start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids = itertools.count(100_001)
        self._objects: dict[PurePosixPath, WorkspaceObject] = {}
        self._lock = threading.Lock()
        for path in ("/", "/Users", "/Shared"):
            self._mkdir(PurePosixPath(path))

    def _mkdir(self, p: PurePosixPath) -> None:
        local = self.root.joinpath(*p.parts[1:])
        local.mkdir(parents=True, exist_ok=True)
        self._objects.setdefault(p, WorkspaceObject(p, "DIRECTORY", next(self._ids), local))

    def get(self, path: str) -> WorkspaceObject:
        """The object at `path` (404 RESOURCE_DOES_NOT_EXIST if there is none)."""
        p = workspace_path(path)
        with self._lock:
            found = self._objects.get(p)
        if found is None:
            raise not_found(f"Path ({p}) doesn't exist.")
        return found

    def get_status(self, path: str) -> JsonObject:
        """`get-status`."""
        return self.get(path).info()

    def mkdirs(self, path: str) -> JsonObject:
        """`mkdirs`: the directory and its parents."""
        p = workspace_path(path)
        with self._lock:
            for ancestor in [*reversed(p.parents), p]:
                existing = self._objects.get(ancestor)
                if existing is not None and existing.object_type != "DIRECTORY":
                    raise bad_request(f"{ancestor} exists and is not a directory", "RESOURCE_ALREADY_EXISTS")
                self._mkdir(ancestor)
        return {}

    def list(self, path: str) -> JsonObject:
        """`list`: the children of a directory."""
        directory = self.get(path)
        with self._lock:
            children = [
                o.info() for p, o in sorted(self._objects.items()) if p.parent == directory.path and p != p.parent
            ]
        return {"objects": children} if children else {}

    def import_(self, path: str, content: str, format_: str, language: str | None, overwrite: bool) -> JsonObject:
        """`import`: a SOURCE notebook (or, with format AUTO, a notebook or a file by its header)."""
        p = workspace_path(path)
        try:
            source = base64.b64decode(content, validate=True)
        except ValueError:
            raise bad_request("content is not valid base64.") from None
        is_notebook_source = source.lstrip().startswith(NOTEBOOK_HEADER.encode())
        if format_ == "SOURCE":
            if language is None:
                raise bad_request("The language of a SOURCE notebook is required.")
            object_type: ObjectType = "NOTEBOOK"
        elif format_ == "AUTO":
            object_type = "NOTEBOOK" if is_notebook_source else "FILE"
            if object_type == "NOTEBOOK":
                p = p.with_suffix("") if p.suffix == ".py" else p
                language = language or "PYTHON"
        else:
            raise bad_request(f"The stand-in imports SOURCE and AUTO formats only, not {format_}.")
        if object_type == "NOTEBOOK" and language != "PYTHON":
            raise bad_request(f"The stand-in runs PYTHON notebooks only, not {language}.")
        with self._lock:
            parent = self._objects.get(p.parent)
            if parent is None or parent.object_type != "DIRECTORY":
                raise not_found(f"The parent folder ({p.parent}) does not exist.")
            existing = self._objects.get(p)
            if existing is not None and (existing.object_type == "DIRECTORY" or not overwrite):
                raise bad_request(f"Path ({p}) already exists.", "RESOURCE_ALREADY_EXISTS")
            local = self.root.joinpath(*p.parts[1:])
            local = local.with_name(local.name + ".py") if object_type == "NOTEBOOK" else local
            local.write_bytes(source)
            object_id = existing.object_id if existing else next(self._ids)
            self._objects[p] = WorkspaceObject(p, object_type, object_id, local, language)
        return {}

    def delete(self, path: str, recursive: bool) -> JsonObject:
        """`delete`: an object, or with `recursive` a directory tree."""
        target = self.get(path)
        with self._lock:
            inside = [p for p in self._objects if p == target.path or target.path in p.parents]
            if len(inside) > 1 and not recursive:
                raise bad_request(f"Folder ({target.path}) is not empty.", "DIRECTORY_NOT_EMPTY")
            for p in inside:
                self._objects.pop(p)
        return {}
