"""One local Databricks stand-in per test session, with the SDK isolated from any `~/.databrickscfg`."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from medallion_platform.databricks.standin import LocalDatabricks

# The tiny package the step launcher zips and ships (`local_pipeline_package_path`); importable here too,
# so the jobs it defines are reconstructable on both sides.
REMOTE_CODE = Path(__file__).parent / "remote_code"


@pytest.fixture(scope="session")
def local_databricks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDatabricks]:
    """The stand-in, serving for the whole run; every driver it started is gone when it stops."""
    isolated = {"DATABRICKS_CONFIG_FILE": str(tmp_path_factory.mktemp("no-databrickscfg") / "absent")}
    saved = {k: os.environ.get(k) for k in isolated}
    os.environ.update(isolated)
    sys.path.insert(0, str(REMOTE_CODE))
    dbx = LocalDatabricks(root=tmp_path_factory.mktemp("databricks"), max_run_seconds=300)
    try:
        yield dbx.start()
    finally:
        dbx.stop()
        sys.path.remove(str(REMOTE_CODE))
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture
def workspace(local_databricks: LocalDatabricks) -> WorkspaceClient:
    """The real SDK client, pointed at the stand-in with a PAT."""
    return WorkspaceClient(host=local_databricks.host, token=local_databricks.token, auth_type="pat")
