"""Storage URIs and file systems for the zones: local folders or S3 buckets, same code path."""

from urllib.parse import urlparse

import pyarrow.fs as pafs

from medallion_platform.settings import AwsAccess, Settings

__all__ = ["file_system", "filesystem_for", "join"]


def file_system(
    uri: str, storage_options: dict[str, str] | None, *, default_region: str | None = None
) -> tuple[pafs.FileSystem, str]:
    """(Arrow file system, path inside it) for a local path or an `s3://` URI, from delta-rs style
    storage options (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), (parsed.path if parsed.scheme else uri).rstrip("/")
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"unsupported storage URI {uri!r}: use a local path or s3://bucket/prefix")
    access = AwsAccess.from_storage_options(storage_options or {}, default_region=default_region)
    return pafs.S3FileSystem(**access.arrow_s3()), f"{parsed.netloc}{parsed.path}".rstrip("/")


def join(root: str, *parts: str) -> str:
    """Joins URI or path parts with single slashes."""
    out = root.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem_for(uri: str, settings: Settings) -> tuple[pafs.FileSystem, str]:
    """(Arrow file system, path inside it) for a local path or an `s3://` URI."""
    return file_system(uri, settings.storage_options, default_region=settings.aws_region)
