"""One local AWS emulator per test session; one fresh stack (unique names) per test that needs one."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from medallion_devtools.local_aws import (
    LocalAws,
    LocalResources,
    create_resources,
    local_aws_environ,
    start_emulator,
)

from medallion_platform.naming import ResourceNames, resource_names
from medallion_platform.settings import Settings


@dataclass
class Stack:
    """A stack on the emulator: its names, variables and settings."""

    aws: LocalAws
    resources: LocalResources
    environ: dict[str, str]
    settings: Settings

    @property
    def names(self) -> ResourceNames:
        return self.resources.names

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def keys(self, bucket_role: str, prefix: str = "") -> list[str]:
        s3 = self.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.names.buckets[bucket_role], Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    aws = start_emulator()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture
def stack(local_aws: LocalAws, tmp_path: Path) -> Stack:
    """A fresh stack: unique names are cheaper than resetting the emulator between tests."""
    names = resource_names(f"t{uuid.uuid4().hex[:10]}")
    resources = create_resources(local_aws, names)
    environ = {**local_aws_environ(local_aws, resources), "MEDALLION_DATA_DIR": str(tmp_path / "data")}
    return Stack(local_aws, resources, environ, Settings.from_env(environ))


@pytest.fixture
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack, with its variables in the process environment (for code that calls `Settings.from_env()`)."""
    for key, value in stack.environ.items():
        monkeypatch.setenv(key, value)
    return stack
