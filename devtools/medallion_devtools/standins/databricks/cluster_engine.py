"""The stand-in cluster's engine: one Sail Spark Connect server (`pysail`), native Delta, whose catalog is the
stand-in's own Unity Catalog (Sail's `unity` provider), started with the stand-in and stopped with it.

That is the shape of a Databricks cluster in standard access mode or serverless: the driver's `spark` is a
Spark Connect session (no `sparkContext`, no RDDs, no JVM) and tables are read and written by their
three-level name `<catalog>.<schema>.<table>`. Sail reaches storage with its own `AWS_*` variables (Unity
Catalog vends it no credentials), so the stand-in's S3 options are handed to the server's environment.

Sail reads `DATABRICKS_HOST` (and `UNITY_HOST`/`UC_HOST`) from its environment and lets it REPLACE the
configured Unity Catalog URI, so the server starts with none of those variables.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["DEFAULT_CLUSTER_CATALOGS", "SailServer"]

DEFAULT_CLUSTER_CATALOGS = ("medallion",)
START_SECONDS = 30.0
STOP_SECONDS = 10.0
# Variables Sail would take over the configured catalog URI or that carry the caller's identity.
_DROPPED = ("DATABRICKS_", "UNITY_", "UC_", "AWS_", "SAIL_", "SPARK_", "PYSPARK_")
# delta-rs storage option → the variable Sail's object store reads.
_AWS_VARIABLES = {
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT",
    "AWS_ENDPOINT": "AWS_ENDPOINT",
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
    "AWS_REGION": "AWS_REGION",
    "AWS_ALLOW_HTTP": "AWS_ALLOW_HTTP",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SailServer:
    """One `sail spark server` on 127.0.0.1 whose catalogs are `catalogs` of the Unity Catalog at `unity_uri`.

    Args:
        unity_uri: the Unity Catalog API base, `http://127.0.0.1:<port>/api/2.1/unity-catalog`.
        token: the token Sail sends to Unity Catalog (the cluster's identity).
        catalogs: the Unity Catalog catalogs the cluster sees, each under its own name.
        work_dir: where the server's log and checkpoints go.
        storage_options: the stand-in's delta-rs S3 options, given to Sail as `AWS_*` variables.
    """

    def __init__(
        self,
        *,
        unity_uri: str,
        token: str,
        catalogs: Sequence[str],
        work_dir: Path,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self._unity_uri = unity_uri
        self._token = token
        self._catalogs = tuple(catalogs)
        self._work_dir = work_dir
        self._storage_options = dict(storage_options or {})
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def remote(self) -> str:
        """The Spark Connect URL drivers connect to: `sc://127.0.0.1:<port>`."""
        if self._process is None:
            raise RuntimeError("the cluster's Spark Connect server is not running")
        return f"sc://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        """The server's environment: the inherited basics, the catalog list, S3 access; no Databricks host."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
        entries = [
            "{"
            + ", ".join(
                [
                    'type="unity"',
                    f"name={_toml_string(name)}",
                    f"uri={_toml_string(self._unity_uri)}",
                    f"default_catalog={_toml_string(name)}",
                    f"token={_toml_string(self._token)}",
                ]
            )
            + "}"
            for name in self._catalogs
        ]
        entries.append('{type="memory", name="spark_catalog", initial_database=["default"]}')
        env["SAIL_CATALOG__LIST"] = "[" + ", ".join(entries) + "]"
        env["SAIL_CATALOG__DEFAULT_CATALOG"] = "spark_catalog"
        checkpoints = self._work_dir / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        env["SAIL_EXECUTION__CHECKPOINT__PATH"] = checkpoints.as_uri()
        for option, value in self._storage_options.items():
            variable = _AWS_VARIABLES.get(option.upper())
            if variable is not None:
                env[variable] = value
        return env

    def start(self) -> "SailServer":
        """Starts the server and waits (at most `START_SECONDS`) until its port answers."""
        sail = shutil.which("sail", path=str(Path(sys.executable).parent)) or shutil.which("sail")
        if sail is None:
            raise RuntimeError(
                "the stand-in cluster needs Sail: pip install pysail (a dependency of medallion-devtools)"
            )
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        log = (self._work_dir / "sail.log").open("ab")
        self._process = subprocess.Popen(
            [sail, "spark", "server", "--ip", "127.0.0.1", "--port", str(self.port)],
            env=self.environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Sail exited with {self._process.returncode}: see {self._work_dir / 'sail.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Sail did not open 127.0.0.1:{self.port} within {START_SECONDS:g} s")

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `STOP_SECONDS`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)
