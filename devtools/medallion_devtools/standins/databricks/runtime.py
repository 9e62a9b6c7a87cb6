"""What the Databricks runtime gives a task's code as globals: `dbutils`, `spark` and `sc`.

With `SPARK_REMOTE` set (the stand-in's cluster engine, `cluster_engine.py`), `spark` is a Spark Connect
session to it, as on a standard access mode or serverless cluster: no `sparkContext`, no RDDs, no JVM (`sc`
is still bound, as on a dedicated cluster, and fails when used, as Spark Connect does). The session takes
the cluster's SQL configuration (`spark.sql.*`, `spark.databricks.*`) from `spark-defaults.conf`.

Without it, `spark` and `sc` are lazy local PySpark: the JVM starts on first use (an attribute of `spark`/`sc`,
`SparkSession.builder.getOrCreate()`, or `SparkSession.getActiveSession()`, which on Databricks always
finds the cluster's session: `PipesDbfsMessageWriter` relies on that). Every session gets the cluster's
configuration from the `spark-defaults.conf` in `$SPARK_CONF_DIR`, which the stand-in writes per run.
"""

import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DBUtils", "LazySpark", "NotebookExit"]

DBFS_MOUNT = "/dbfs"


class NotebookExit(Exception):
    """Raised by `dbutils.notebook.exit(value)`: the notebook ends successfully with `value` as its result."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class FileInfo(NamedTuple):
    """An entry of `dbutils.fs.ls`, shaped like Databricks' `FileInfo`."""

    path: str
    name: str
    size: int
    modificationTime: int


def _local(path: str) -> Path:
    """A `dbutils.fs` path on the driver's filesystem: `dbfs:/x` and `/x` are under `/dbfs`, `file:/x` is local."""
    if path.startswith("file:"):
        return Path(path.removeprefix("file:"))
    return Path(DBFS_MOUNT, path.removeprefix("dbfs:").lstrip("/"))


class _Fs:
    """`dbutils.fs` over the driver's `/dbfs` mount."""

    def ls(self, path: str) -> list[FileInfo]:
        """The entries of a directory (directories end in `/`, as in Databricks)."""
        base = path.rstrip("/")
        out = []
        for child in sorted(_local(path).iterdir()):
            stat = child.stat()
            name = child.name + ("/" if child.is_dir() else "")
            out.append(
                FileInfo(f"{base}/{name}", name, 0 if child.is_dir() else stat.st_size, int(stat.st_mtime * 1000))
            )
        return out

    def head(self, path: str, maxBytes: int = 65536) -> str:
        """The first `maxBytes` of a file, as text."""
        with _local(path).open("rb") as f:
            return f.read(maxBytes).decode("utf-8", errors="replace")

    def put(self, path: str, contents: str, overwrite: bool = False) -> bool:
        """Writes `contents` (text) to a file."""
        target = _local(path)
        if target.exists() and not overwrite:
            raise FileExistsError(f"File {path} already exists; pass overwrite=True")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(contents)
        return True

    def mkdirs(self, path: str) -> bool:
        """Creates a directory and its parents."""
        _local(path).mkdir(parents=True, exist_ok=True)
        return True

    def rm(self, path: str, recurse: bool = False) -> bool:
        """Removes a file, or with `recurse` a directory tree."""
        target = _local(path)
        if target.is_dir():
            shutil.rmtree(target) if recurse else target.rmdir()
        elif target.exists():
            target.unlink()
        else:
            return False
        return True

    def cp(self, source: str, dest: str, recurse: bool = False) -> bool:
        """Copies a file, or with `recurse` a directory tree."""
        src, dst = _local(source), _local(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, dirs_exist_ok=True) if recurse else shutil.copyfile(src, dst)
        return True

    def mv(self, source: str, dest: str, recurse: bool = False) -> bool:
        """Moves a file or directory."""
        dst = _local(dest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(_local(source), dst)
        return True


class _Widgets:
    """`dbutils.widgets`: a notebook task's `base_parameters`, then widget defaults."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._defaults: dict[str, str] = {}

    def get(self, name: str) -> str:
        """The parameter's value; an error naming it if neither the task nor a widget defines it."""
        if name in self._values:
            return self._values[name]
        if name in self._defaults:
            return self._defaults[name]
        raise ValueError(f"InputWidgetNotDefined: No input widget named {name} is defined")

    def getArgument(self, name: str, defaultValue: str | None = None) -> str | None:
        """`get`, or `defaultValue` for an undefined one (deprecated on Databricks, still used)."""
        try:
            return self.get(name)
        except ValueError:
            return defaultValue

    def getAll(self) -> dict[str, str]:
        """All parameters and widget values."""
        return {**self._defaults, **self._values}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        """Defines a text widget (its default applies when the task does not pass the parameter)."""
        self._defaults[name] = defaultValue

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        """Defines a dropdown widget."""
        self._defaults[name] = defaultValue

    def removeAll(self) -> None:
        """Removes the widget definitions."""
        self._defaults.clear()


class _Secrets:
    """`dbutils.secrets` from the stand-in's secret scopes."""

    def __init__(self, scopes: Mapping[str, Mapping[str, str]]) -> None:
        self._scopes = scopes

    def get(self, scope: str, key: str) -> str:
        """A secret's value; an error like Databricks' for an unknown scope or key."""
        if key not in self._scopes.get(scope, {}):
            raise ValueError(f"IllegalArgumentException: Secret does not exist with scope: {scope} and key: {key}")
        return self._scopes[scope][key]

    def listScopes(self) -> list[str]:
        """The scope names."""
        return sorted(self._scopes)


class _Notebook:
    """`dbutils.notebook`: `exit(value)` only."""

    def exit(self, value: str) -> None:
        """Ends the notebook successfully, with `value` as its result (`runs/get-output` `notebook_output`)."""
        raise NotebookExit(str(value))


class DBUtils:
    """The `dbutils` of a task: `fs`, `widgets`, `secrets`, `notebook`."""

    def __init__(self, *, widgets: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]) -> None:
        self.fs = _Fs()
        self.widgets = _Widgets(widgets)
        self.secrets = _Secrets(secrets)
        self.notebook = _Notebook()


def _session_conf() -> dict[str, str]:
    """The SQL settings of the cluster's `spark-defaults.conf`, which a Spark Connect session sets itself."""
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    defaults = Path(conf_dir, "spark-defaults.conf") if conf_dir else None
    if defaults is None or not defaults.is_file():
        return {}
    out = {}
    for line in defaults.read_text().splitlines():
        key, _, value = line.strip().partition(" ")
        if key.startswith(("spark.sql.", "spark.databricks.")) and not key.startswith("spark.sql.warehouse"):
            out[key] = value.strip()
    return out


class LazySpark:
    """The cluster's SparkSession, started the first time anything asks for it."""

    def __init__(self) -> None:
        self._session: SparkSession | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether a session was started."""
        return self._session is not None

    def session(self) -> "SparkSession":
        """The session (started now if it was not: `spark-defaults.conf` gives it the cluster's conf)."""
        with self._lock:
            if self._session is None:
                from pyspark.sql import SparkSession

                remote = os.environ.get("SPARK_REMOTE")
                if remote:
                    self._session = SparkSession.builder.remote(remote).getOrCreate()
                    for key, value in _session_conf().items():
                        self._session.conf.set(key, value)
                else:
                    self._session = SparkSession.builder.getOrCreate()
            return self._session

    def install_active_session_hook(self) -> None:
        """Makes `SparkSession.getActiveSession()` start the cluster session when none is active, as a
        Databricks driver always has one. A no-op when pyspark is not installed."""
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            return
        original = SparkSession.getActiveSession
        lazy = self

        def get_active_session(cls: type[SparkSession]) -> SparkSession | None:
            active = original()
            return active if active is not None or lazy.started else lazy.session()

        SparkSession.getActiveSession = classmethod(get_active_session)  # type: ignore[method-assign,assignment]

    def stop(self) -> None:
        """Stops the session if one was started."""
        if self._session is not None:
            self._session.stop()

    def globals(self) -> dict[str, Any]:
        """The `spark` and `sc` globals: proxies that start the session on first attribute access."""
        return {"spark": _Proxy(self, "session"), "sc": _Proxy(self, "context")}


class _Proxy:
    """`spark` or `sc` before anyone has used it."""

    def __init__(self, spark: LazySpark, what: str) -> None:
        object.__setattr__(self, "_spark", spark)
        object.__setattr__(self, "_what", what)

    def _target(self) -> Any:
        session = self._spark.session()
        return session if self._what == "session" else session.sparkContext

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return repr(self._target()) if self._spark.started else f"<lazy Databricks {self._what}: not started>"
