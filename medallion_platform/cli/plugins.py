"""Subcommands from other distributions: the development tools' `local-aws`, `local-databricks`, `bench`, `chaos`.

They are found through the `medallion.commands` entry-point group; each entry is a function that adds one
subcommand to the `medallion` subparsers (`medallion-devtools` registers these four in `devtools/pyproject.toml`).
The product never imports the development tools: without them, each of the four is still listed, and running it
fails with one line saying how to install them, exit 2 (`errors.NotInstalled`).
"""

import argparse
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from medallion_platform.errors import NotInstalled

__all__ = ["DEV_COMMANDS", "GROUP", "INSTALL_HINT", "Register", "add_command", "installed_commands"]

GROUP = "medallion.commands"
"""The entry-point group the `medallion` command reads its extra subcommands from."""
DEV_COMMANDS = ("local-aws", "local-databricks", "bench", "chaos")
"""The subcommands that come with the development tools (`medallion-devtools`)."""
INSTALL_HINT = "pip install -e ./devtools (make installs it)"

Register = Callable[[Any], object]
"""Adds one subcommand to the `medallion` subparsers it is given."""


def installed_commands() -> dict[str, Register]:
    """The extra subcommands installed in this environment, by name (loaded only when the parser is built)."""
    return {entry.name: entry.load() for entry in entry_points(group=GROUP)}


def add_command(sub: Any, name: str, commands: Mapping[str, Register]) -> None:
    """Adds subcommand `name` from `commands`, or, for a development tool that is not installed, a stand-in that
    takes any arguments and fails with the install hint."""
    register = commands.get(name)
    if register is not None:
        register(sub)
        return
    p = sub.add_parser(name, help="comes with the development tools (not installed)", add_help=False)
    p.set_defaults(func=_not_installed(name), takes_any_arguments=True)


def _not_installed(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise NotInstalled(f"`{name}` comes with the development tools: {INSTALL_HINT}")

    return run
