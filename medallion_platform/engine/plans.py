"""Plans built once: a transform's SQL kept on disk, keyed by its code and its inputs' columns and types.

On the embedded engine, building a plan costs more than running it on a small batch: SQLFrame copies the
whole expression on every DataFrame step and sqlglot writes the SQL, 0.2-0.3 s per refined table whatever
it reads, where DuckDB folds a 1 % batch's rows into a table in a few milliseconds. A `Template` is a
transform whose plan depends on nothing but the columns and types of its input frames (the refined
tables' `build` and `combine`: no value read from data, no setting): its SQL, once written, is the SQL of
every later call with inputs of the same columns and types. `EmbeddedEngine.planned` keeps it here and
names each call's own input views in it, so the DataFrame code runs once per code version and input schema
(each process of a run used to build it again).

An entry's key is a SHA-256 over the template's name, the source of the `medallion_platform` package and of
every module the template's functions come from, the SQLFrame, sqlglot and DuckDB versions, and each
input's columns and types: a change to any of them is another entry, never a stale plan. An entry is one
JSON file, written to a temporary name and renamed (processes sharing the folder never read half of
one); an entry that cannot be read is built again. Entries are a few kilobytes, one per template and input
schema, never expired: deleting the folder costs one plan building per template.

`MEDALLION_PLAN_CACHE`: the folder (default `$XDG_CACHE_HOME/medallion/plans`, else
`~/.cache/medallion/plans`), or `off` to build every plan every time.
"""

import functools
import hashlib
import inspect
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

__all__ = ["PlanCache", "RecordedPlan", "Template", "plan_cache_dir"]

Schema = Sequence[tuple[str, str]]
"""An input's columns and their types, in order, as the engine describes them."""


@dataclass(frozen=True)
class Template:
    """A transform whose plan depends only on the columns and types of its input frames:
    `build(engine, **inputs)`, given frames by name. Nothing else may shape it (no value read from data,
    no setting, no argument that differs between calls with the same `name` and `parameters`): the plan
    a first call built is reused for every later one with inputs of the same columns and types."""

    name: str
    """What it builds, one name per shape: `refined/daily_revenue/fold`."""
    build: Callable[..., Any]
    code: tuple[Callable[..., Any], ...] = field(default=())
    """The functions the plan is made of besides `build` (their modules' source is in the key)."""
    parameters: str = ""
    """Everything else `build` is given that shapes the plan, as text (a contract's JSON): part of the key.
    Never a secret: the plan's SQL is kept in a file."""


@dataclass(frozen=True)
class RecordedPlan:
    """A template's SQL as first built: the input views it names (by input), the views it created
    itself (checkpoints, in the order created, each with its query), the final query and its columns and
    types (a later call needs not ask DuckDB for them)."""

    inputs: Mapping[str, str]
    views: Sequence[tuple[str, str]]
    sql: str
    columns: Schema

    def renamed(self, names: Mapping[str, str]) -> tuple[list[tuple[str, str]], str]:
        """The views and the final query with every recorded view name replaced by `names[old]`."""
        if not names:
            return list(self.views), self.sql
        pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b")

        def rename(text: str) -> str:
            return pattern.sub(lambda m: names[m.group(1)], text)

        return [(names[view], rename(query)) for view, query in self.views], rename(self.sql)


def plan_cache_dir(setting: str | None) -> Path | None:
    """The plan cache folder for `MEDALLION_PLAN_CACHE`'s value (`off`, or no home directory to default to:
    None, no caching)."""
    if setting is not None and setting.strip().lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    try:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medallion" / "plans"
    except (RuntimeError, KeyError):  # no home directory (a container user without one): plans built every time
        return None


class PlanCache:
    """Recorded plans in one folder, one JSON file per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0
        """Plans this process found recorded (`get`)."""
        self.recorded = 0
        """Plans this process built and recorded (`put`)."""

    def key(self, template: Template, inputs: Mapping[str, Schema]) -> str:
        """The entry of `template` over inputs of these columns and types."""
        described = {
            "template": template.name,
            "parameters": template.parameters,
            "code": [_function_code(f) for f in (template.build, *template.code)],
            "package": _package_source(),
            "libraries": _library_versions(),
            "inputs": {name: [list(column) for column in schema] for name, schema in sorted(inputs.items())},
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> RecordedPlan | None:
        """The plan recorded under `key`; None when there is none or it cannot be read."""
        try:
            entry = json.loads((self.directory / f"{key}.json").read_text())
            plan = RecordedPlan(
                {str(k): str(v) for k, v in entry["inputs"].items()},
                [(str(name), str(query)) for name, query in entry["views"]],
                str(entry["sql"]),
                [(str(name), str(kind)) for name, kind in entry["columns"]],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self.hits += 1
        return plan

    def put(self, key: str, plan: RecordedPlan) -> None:
        """Records `plan` under `key` (atomically; a folder that cannot be written is skipped: the plan
        is built again next time)."""
        entry = {
            "inputs": dict(plan.inputs),
            "views": [list(v) for v in plan.views],
            "sql": plan.sql,
            "columns": [list(c) for c in plan.columns],
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".tmp", delete=False) as out:
                json.dump(entry, out)
            os.replace(out.name, self.directory / f"{key}.json")
        except OSError:
            return
        self.recorded += 1


def _function_code(function: Callable[..., Any]) -> list[str]:
    """Where `function` is defined and its module's source (a partial: its function's)."""
    while isinstance(function, functools.partial):
        function = function.func
    path = inspect.getsourcefile(function) or ""
    code = getattr(function, "__code__", None)
    line = str(code.co_firstlineno) if code is not None else ""
    return [getattr(function, "__qualname__", repr(function)), line, _file_digest(path)]


@functools.cache
def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


@functools.cache
def _package_source() -> str:
    """A digest of every module of `medallion_platform` (the engines and helpers a plan is built with)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _library_versions() -> dict[str, str]:
    return {name: version(name) for name in ("sqlframe", "sqlglot", "duckdb")}
