"""Storage URIs and file systems for the zones: local folders or S3 buckets, same code path."""

import pyarrow.fs as pafs

from medallion_platform.lake.files import file_system
from medallion_platform.settings import Settings

__all__ = ["filesystem_for", "join"]


def join(root: str, *parts: str) -> str:
    """Joins URI or path parts with single slashes."""
    out = root.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem_for(uri: str, settings: Settings) -> tuple[pafs.FileSystem, str]:
    """(Arrow file system, path inside it) for a local path or an `s3://` URI."""
    return file_system(uri, settings.storage_options, default_region=settings.aws_region)
