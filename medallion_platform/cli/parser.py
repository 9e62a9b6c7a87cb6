"""The argument parser of the `medallion` command and its subcommands: `--help` shows each option's default.

A leaf module (standard library only), so a subcommand from another distribution (devtools' `bench`) can
build its own stand-alone parser with it without importing the rest of the CLI.
"""

import argparse

__all__ = ["HelpFormatter", "Parser"]


class HelpFormatter(argparse.HelpFormatter):
    """`--help` shows each option's default, unless the help text already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose `--help` shows defaults; its subparsers (and theirs) are of this class too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
