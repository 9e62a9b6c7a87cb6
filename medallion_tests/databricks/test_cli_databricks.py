"""`medallion local-databricks up` as users run it: the exports it prints work with the real SDK, and
Ctrl-C or SIGTERM stops it within a bounded time, also while it is still printing."""

import base64
import contextlib
import io
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied

pytestmark = [pytest.mark.databricks, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = (
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_CONFIG_FILE",
    "MEDALLION_ENV",
    "MEDALLION_DATABRICKS_CLUSTER_ID",
    "MEDALLION_DATABRICKS_VOLUME",
    "MEDALLION_DATABRICKS_POLL_SECONDS",
    "MEDALLION_DATABRICKS_WAREHOUSE_ID",
)


@contextlib.contextmanager
def _up(tmp_path: Path, *args: str, as_background_job: bool = False) -> Iterator[subprocess.Popen[str]]:
    """The command in its own process, killed at the end if still running; stderr to a file (never a full pipe).
    `as_background_job`: started with Ctrl-C ignored, as a script's `... &` starts it."""
    ignore_ctrl_c = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if as_background_job else None
    with (tmp_path / "local-databricks-up.stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medallion_platform.cli", "local-databricks", "up", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=ignore_ctrl_c,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _exports(proc: subprocess.Popen[str], until: str) -> dict[str, str]:
    exports: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded by the test timeout; the command prints these first
        if line.startswith("export "):
            key, value = line.removeprefix("export ").strip().split("=", 1)
            exports[key] = value
            if key == until:
                break
    return exports


def test_local_databricks_up_prints_working_exports_and_stops_on_sigterm(tmp_path):
    root = tmp_path / "dbx"
    with _up(tmp_path, "--root", str(root)) as proc:
        exports = _exports(proc, "MEDALLION_DATABRICKS_WAREHOUSE_ID")
        assert tuple(exports) == EXPORTED
        assert exports["DATABRICKS_HOST"].startswith("http://127.0.0.1:")
        assert exports["DATABRICKS_AUTH_TYPE"] == "pat" and exports["MEDALLION_ENV"] == "databricks"
        assert not Path(exports["DATABRICKS_CONFIG_FILE"]).exists()
        assert exports["MEDALLION_DATABRICKS_VOLUME"] == "/Volumes/medallion/platform/staging"

        w = WorkspaceClient(host=exports["DATABRICKS_HOST"], token=exports["DATABRICKS_TOKEN"], auth_type="pat")
        assert w.clusters.get(exports["MEDALLION_DATABRICKS_CLUSTER_ID"]).state is not None
        w.files.upload(exports["MEDALLION_DATABRICKS_VOLUME"] + "/hello.txt", io.BytesIO(b"hi"))
        assert (root / "volumes" / "medallion" / "platform" / "staging" / "hello.txt").read_bytes() == b"hi"
        with pytest.raises(PermissionDenied, match="DBFS root is disabled"):
            w.dbfs.put("/hello.txt", contents=base64.b64encode(b"hi").decode())

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_local_databricks_up_legacy_serves_dbfs_for_classic_workspaces(tmp_path):
    root = tmp_path / "dbx"
    with _up(tmp_path, "--root", str(root), "--legacy") as proc:
        exports = _exports(proc, "MEDALLION_DATABRICKS_WAREHOUSE_ID")
        assert exports["MEDALLION_DATABRICKS_DBFS_ROOT"] == str(root / "dbfs")
        w = WorkspaceClient(host=exports["DATABRICKS_HOST"], token=exports["DATABRICKS_TOKEN"], auth_type="pat")
        w.dbfs.put("/hello.txt", contents=base64.b64encode(b"hi").decode())
        assert (root / "dbfs" / "hello.txt").read_bytes() == b"hi"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_local_databricks_up_stops_on_ctrl_c_while_printing_even_as_a_background_job(tmp_path):
    with _up(tmp_path, as_background_job=True) as proc:
        assert "DATABRICKS_HOST" in _exports(proc, "DATABRICKS_HOST")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
