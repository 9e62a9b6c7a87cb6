"""The landing layout: `landing/<dataset>/YYYY/MM/DD/HH/<object>` (Firehose) or `…/YYYY/MM/DD/<export>`.

The producer, the forwarder, the batch copy, the sensor and raw ingestion all use this module.

What cannot be read as a landing object is named here, with a reason, instead of being skipped in
silence or failing the whole batch (`RejectedObject`): a file outside the layout, a directory where
an object belongs, a dangling symbolic link, something that is not a file (a FIFO would block the
reader), a gzip that does not decompress, bytes that are not UTF-8 text, an object that cannot be read.
"""

import datetime as dt
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs

from medallion_platform.contracts import Contract
from medallion_platform.errors import UnreadableObject
from medallion_platform.ingestion.landing_objects import LandingFile, RejectedObject
from medallion_platform.ingestion.landing_text import unpack
from medallion_platform.lake.storage import filesystem_for, join
from medallion_platform.settings import Settings

__all__ = [
    "REJECTION_REASONS",
    "LandingFile",
    "LandingScan",
    "RejectedObject",
    "UnreadableObject",
    "dataset_for_key",
    "landing_date",
    "landing_key",
    "list_landing_files",
    "read_landing_file",
    "scan_landing",
]

_FOLDERS = re.compile(r"^\d{4}(?:/\d{2}(?:/\d{2}(?:/\d{2})?)?)?$")
"""The folders the layout has below a dataset's prefix: YYYY, YYYY/MM, YYYY/MM/DD and the hour HH."""

REJECTION_REASONS = {
    "outside_layout": "a file outside landing/<dataset>/YYYY/MM/DD[/HH]/<object>",
    "directory": "a directory where the layout has an object (or no folder)",
    "dangling_link": "a symbolic link whose target does not exist",
    "not_a_file": "neither a file nor a directory (a FIFO, socket or device)",
    "unreadable": "the object could not be read",
    "corrupt_gzip": "gzip data that does not decompress (truncated or damaged)",
    "undecodable": "no line of the object is UTF-8 text",
}
"""Why a landing object is rejected: the `reason` of a `RejectedObject`."""

_DATED = re.compile(r"^landing/(?P<dataset>[a-z][a-z0-9_]*)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?:\d{2}/)?[^/]+$")


@dataclass
class LandingScan:
    """What a dataset's landing prefix holds: the objects in the layout, and what raw cannot take."""

    files: list[LandingFile] = field(default_factory=list)
    rejected: list[RejectedObject] = field(default_factory=list)


def landing_key(dataset: str, when: dt.datetime, name: str, *, hourly: bool = True) -> str:
    """The key an object lands under; hourly folders for streams (as Firehose writes them)."""
    folder = when.strftime("%Y/%m/%d/%H" if hourly else "%Y/%m/%d")
    return f"landing/{dataset}/{folder}/{name}"


def landing_date(key: str) -> str | None:
    """`YYYY-MM-DD` of a landing key, or None if the key is not in the landing layout."""
    match = _DATED.match(key)
    if not match:
        return None
    try:
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"])).isoformat()
    except ValueError:
        return None


def dataset_for_key(key: str, contracts: dict[str, Contract]) -> str | None:
    """The dataset whose landing prefix holds `key`, or None."""
    for contract in contracts.values():
        if key.startswith(contract.source.landing_prefix):
            return contract.name
    return None


def _fingerprint(size: int | None, mtime_ns: int | None) -> str:
    return f"{size or 0}@{mtime_ns or 0}"


@dataclass(frozen=True)
class _Entry:
    key: str
    kind: str
    """file, directory, dangling_link or not_a_file"""
    size: int | None
    mtime_ns: int | None


def _local_entries(root: str, base: str) -> Iterator[_Entry]:
    """Everything under local folder `root`, dangling links included (Arrow's listing leaves them out)."""
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = os.path.join(folder, name)
            key = path[len(base) :].lstrip("/")
            try:
                info = os.stat(path)
            except FileNotFoundError:
                yield _Entry(key, "dangling_link" if os.path.islink(path) else "not_a_file", None, None)
                continue
            except OSError:
                yield _Entry(key, "not_a_file", None, None)
                continue
            kind = "file" if stat.S_ISREG(info.st_mode) else "directory" if stat.S_ISDIR(info.st_mode) else "not_a_file"
            yield _Entry(key, kind, info.st_size, info.st_mtime_ns)


def _entries(fs: pafs.FileSystem, root: str, base: str) -> Iterator[_Entry]:
    if isinstance(fs, pafs.LocalFileSystem):
        yield from _local_entries(root, base)
        return
    kinds = {pafs.FileType.File: "file", pafs.FileType.Directory: "directory"}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        key = info.path[len(base) :].lstrip("/")
        yield _Entry(key, kinds.get(info.type, "not_a_file"), info.size, info.mtime_ns)


def scan_landing(settings: Settings, contract: Contract, *, date: str | None = None) -> LandingScan:
    """A dataset's landed objects (optionally of one landing date), and the entries raw cannot take.

    Names starting with `.` or `_` (temporary and marker files such as `.part` or `_SUCCESS`, and what
    lies in such folders) are not data and are left out.
    """
    fs, base = filesystem_for(settings.landing_root, settings)
    dataset_prefix = contract.source.landing_prefix.rstrip("/")
    prefix = f"{dataset_prefix}/{date.replace('-', '/')}" if date else dataset_prefix
    scan = LandingScan()
    for entry in _entries(fs, join(base, prefix), base):
        inside = entry.key[len(dataset_prefix) :].strip("/")
        if any(part.startswith((".", "_")) for part in inside.split("/")):
            continue
        fingerprint = _fingerprint(entry.size, entry.mtime_ns)
        day = landing_date(entry.key)
        if entry.kind == "file" and day is not None:
            scan.files.append(LandingFile(entry.key, entry.size or 0, day, fingerprint))
        elif entry.kind == "directory" and _FOLDERS.match(inside):
            continue
        else:
            reason = {"file": "outside_layout"}.get(entry.kind, entry.kind)
            scan.rejected.append(RejectedObject(entry.key, reason, REJECTION_REASONS[reason], fingerprint, day))
    scan.files.sort(key=lambda f: f.key)
    scan.rejected.sort(key=lambda r: r.key)
    return scan


def list_landing_files(
    settings: Settings, contract: Contract, *, date: str | None = None
) -> tuple[list[LandingFile], list[str]]:
    """Landed objects of a dataset (optionally of one landing date), and the keys of entries raw cannot
    take (outside the layout, directories, dangling links, non-files)."""
    scan = scan_landing(settings, contract, date=date)
    return scan.files, [r.key for r in scan.rejected]


def landing_sizes(settings: Settings, keys: Sequence[str]) -> dict[str, int | None]:
    """The size in bytes of each landing object (None where it is gone), as the ingest log records it."""
    fs, base = filesystem_for(settings.landing_root, settings)
    infos = fs.get_file_info([join(base, key) for key in keys]) if keys else []
    return {key: info.size if info.type == pafs.FileType.File else None for key, info in zip(keys, infos, strict=True)}


def read_landing_file(settings: Settings, contract: Contract, key: str) -> bytes:
    """The object's bytes, gunzipped when it is gzip (by suffix or magic number), without a UTF-8 BOM.

    Raises `UnreadableObject` when the object cannot be read or does not decompress.
    """
    fs, base = filesystem_for(settings.landing_root, settings)
    try:
        with fs.open_input_stream(join(base, key), compression=None) as stream:
            data = stream.read()
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableObject("unreadable", str(exc) or type(exc).__name__) from exc
    return unpack(data, contract.source.compression)
