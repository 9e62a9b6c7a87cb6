"""Personal data outside raw and trusted: a keyed hash in place of every value a contract names in `pii`.

Raw and trusted hold personal data in clear (raw is readable only by the platform principal; trusted is
governed by its grants and tags). Every other place a source's values are copied to — its quarantine today —
keeps a keyed hash instead: `sha256:` + SHA-256 of (key, a unit separator, the value), in the PySpark API so
every engine computes the same text. Equal values give equal hashes under one key (a person's bad rows can
still be matched with each other and, by the key's holder, with trusted), and nobody without the key can
test a guess. A record that names personal data is not kept whole (`_raw_record` is null): raw holds it at
`_source_file`/`_source_line`.

The key is `MEDALLION_PII_HASH_KEY`; unset, one is generated once per lake and kept beside it in
`<data dir>/_secrets/pii_hash_key` (mode 0600), so the hashes of one lake stay comparable across runs.
"""

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medallion_platform.settings import Settings

__all__ = ["HASH_PREFIX", "PiiHasher", "pii_hasher"]

HASH_PREFIX = "sha256:"
_SEPARATOR = "\x1f"  # ASCII unit separator: the key and the value cannot run into each other


@dataclass(frozen=True)
class PiiHasher:
    """The keyed hash of one lake. `repr` never shows the key."""

    key: str = field(repr=False)

    def hashed(self, F: Any, value: Any) -> Any:
        """The keyed hash of a text column expression (null stays null)."""
        return F.concat(F.lit(HASH_PREFIX), F.sha2(F.concat(F.lit(self.key + _SEPARATOR), value), 256))

    def hash_text(self, value: str) -> str:
        """The keyed hash of one value, as `hashed` computes it on a column."""
        return HASH_PREFIX + hashlib.sha256(f"{self.key}{_SEPARATOR}{value}".encode()).hexdigest()


def pii_hasher(settings: Settings) -> PiiHasher:
    """The hasher of this deployment: `MEDALLION_PII_HASH_KEY`, else the lake's own generated key."""
    if settings.pii_hash_key is not None:
        return PiiHasher(settings.pii_hash_key.get_secret_value())
    path = settings.data_dir / "_secrets" / "pii_hash_key"
    return PiiHasher(_stored_key(path))


def _stored_key(path: Path) -> str:
    """The key in `path`, created (0600, exclusively: concurrent runs agree on one key) when missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _written(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path.read_text().strip()


def _written(path: Path) -> str:
    """The key another process is writing (a bounded wait for its 64 characters)."""
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        key = path.read_text().strip()
        if len(key) == 64:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"the PII hash key at {path} is incomplete; remove it or set MEDALLION_PII_HASH_KEY")
