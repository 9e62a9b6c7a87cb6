"""Expected failures of the `medallion` command as one line: what is wrong and what to do.

Exit 2 for usage and configuration (a setting, a flag, a contract, a data directory that holds no lake, a
development tool that is not installed), 1 for runtime failures (a query DuckDB rejects, a service that does not
answer, a failed run). The product's own errors are one family (`medallion_platform/errors.py`): each says its
exit code and line, so `describe` dispatches on `MedallionError` and names only libraries' errors. `main`
prints the line; `--debug` re-raises instead, so the traceback shows.
"""

import os
import socket
from urllib.parse import urlsplit

from medallion_platform.errors import EXIT_RUNTIME, EXIT_USAGE, MedallionError, ServiceDown

__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "ServiceDown", "check_services", "describe"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def check_services(settings: object) -> None:
    """Fails fast with `ServiceDown` when the local AWS emulator or the local Databricks stand-in the
    environment names (a loopback address) is not running; real endpoints are left to their clients."""
    endpoint = getattr(settings, "aws_endpoint_url", None)
    if endpoint and urlsplit(endpoint).hostname in _LOOPBACK and not _answers(endpoint):
        raise ServiceDown(
            f"the local AWS emulator at {endpoint} does not answer: start it with `medallion local-aws up` "
            "in another terminal and `source` the lines it prints"
        )
    host = os.environ.get("DATABRICKS_HOST", "")
    needs_databricks = (
        getattr(settings, "env", None) == "databricks" or getattr(settings, "catalog_kind", "") == "unity"
    )
    if needs_databricks and host and urlsplit(host).hostname in _LOOPBACK and not _answers(host):
        raise ServiceDown(
            f"the local Databricks stand-in at {host} does not answer: start it with `medallion local-databricks up` "
            "in another terminal and `source` the lines it prints"
        )


def _first_lines(text: str) -> str:
    """DuckDB's message without its `LINE 1: …` pointer, on one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith("LINE ") and set(line) != {"^"}]
    return "; ".join(kept[:2])


def describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line for `exc`."""
    import duckdb

    if isinstance(exc, MedallionError):
        return exc.exit_code, exc.line()
    if isinstance(exc, duckdb.ParserException):
        return EXIT_RUNTIME, f"the query is not valid SQL: {_first_lines(str(exc)).removeprefix('Parser Error: ')}"
    if isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
        return EXIT_RUNTIME, f"{_first_lines(str(exc))} (`medallion catalog` lists the tables)"
    if isinstance(exc, duckdb.Error):
        return EXIT_RUNTIME, f"the query failed: {_first_lines(str(exc))}"
    text = (str(exc).strip().splitlines() or [""])[0]
    return EXIT_RUNTIME, f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
