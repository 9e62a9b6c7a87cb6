"""Landing files for the trials: a shared source corpus, copies of it, re-deliveries and poison objects."""

import gzip
import shutil
from pathlib import Path

from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data

__all__ = ["POISON_KINDS", "add_poison", "copy_landing", "generate_landing", "landing_dir", "redeliver"]

REDELIVERY_MARK = "-redelivered"


def landing_dir(data_dir: Path) -> Path:
    """`<data dir>/raw/landing`: where objects land on a local lake."""
    return data_dir / "raw" / "landing"


def generate_landing(data_dir: Path, *, orders: int, seed: int) -> dict[str, int]:
    """`medallion generate` into `data_dir`; returns the records written per dataset."""
    manifest = generate_sample_data(data_dir / "raw", SampleSpec(seed=seed, orders=orders))
    return dict(manifest.raw_rows)


def copy_landing(source: Path, target: Path) -> None:
    """A new data directory `target` holding only `source`'s landing objects (links copied as links)."""
    shutil.copytree(landing_dir(source), landing_dir(target), symlinks=True)


def _redelivered_name(name: str) -> str:
    for suffix in (".jsonl.gz", ".json.gz", ".csv.gz", ".gz", ".jsonl", ".json", ".csv"):
        if name.endswith(suffix):
            return f"{name.removesuffix(suffix)}{REDELIVERY_MARK}{suffix}"
    return f"{name}{REDELIVERY_MARK}"


def redeliver(data_dir: Path) -> int:
    """Copies every landed regular file to a new key in the same dated folder (as an at-least-once
    producer re-sending a whole day would); returns how many objects were re-delivered."""
    files = [p for p in sorted(landing_dir(data_dir).rglob("*")) if p.is_file() and not p.is_symlink()]
    for path in files:
        shutil.copy2(path, path.with_name(_redelivered_name(path.name)))
    return len(files)


def _first_hour_folder(data_dir: Path) -> Path:
    hours = sorted(p for p in (landing_dir(data_dir) / "order_events").glob("*/*/*/*") if p.is_dir())
    if not hours:
        raise FileNotFoundError(f"no order_events landing folder under {landing_dir(data_dir)}")
    return hours[0]


def _truncated_gzip(folder: Path) -> Path:
    path = folder / "poison-truncated.gz"
    whole = gzip.compress(b"".join(b'{"event_id": "evt-%016x"}\n' % i for i in range(2000)))
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _undecodable(folder: Path) -> Path:
    path = folder / "poison-undecodable"
    path.write_bytes(b"\xff\xfe\x00\x81" * 256 + b"\n")
    return path


def _directory(folder: Path) -> Path:
    path = folder / "poison-directory"
    path.mkdir()
    return path


def _dangling_link(folder: Path) -> Path:
    path = folder / "poison-dangling-link"
    path.symlink_to(folder / "poison-no-such-object")
    return path


def _too_deep(folder: Path) -> Path:
    path = folder / "extra" / "poison-too-deep"
    path.parent.mkdir()
    path.write_text('{"event_id": "evt-00000000000000ff"}\n')
    return path


POISON_KINDS = {
    "truncated gzip": _truncated_gzip,
    "undecodable bytes": _undecodable,
    "directory named like an object": _directory,
    "dangling symlink": _dangling_link,
    "file one folder deeper than the layout": _too_deep,
}
"""Objects that must be isolated (recorded with their key and reason) without blocking the rest."""


def add_poison(data_dir: Path, count: int) -> list[str]:
    """Adds the first `count` poison kinds to the order_events landing prefix; returns their landing keys."""
    folder = _first_hour_folder(data_dir)
    made = [make(folder) for make in list(POISON_KINDS.values())[:count]]
    return [p.relative_to(data_dir / "raw").as_posix() for p in made]
