"""The product's errors: one family under `MedallionError`, each with the message a person acts on.

Every class keeps `ValueError` (bad input: a setting, a contract, a message, an object's bytes) or
`RuntimeError` (a step that failed: a catalog, a service, a copy, a producer) as its second base, so code
that catches those still does. The `medallion` command describes any `MedallionError` as one line and exits
with its `exit_code` (`cli/errors.py::describe`); a new error class needs no change there.

The modules that raise them re-export them (`settings.ConfigError`, `catalog.CatalogError`, …).
Leaf module: imports nothing of the product.
"""

from pathlib import Path
from typing import ClassVar

__all__ = [
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "CatalogError",
    "ChecksumMismatch",
    "ConfigError",
    "ContractError",
    "CopyFailed",
    "IncompatibleContract",
    "MedallionError",
    "NotInstalled",
    "PoisonMessage",
    "ProducerError",
    "ServiceDown",
    "UnreadableObject",
]

EXIT_USAGE = 2
"""Exit code of usage and configuration errors (a setting, a flag, a contract, a data directory without a lake)."""
EXIT_RUNTIME = 1
"""Exit code of runtime failures (a query, a service that does not answer, a failed run)."""


class MedallionError(Exception):
    """The base of the product's errors: `exit_code` and `line()` are what the `medallion` command prints."""

    exit_code: ClassVar[int] = EXIT_RUNTIME

    def line(self) -> str:
        """The error as one line: its message's first line."""
        return (str(self).strip().splitlines() or [type(self).__name__])[0]


# -- usage and configuration (ValueError) ------------------------------------------------------
class ConfigError(MedallionError, ValueError):
    """A configuration value that cannot be used, naming the variable and what to do."""

    exit_code = EXIT_USAGE


class ContractError(MedallionError, ValueError):
    """A contract file that cannot be used, with the file, the field and the problem."""

    exit_code = EXIT_USAGE

    def __init__(self, path: Path, problems: list[tuple[str, str]]):
        self.path = path
        self.problems = problems
        lines = [f"{path}: invalid data contract"]
        lines += [f"  - {field}: {message}" for field, message in problems]
        super().__init__("\n".join(lines))

    def line(self) -> str:
        """The file and every problem on one line."""
        problems = "; ".join(f"{field}: {message}" for field, message in self.problems)
        return f"{self.path}: invalid data contract: {problems}"


class IncompatibleContract(ContractError):
    """A contract change the deployed tables cannot take (`contracts/compat.py`), each change with its way forward."""

    def __init__(self, dataset: str, problems: list[tuple[str, str]]):
        self.dataset = dataset
        self.path = Path(f"{dataset}.yaml")
        self.problems = problems
        lines = [f"contract {dataset!r}: refused against the deployed tables (trusted/{dataset})"]
        lines += [f"  - {field}: {message}" for field, message in problems]
        MedallionError.__init__(self, "\n".join(lines))

    def line(self) -> str:
        problems = "; ".join(f"{field}: {message}" for field, message in self.problems)
        return f"contract {self.dataset!r}: refused against the deployed tables: {problems}"


class PoisonMessage(MedallionError, ValueError):
    """A queue message that is not an object-created notification this platform can read."""


class UnreadableObject(MedallionError, ValueError):
    """A landing object whose bytes cannot be parsed as a whole; `reason` is a `REJECTION_REASONS` key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# -- runtime (RuntimeError) --------------------------------------------------------------------
class CatalogError(MedallionError, RuntimeError):
    """A table could not be registered or governed; the message names the table and the setting."""


class ServiceDown(MedallionError, RuntimeError):
    """A local emulator or stand-in the environment points at does not answer."""


class ChecksumMismatch(MedallionError, RuntimeError):
    """The object S3 stored is not the file that was uploaded."""


class CopyFailed(MedallionError, RuntimeError):
    """The batch copy failed, was cancelled or timed out, or some of its objects failed (see its report)."""


class ProducerError(MedallionError, RuntimeError):
    """Records still failing after every retry."""


class NotInstalled(MedallionError, RuntimeError):
    """A command or feature whose distribution is not installed; the message says what to install."""

    exit_code = EXIT_USAGE
