"""Staging in a Unity Catalog volume: what the `databricks` environment ships to a cluster (the step launcher's
package, task file, pickled step and its events; the notebook's code zip) goes through the Files API into
`/Volumes/<catalog>/<schema>/<volume>/…`, which a Unity Catalog cluster reads as files. New Databricks accounts
have no DBFS root ("New accounts are provisioned without access to these features"); DBFS staging stays
selectable for classic workspaces (`MEDALLION_DATABRICKS_STAGING=dbfs`).
"""

import io
from typing import IO, Any, BinaryIO, cast

from dagster_databricks.databricks import DatabricksClient
from dagster_databricks.databricks_pyspark_step_launcher import DatabricksPySparkStepLauncher

__all__ = ["VolumeFilesClient", "VolumeStepLauncher", "upload_to_volume"]


def upload_to_volume(client: Any, path: str, data: bytes) -> None:
    """Puts `data` at the volume path `path` (Files API; parents are created by the upload)."""
    client.files.upload(path, io.BytesIO(data), overwrite=True)


class VolumeFilesClient(DatabricksClient):
    """dagster-databricks' client with its two file calls on the Files API instead of DBFS."""

    def read_file(self, dbfs_path: str, block_size: int = 1024**2) -> bytes:
        """The bytes of the volume file `dbfs_path`; a missing file raises the error DBFS would
        (RESOURCE_DOES_NOT_EXIST), which the step launcher takes as "no events yet"."""
        from databricks.sdk.errors import DatabricksError, NotFound

        try:
            response = self.workspace_client.files.download(dbfs_path)
        except NotFound as exc:
            raise DatabricksError(str(exc), error_code="RESOURCE_DOES_NOT_EXIST") from None
        return response.contents.read() if response.contents is not None else b""

    def put_file(self, file_obj: IO[bytes], dbfs_path: str, overwrite: bool = False, block_size: int = 1024**2) -> None:
        """Uploads `file_obj` to the volume file `dbfs_path`."""
        self.workspace_client.files.upload(dbfs_path, cast("BinaryIO", file_obj), overwrite=overwrite)


class VolumeStepLauncher(DatabricksPySparkStepLauncher):
    """dagster-databricks' step launcher with its staging in a Unity Catalog volume: `staging_prefix` is a
    `/Volumes/<catalog>/<schema>/<volume>/<folder>` path; uploads, the task's `python_file` and parameters, and the
    event reads all name volume paths, which the remote entry point opens as files (a cluster's `/Volumes`)."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        if not self.staging_prefix.startswith("/Volumes/") or self.staging_prefix.count("/") < 5:
            raise ValueError(
                f"staging in a volume needs a /Volumes/<catalog>/<schema>/<volume>/<folder> path, "
                f"not {self.staging_prefix}"
            )
        # the runner's one file client (dagster-databricks keeps it in `_client`), swapped for the Files API one
        runner = self.databricks_runner
        files = VolumeFilesClient(host=config["databricks_host"], token=config.get("databricks_token"))
        runner._client = files  # no public hook for the client's file calls

    def _volume_path(self, run_id: str, step_key: str, filename: str) -> str:
        return "/".join([self.staging_prefix, run_id, self._sanitize_step_key(step_key), filename.split("/")[-1]])

    def _dbfs_path(self, run_id: str, step_key: str, filename: str) -> str:
        return self._volume_path(run_id, step_key, filename)

    def _internal_dbfs_path(self, run_id: str, step_key: str, filename: str) -> str:
        return self._volume_path(run_id, step_key, filename)
