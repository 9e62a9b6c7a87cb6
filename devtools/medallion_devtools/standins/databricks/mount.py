"""The `/dbfs` FUSE mount of a Databricks driver, emulated for real: `dagster_pipes` opens `/dbfs/<path>`
(hard-coded) and the step launcher passes `/dbfs//<prefix>/…` parameters, so a driver must see the DBFS
root at `/dbfs`.

Strategies, first that works wins (`probe_dbfs_mount` tries them once, when the stand-in starts):

1. `unshare`: the driver runs in its own mount namespace (`unshare --mount`, util-linux) with the DBFS
   root bind-mounted on `/dbfs`; nothing changes outside that namespace except an empty `/dbfs` mount
   point created if missing. Needs root (CAP_SYS_ADMIN), as in CI containers. **This is the one that
   works on the development machine and in CI (root in a container).**
2. `proot -b <root>:/dbfs` (Debian package `proot`): unprivileged, through ptrace; slower.
3. Neither: runs end in INTERNAL_ERROR with a `state_message` saying what is needed.
"""

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DbfsMount", "probe_dbfs_mount"]

MOUNT_POINT = "/dbfs"
# `sh` does the bind mount inside the new namespace, then becomes the driver (exec: one process, one group).
_BIND_THEN_EXEC = 'mount --bind "$1" /dbfs && shift && exec "$@"'


@dataclass(frozen=True)
class DbfsMount:
    """How drivers get `/dbfs`: `strategy` is "unshare", "proot" or "unavailable" (then `problem` says why)."""

    strategy: str
    root: Path
    problem: str = ""

    def wrap(self, command: Sequence[str]) -> list[str]:
        """`command` run with the DBFS root mounted on `/dbfs`."""
        if self.strategy == "unshare":
            unshare = ["unshare", "--mount", "--propagation", "private", "--"]
            return [*unshare, "sh", "-c", _BIND_THEN_EXEC, "sh", str(self.root), *command]
        if self.strategy == "proot":
            return ["proot", "-b", f"{self.root}:{MOUNT_POINT}", *command]
        raise RuntimeError(self.problem)


def probe_dbfs_mount(root: Path) -> DbfsMount:
    """The first strategy that mounts `root` on `/dbfs` here (checked by reading a probe file through it)."""
    probe = root / ".standin-mount-probe"
    probe.write_text("ok")
    tried: list[str] = []
    try:
        if shutil.which("unshare") and os.geteuid() == 0:
            os.makedirs(MOUNT_POINT, exist_ok=True)
            mount = DbfsMount("unshare", root)
            if _reads_probe(mount, probe.name):
                return mount
            tried.append("`unshare --mount` + bind mount failed (no CAP_SYS_ADMIN in this container?)")
        else:
            tried.append("`unshare --mount` needs root and util-linux")
        if shutil.which("proot"):
            mount = DbfsMount("proot", root)
            if _reads_probe(mount, probe.name):
                return mount
            tried.append("`proot -b` failed")
        else:
            tried.append("`proot` is not installed (Debian: apt-get install proot)")
    finally:
        probe.unlink(missing_ok=True)
    problem = "The stand-in cannot give drivers a /dbfs mount: " + "; ".join(tried) + "."
    return DbfsMount("unavailable", root, problem)


def _reads_probe(mount: DbfsMount, name: str) -> bool:
    try:
        done = subprocess.run(
            mount.wrap(["cat", f"{MOUNT_POINT}/{name}"]), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout == "ok"
