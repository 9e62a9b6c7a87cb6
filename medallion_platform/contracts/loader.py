"""Loads every `contracts/*.yaml` into `Contract`s, with errors that name file and field."""

import os
import re
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from medallion_platform.contracts.model import Contract
from medallion_platform.errors import ContractError

__all__ = [
    "CONTRACTS_DIR",
    "CONTRACTS_DIR_VARIABLE",
    "ContractError",
    "contracts_dir",
    "load_contract",
    "load_contracts",
    "parse_contract",
]

CONTRACTS_DIR = Path(__file__).parent
"""The packaged contracts (the sample sources)."""
CONTRACTS_DIR_VARIABLE = "MEDALLION_CONTRACTS_DIR"
"""A folder of the user's own contracts (their repository), read instead of the packaged ones; the settings'
`contracts_dir` is the same variable (this layer imports no settings: it is what every other layer builds on)."""


def contracts_dir() -> Path:
    """Where the contracts live: `MEDALLION_CONTRACTS_DIR` if set, else the packaged folder."""
    configured = os.environ.get(CONTRACTS_DIR_VARIABLE, "").strip()
    return Path(configured).expanduser().resolve() if configured else CONTRACTS_DIR


_FIELD = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<file>"


def load_contract(path: Path) -> Contract:
    """Reads and validates one contract file; raises `ContractError` naming what is wrong."""
    path = Path(path)
    return parse_contract(path.read_text(encoding="utf-8"), path)


def parse_contract(text: str, path: Path) -> Contract:
    """Validates one contract's YAML `text` (read from `path`: a file, or `<git ref>:<file>`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(path, [("<yaml>", str(exc).replace("\n", " "))]) from exc
    if not isinstance(data, dict):
        raise ContractError(path, [("<file>", "must be a mapping of contract fields")])
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            where = _location(err["loc"])
            field, sep, rest = message.partition(": ")
            if sep and _FIELD.match(field):  # a cross-field rule names its field first
                where, message = (f"{where}.{field}" if err["loc"] else field), rest
            problems.append((where, message))
        raise ContractError(path, problems) from None
    if contract.name != path.stem:
        raise ContractError(path, [("name", f"{contract.name!r} must match the file name {path.stem!r}")])
    return contract


@cache
def _load_dir(directory: Path) -> tuple[Contract, ...]:
    return tuple(load_contract(p) for p in sorted(directory.glob("*.yaml")))


def load_contracts(directory: Path | None = None) -> dict[str, Contract]:
    """Every contract in `directory` (default: `contracts_dir()`), by dataset name."""
    return {c.name: c for c in _load_dir(Path(directory or contracts_dir()))}
