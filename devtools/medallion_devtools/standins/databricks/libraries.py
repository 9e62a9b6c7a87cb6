"""Task `libraries` on the stand-in's one Python environment: it installs nothing, so a library must
already be installed, at a version its pin allows, or the run fails the way Databricks reports a failed
library installation ("Library installation failed for library due to user error for …")."""

import re
from collections.abc import Callable, Sequence
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

from medallion_devtools.standins.databricks.errors import JsonObject

__all__ = ["LibraryInstallFailed", "check_libraries"]

# `name-version-…whl` (PEP 427): enough of a wheel's file name to compare it with what is installed.
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-[^-]+){2,3}\.whl$")


class LibraryInstallFailed(Exception):
    """A library the task asks for is not what the stand-in's environment has."""


def check_libraries(libraries: Sequence[JsonObject], cluster_id: str, read_text: Callable[[str], str]) -> None:
    """Raises `LibraryInstallFailed` for the first library that is not installed as asked.

    `pypi` pins and `requirements` files (read through `read_text`, a DBFS or workspace path) are compared
    with the installed distributions, a `whl` by its file name; `jar`, `egg`, `maven` and `cran` cannot be
    honoured by a Python-only stand-in and fail the run.
    """
    for library in libraries:
        kind = next(iter(library), "?")
        if kind == "pypi":
            _check_requirement(str(library["pypi"].get("package", "")), library, cluster_id)
        elif kind == "requirements":
            for line in read_text(str(library["requirements"])).splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    _check_requirement(line, library, cluster_id)
        elif kind == "whl":
            match = _WHEEL.match(str(library["whl"]).rsplit("/", 1)[-1])
            if match is None:
                raise _failed(library, cluster_id, "the wheel's file name is not `name-version-tags.whl`")
            _check_requirement(f"{match['name']}=={match['version']}", library, cluster_id)
        else:
            raise _failed(library, cluster_id, f"the stand-in runs Python only and cannot install a {kind} library")


def _check_requirement(spec: str, library: JsonObject, cluster_id: str) -> None:
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise _failed(library, cluster_id, f"invalid requirement {spec!r}: {exc}") from None
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        raise _failed(library, cluster_id, f"{requirement.name} is not installed") from None
    if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
        raise _failed(
            library, cluster_id, f"{requirement.name} {installed} is installed, which does not satisfy {spec!r}"
        )


def _failed(library: JsonObject, cluster_id: str, reason: str) -> LibraryInstallFailed:
    kind, value = next(iter(library.items()), ("?", None))
    return LibraryInstallFailed(
        f"Library installation failed for library due to user error for {kind} {value}. Error messages:\n"
        f"Library installation attempted on the driver node of cluster {cluster_id} and failed: {reason} "
        "(the local Databricks stand-in installs nothing; install it in the environment it runs in)."
    )
