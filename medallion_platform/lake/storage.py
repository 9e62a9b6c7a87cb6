"""Storage URIs and file systems for the zones: local folders or S3 buckets, same code path."""

from urllib.parse import urlparse

import pyarrow.fs as pafs

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
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        options = settings.storage_options
        endpoint = options.get("AWS_ENDPOINT_URL")
        kwargs: dict[str, object] = {"region": options.get("AWS_REGION") or settings.aws_region or "us-east-1"}
        if endpoint:
            endpoint_url = urlparse(endpoint)
            kwargs["endpoint_override"] = endpoint_url.netloc
            kwargs["scheme"] = endpoint_url.scheme or "https"
        if options.get("AWS_ACCESS_KEY_ID"):
            kwargs["access_key"] = options["AWS_ACCESS_KEY_ID"]
            kwargs["secret_key"] = options.get("AWS_SECRET_ACCESS_KEY")
            kwargs["session_token"] = options.get("AWS_SESSION_TOKEN")
        return pafs.S3FileSystem(**kwargs), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), (parsed.path if parsed.scheme else uri).rstrip("/")
    raise ValueError(f"unsupported storage URI {uri!r}: use a local path or s3://bucket/prefix")
