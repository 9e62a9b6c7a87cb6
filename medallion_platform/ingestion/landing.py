"""The landing layout: `landing/<dataset>/YYYY/MM/DD/HH/<object>` (Firehose) or `…/YYYY/MM/DD/<export>`.

The producer, the forwarder, the batch copy, the sensor and raw ingestion all use this module.
"""

import datetime as dt
import gzip
import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from medallion_platform.contracts import Contract
from medallion_platform.lake.storage import filesystem_for, join
from medallion_platform.settings import Settings

__all__ = ["LandingFile", "dataset_for_key", "landing_date", "landing_key", "list_landing_files", "read_landing_file"]

_DATED = re.compile(r"^landing/(?P<dataset>[a-z][a-z0-9_]*)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?:\d{2}/)?[^/]+$")


@dataclass(frozen=True)
class LandingFile:
    """One landed object: its key relative to the raw zone root, size and landing date."""

    key: str
    size: int
    landing_date: str


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


def list_landing_files(
    settings: Settings, contract: Contract, *, date: str | None = None
) -> tuple[list[LandingFile], list[str]]:
    """Landed objects of a dataset (optionally of one landing date), and keys outside the layout."""
    fs, base = filesystem_for(settings.landing_root, settings)
    prefix = contract.source.landing_prefix.rstrip("/")
    if date:
        prefix = f"{prefix}/{date.replace('-', '/')}"
    infos = fs.get_file_info(pafs.FileSelector(join(base, prefix), recursive=True, allow_not_found=True))
    files, unrecognised = [], []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        key = info.path[len(base) :].lstrip("/")
        if key.rsplit("/", 1)[-1].startswith((".", "_")):
            continue  # temporary and marker files (e.g. `.part`, `_SUCCESS`) are not data
        day = landing_date(key)
        if day is None:
            unrecognised.append(key)
        else:
            files.append(LandingFile(key=key, size=info.size or 0, landing_date=day))
    return sorted(files, key=lambda f: f.key), sorted(unrecognised)


def read_landing_file(settings: Settings, contract: Contract, key: str) -> bytes:
    """The object's bytes, gunzipped when it is gzip (by suffix or magic number)."""
    fs, base = filesystem_for(settings.landing_root, settings)
    with fs.open_input_stream(join(base, key), compression=None) as stream:
        data = stream.read()
    compression = contract.source.compression
    if compression == "gzip" or (compression == "auto" and data[:2] == b"\x1f\x8b"):
        data = gzip.decompress(data)
    return data
