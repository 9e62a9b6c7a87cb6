"""The FUSE mounts of a Databricks driver, emulated for real: Unity Catalog volumes at `/Volumes` (always), and,
on a legacy workspace with DBFS root, `/dbfs` (`dagster_pipes`' DBFS loader opens `/dbfs/<path>` and the
classic step launcher passes `/dbfs//<prefix>/…` parameters).

Strategies, first that works wins (`probe_dbfs_mount` tries them once, when the stand-in starts):

1. `unshare`: the driver runs in its own mount namespace (`unshare --mount`, util-linux) with the DBFS
   root bind-mounted on `/dbfs`; nothing changes outside that namespace except an empty `/dbfs` mount
   point created if missing. Needs root (CAP_SYS_ADMIN), as in CI containers. **This is the one that
   works on the development machine and in CI (root in a container).**
2. `proot -b <root>:/dbfs` (Debian package `proot`): unprivileged, through ptrace; slower.
3. Neither: runs end in INTERNAL_ERROR with a `state_message` saying what is needed.
"""

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medallion_devtools.standins.databricks.volumes import VolumeMount

__all__ = ["DbfsMount", "probe_dbfs_mount"]

MOUNT_POINT = "/dbfs"
VOLUMES_MOUNT_POINT = "/Volumes"


@dataclass(frozen=True)
class DbfsMount:
    """How drivers get `/Volumes` (the volumes' folder `volumes`) and, when `root` is given (legacy DBFS),
    `/dbfs`: `strategy` is "unshare", "proot" or "unavailable" (then `problem` says why)."""

    strategy: str
    root: Path | None
    volumes: Path
    problem: str = ""

    def wrap(
        self,
        command: Sequence[str],
        volumes: Sequence[VolumeMount] = (),
        view: Path | None = None,
        hidden: Sequence[Path] = (),
    ) -> list[str]:
        """`command` run with `view` on `/Volumes` (default: the whole volumes folder), each of `volumes` bound in
        it at `/Volumes/<catalog>/<schema>/<volume>`, read-only unless writable (`unshare`; proot cannot make a
        bind read-only, so there the file modes are the only guard), the DBFS root (if any) on `/dbfs`, and each
        folder of `hidden` covered by an empty read-only one (storage the driver reaches only through Spark)."""
        if volumes and view is None:
            raise ValueError("a driver's own /Volumes needs an empty folder for its mount points (`view`)")
        view = self.volumes if view is None else view
        for mount_point in (view, *(view / volume.relative for volume in volumes)):
            mount_point.mkdir(parents=True, exist_ok=True)
        hidden = [h for h in hidden if h.is_dir()]
        empty = view.parent / "hidden-storage"
        if hidden:
            empty.mkdir(exist_ok=True)
        target = f"{VOLUMES_MOUNT_POINT}/"
        if self.strategy == "unshare":
            # `sh` does the bind mounts inside the new namespace, then becomes the driver (exec: one process group)
            steps = [f"mount --bind {shlex.quote(str(view))} {VOLUMES_MOUNT_POINT}"]
            for volume in volumes:
                point = shlex.quote(target + volume.relative)
                steps.append(f"mount --bind {shlex.quote(str(volume.folder))} {point}")
                if not volume.writable:
                    steps.append(f"mount -o remount,bind,ro {point}")
            if self.root is not None:
                steps.append(f"mount --bind {shlex.quote(str(self.root))} {MOUNT_POINT}")
            for folder in hidden:
                steps.append(f"mount --bind {shlex.quote(str(empty))} {shlex.quote(str(folder))}")
                steps.append(f"mount -o remount,bind,ro {shlex.quote(str(folder))}")
            script = " && ".join([*steps, 'exec "$@"'])
            return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *command]
        if self.strategy == "proot":
            binds = ["-b", f"{view}:{VOLUMES_MOUNT_POINT}"]
            for volume in volumes:
                binds += ["-b", f"{volume.folder}:{target}{volume.relative}"]
            dbfs = [] if self.root is None else ["-b", f"{self.root}:{MOUNT_POINT}"]
            for folder in hidden:
                binds += ["-b", f"{empty}:{folder}"]
            return ["proot", *binds, *dbfs, *command]
        raise RuntimeError(self.problem)


def probe_dbfs_mount(root: Path | None, volumes: Path) -> DbfsMount:
    """The first strategy that mounts `volumes` on `/Volumes` (and `root`, if given, on `/dbfs`) here (checked by
    reading a probe file through it)."""
    probe = volumes / ".standin-mount-probe"
    probe.write_text("ok")
    tried: list[str] = []
    try:
        if shutil.which("unshare") and os.geteuid() == 0:
            os.makedirs(VOLUMES_MOUNT_POINT, exist_ok=True)
            if root is not None:
                os.makedirs(MOUNT_POINT, exist_ok=True)
            mount = DbfsMount("unshare", root, volumes)
            if _reads_probe(mount, probe.name):
                return mount
            tried.append("`unshare --mount` + bind mount failed (no CAP_SYS_ADMIN in this container?)")
        else:
            tried.append("`unshare --mount` needs root and util-linux")
        if shutil.which("proot"):
            mount = DbfsMount("proot", root, volumes)
            if _reads_probe(mount, probe.name):
                return mount
            tried.append("`proot -b` failed")
        else:
            tried.append("`proot` is not installed (Debian: apt-get install proot)")
    finally:
        probe.unlink(missing_ok=True)
    problem = "The stand-in cannot give drivers their /Volumes (and /dbfs) mounts: " + "; ".join(tried) + "."
    return DbfsMount("unavailable", root, volumes, problem)


def _reads_probe(mount: DbfsMount, name: str) -> bool:
    try:
        done = subprocess.run(
            mount.wrap(["cat", f"{VOLUMES_MOUNT_POINT}/{name}"]),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout == "ok"
