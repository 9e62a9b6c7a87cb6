"""Helpers of the Databricks tests."""

import json
import subprocess
import sys

import pytest

# delta-rs 1.6.6's `uc://` open deadlocks inside delta-rs now and then (upstream delta-io/delta-rs#3113 says so of
# its own tests; here about two opens in three on 2 cores): after both Unity Catalog calls succeed, it never
# makes its first S3 request. So each attempt runs in a child process that is killed after a bounded wait.
UC_READ = """
import json, sys
from deltalake import DeltaTable
uri, options = json.loads(sys.stdin.read())
rows = DeltaTable(uri, storage_options=options).to_pyarrow_table().to_pylist()
print(json.dumps(rows, default=str))
"""
UC_READ_ATTEMPTS, UC_READ_SECONDS = 15, 8.0


def read_through_unity_catalog(uri: str, options: dict[str, str]) -> list[dict[str, object]]:
    """The rows delta-rs' own Unity Catalog client reads at `uri`, as JSON values, sorted (in a child process;
    see UC_READ)."""
    hung = 0
    for _ in range(UC_READ_ATTEMPTS):
        try:
            child = subprocess.run(
                [sys.executable, "-c", UC_READ],
                input=json.dumps([uri, options]),
                capture_output=True,
                text=True,
                timeout=UC_READ_SECONDS,
            )
        except subprocess.TimeoutExpired:
            hung += 1
            continue
        if child.returncode < 0:  # killed by a signal: delta-rs aborted in native code (the same flakiness)
            hung += 1
            continue
        assert child.returncode == 0, child.stderr  # a Python error (a rejected response) fails at once
        return sorted(json.loads(child.stdout), key=lambda row: json.dumps(row, sort_keys=True))
    pytest.fail(f"delta-rs' uc:// open hung or aborted in all {hung} attempts")


def as_json_rows(table: object) -> list[dict[str, object]]:
    """`table`'s rows as `read_through_unity_catalog` returns them: JSON values, sorted."""
    rows = json.loads(json.dumps(table.to_pylist(), default=str))  # type: ignore[attr-defined]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))
