"""The small Databricks SQL subset the stand-in's warehouse runs, parsed for real: keywords in any case,
`backtick` identifiers (`` doubled inside), string literals in single quotes ('' or \\' for a quote, \\\\ for a
backslash), `--` comments, one optional trailing `;`.

    CREATE TABLE [IF NOT EXISTS] c.s.t USING DELTA LOCATION '<uri>'
    MSCK REPAIR TABLE c.s.t SYNC METADATA
    COMMENT ON TABLE c.s.t IS '<text>' | NULL
    ALTER TABLE c.s.t ALTER COLUMN col COMMENT '<text>'
    ALTER TABLE c.s.t [ALTER COLUMN col] SET TAGS ('k' = 'v', 'k2', ...)
    ALTER TABLE c.s.t OWNER TO `principal`
    ALTER TABLE c.s.t {ALTER COLUMN | ALTER} col SET MASK c.s.f [USING COLUMNS (col, ...)] | DROP MASK
    ALTER TABLE c.s.t SET ROW FILTER c.s.f ON (col, ...) | DROP ROW FILTER
    CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] c.s.f(p TYPE, ...) RETURNS TYPE [COMMENT '<text>'] RETURN <expr>
    DROP FUNCTION [IF EXISTS] c.s.f
    GRANT priv [, priv ...] ON {TABLE | SCHEMA | DATABASE | CATALOG} name TO `principal`
    OPTIMIZE c.s.t
    VACUUM c.s.t [RETAIN n HOURS]
    SELECT … | WITH … SELECT …   (a query: parsed by sqlglot's Databricks dialect, tables by name)

Privileges are written as in SQL (`USE CATALOG`, `ALL PRIVILEGES`) and become API names (`USE_CATALOG`).
A one- or two-part table name is completed with the statement's `catalog` and `schema`, as Databricks does.
"""

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "AlterColumnComment",
    "Command",
    "CommentOnTable",
    "CreateFunction",
    "CreateTable",
    "DropFunction",
    "Grant",
    "Optimize",
    "Query",
    "SetMask",
    "SetOwner",
    "SetRowFilter",
    "SetTags",
    "SqlError",
    "Statement",
    "SyncMetadata",
    "Vacuum",
    "completed_table_name",
    "parse_statement",
    "quote_name",
]

SUPPORTED = (
    "CREATE TABLE … USING DELTA LOCATION, MSCK REPAIR TABLE … SYNC METADATA, COMMENT ON TABLE, "
    "ALTER TABLE … ALTER COLUMN … COMMENT | SET TAGS | SET MASK | DROP MASK, "
    "ALTER TABLE … SET TAGS | OWNER TO | SET ROW FILTER | DROP ROW FILTER, GRANT … ON … TO, "
    "CREATE [OR REPLACE] FUNCTION … RETURN <expr>, DROP FUNCTION, OPTIMIZE, VACUUM … [RETAIN n HOURS], SELECT"
)


class SqlError(Exception):
    """A failed statement: Databricks puts `[ERROR_CLASS] message SQLSTATE: xxxxx` under a service error code."""

    def __init__(self, error_class: str, message: str, sqlstate: str, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(f"[{error_class}] {message} SQLSTATE: {sqlstate}")
        self.error_code = error_code
        self.message = str(self)


def quote_name(parts: tuple[str, ...]) -> str:
    """`a`.`b`.`c`, as Databricks quotes names in its messages."""
    return ".".join(f"`{p}`" for p in parts)


@dataclass(frozen=True)
class CreateTable:
    name: tuple[str, str, str]
    location: str
    if_not_exists: bool


@dataclass(frozen=True)
class SyncMetadata:
    name: tuple[str, str, str]


@dataclass(frozen=True)
class CommentOnTable:
    name: tuple[str, str, str]
    comment: str | None


@dataclass(frozen=True)
class AlterColumnComment:
    name: tuple[str, str, str]
    column: str
    comment: str


@dataclass(frozen=True)
class SetTags:
    name: tuple[str, str, str]
    column: str | None
    tags: dict[str, str | None]


@dataclass(frozen=True)
class SetOwner:
    name: tuple[str, str, str]
    principal: str


@dataclass(frozen=True)
class SetMask:
    name: tuple[str, str, str]
    column: str
    function: tuple[str, str, str] | None
    """None: DROP MASK."""
    using: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetRowFilter:
    name: tuple[str, str, str]
    function: tuple[str, str, str] | None
    """None: DROP ROW FILTER."""
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreateFunction:
    name: tuple[str, str, str]
    params: tuple[tuple[str, str], ...]
    returns: str
    body: str
    or_replace: bool
    if_not_exists: bool
    comment: str | None = None


@dataclass(frozen=True)
class DropFunction:
    name: tuple[str, str, str]
    if_exists: bool


@dataclass(frozen=True)
class Optimize:
    name: tuple[str, str, str]


@dataclass(frozen=True)
class Vacuum:
    name: tuple[str, str, str]
    retain_hours: float | None


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]
    securable_type: Literal["catalog", "schema", "table"]
    name: tuple[str, ...]
    principal: str


@dataclass(frozen=True)
class Query:
    """A query: its text as sqlglot parsed it, the names its CTEs define, the tables it reads by their completed
    three-level names in lower case, and the statement's `catalog` and `schema` that complete them."""

    tree: "exp.Query" = field(compare=False, repr=False)
    ctes: frozenset[str]
    tables: tuple[tuple[str, str, str], ...]
    catalog: str | None = None
    schema: str | None = None

    def table_of(self, parts: tuple[str, ...]) -> tuple[str, str, str] | None:
        """The completed name of a table reference in lower case (None: a CTE's name)."""
        if len(parts) == 1 and parts[0].lower() in self.ctes:
            return None
        return lowered(completed_table_name(parts, self.catalog, self.schema))


Command = (
    CreateTable
    | SyncMetadata
    | CommentOnTable
    | AlterColumnComment
    | SetTags
    | SetOwner
    | Grant
    | Optimize
    | Vacuum
    | SetMask
    | SetRowFilter
    | CreateFunction
    | DropFunction
)
"""A statement that changes the metastore (everything but a query)."""

Statement = Query | Command

_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*)
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<ident>`(?:[^`]|``)*`)
      | (?P<word>[A-Za-z0-9_]+)
      | (?P<punct>[.,()=;])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


@dataclass(frozen=True)
class _Token:
    kind: Literal["string", "ident", "word", "punct", "end"]
    text: str  # the value: unquoted for strings and identifiers
    at: int


def _unquote_string(raw: str) -> str:
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == "'":  # the first of a doubled ''
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokens(sql: str) -> list[_Token]:
    tokens, at = [], 0
    while at < len(sql):
        match = _TOKEN.match(sql, at)
        if match is None:
            raise _syntax_error(sql[at : at + 10])
        kind, raw = match.lastgroup, match.group()
        if kind == "string":
            tokens.append(_Token("string", _unquote_string(raw), at))
        elif kind == "ident":
            tokens.append(_Token("ident", raw[1:-1].replace("``", "`"), at))
        elif kind in ("word", "punct"):
            tokens.append(_Token(kind, raw, at))  # type: ignore[arg-type]  # the two literals just tested
        at = match.end()
    if tokens and tokens[-1].text == ";":
        tokens.pop()
    return [*tokens, _Token("end", "", len(sql))]


def _syntax_error(near: str) -> SqlError:
    where = f"'{near}'" if near else "end of input"
    return SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {where}.", "42601")


class _Parser:
    def __init__(self, sql: str, catalog: str | None, schema: str | None) -> None:
        self.tokens = _tokens(sql)
        self.pos = 0
        self.catalog, self.schema = catalog, schema

    def peek(self, *words: str) -> bool:
        """Whether the next tokens are these keywords."""
        ahead = self.tokens[self.pos : self.pos + len(words)]
        return len(ahead) == len(words) and all(
            t.kind == "word" and t.text.upper() == w for t, w in zip(ahead, words, strict=True)
        )

    def accept(self, *words: str) -> bool:
        if self.peek(*words):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        for word in words:
            if not self.accept(word):
                raise self.error()

    def punct(self, char: str) -> bool:
        if self.tokens[self.pos].kind == "punct" and self.tokens[self.pos].text == char:
            self.pos += 1
            return True
        return False

    def error(self) -> SqlError:
        return _syntax_error(self.tokens[self.pos].text)

    def identifier(self) -> str:
        token = self.tokens[self.pos]
        if token.kind not in ("word", "ident"):
            raise self.error()
        self.pos += 1
        return token.text

    def number(self) -> float:
        token = self.tokens[self.pos]
        if token.kind != "word" or not token.text.isdigit():
            raise self.error()
        self.pos += 1
        return float(token.text)

    def string(self) -> str:
        token = self.tokens[self.pos]
        if token.kind != "string":
            raise self.error()
        self.pos += 1
        return token.text

    def name(self) -> tuple[str, ...]:
        parts = [self.identifier()]
        while self.punct("."):
            parts.append(self.identifier())
        return tuple(parts)

    def table_name(self) -> tuple[str, str, str]:
        return completed_table_name(self.name(), self.catalog, self.schema)

    def finish(self, statement: Statement) -> Statement:
        if self.tokens[self.pos].kind != "end":
            raise self.error()
        return statement

    def tags(self) -> dict[str, str | None]:
        if not self.punct("("):
            raise self.error()
        tags: dict[str, str | None] = {}
        while True:
            key = self.string()
            tags[key] = self.string() if self.punct("=") else None
            if self.punct(")"):
                return tags
            if not self.punct(","):
                raise self.error()

    def sql_type(self) -> str:
        """A type as written (`STRING`, `DECIMAL(12,2)`), upper-cased, without spaces."""
        words = [self.identifier().upper()]
        if self.punct("("):
            sizes = [str(int(self.number()))]
            while self.punct(","):
                sizes.append(str(int(self.number())))
            if not self.punct(")"):
                raise self.error()
            words.append("(" + ",".join(sizes) + ")")
        return "".join(words)

    def column_list(self) -> tuple[str, ...]:
        if not self.punct("("):
            raise self.error()
        columns = [self.identifier()]
        while self.punct(","):
            columns.append(self.identifier())
        if not self.punct(")"):
            raise self.error()
        return tuple(columns)

    def function_name(self) -> tuple[str, str, str]:
        return self.table_name()  # completed with the statement's catalog and schema, as a table's

    def privileges(self) -> tuple[str, ...]:
        privileges: list[str] = []
        words: list[str] = []
        while not self.peek("ON"):
            if self.punct(","):
                if not words:
                    raise self.error()
                privileges.append("_".join(words))
                words = []
            else:
                token = self.tokens[self.pos]
                if token.kind != "word":
                    raise self.error()
                words.append(token.text.upper())
                self.pos += 1
        if not words:
            raise self.error()
        return (*privileges, "_".join(words))


_CREATE_FUNCTION = re.compile(r"\s*CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\b", re.IGNORECASE)
_RETURN = re.compile(r"\bRETURN\b(?!S)", re.IGNORECASE)


def _create_function(sql: str, catalog: str | None, schema: str | None) -> CreateFunction:
    """`CREATE FUNCTION`: the head parsed as the other statements, the body after `RETURN` kept as written."""
    split = _RETURN.search(sql)
    if split is None:
        raise _syntax_error("")
    body = sql[split.end() :].strip().removesuffix(";").strip()
    if not body:
        raise _syntax_error("")
    p = _Parser(sql[: split.start()], catalog, schema)
    p.expect("CREATE")
    or_replace = p.accept("OR", "REPLACE")
    p.expect("FUNCTION")
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    name = p.function_name()
    if not p.punct("("):
        raise p.error()
    params: list[tuple[str, str]] = []
    if not p.punct(")"):
        while True:
            params.append((p.identifier(), p.sql_type()))
            if p.punct(")"):
                break
            if not p.punct(","):
                raise p.error()
    p.expect("RETURNS")
    returns = p.sql_type()
    comment = p.string() if p.accept("COMMENT") else None
    if p.tokens[p.pos].kind != "end":
        raise p.error()
    if or_replace and if_not_exists:
        raise SqlError(
            "INVALID_SQL_SYNTAX.CREATE_ROUTINE_WITH_IF_NOT_EXISTS_AND_REPLACE",
            "Invalid SQL syntax: CREATE OR REPLACE FUNCTION with IF NOT EXISTS is not allowed.",
            "42000",
        )
    return CreateFunction(name, tuple(params), returns, body, or_replace, if_not_exists, comment)


def completed_table_name(parts: tuple[str, ...], catalog: str | None, schema: str | None) -> tuple[str, str, str]:
    """A table name completed with the statement's `catalog` and `schema`, as Databricks does."""
    if len(parts) == 1 and schema:
        parts = (schema, *parts)
    if len(parts) == 2 and catalog:
        parts = (catalog, *parts)
    if len(parts) != 3:
        raise SqlError(
            "UNQUALIFIED_TABLE_NAME",
            f"The table name {quote_name(parts)} needs a catalog and a schema (catalog.schema.table): the "
            "stand-in has no current catalog or schema but the statement's `catalog` and `schema`.",
            "42K05",
        )
    return parts[0], parts[1], parts[2]


_QUERY = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)


def lowered(name: tuple[str, str, str]) -> tuple[str, str, str]:
    return (name[0].lower(), name[1].lower(), name[2].lower())


def _query(sql: str, catalog: str | None, schema: str | None) -> Query:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.ParseError as exc:
        raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error: {str(exc).splitlines()[0]}", "42601") from None
    if not isinstance(tree, exp.Query):
        raise SqlError("UNSUPPORTED_STATEMENT", f"The stand-in runs queries only, not {tree.key.upper()}.", "0A000")
    query = Query(tree, frozenset(cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)), (), catalog, schema)
    names = (query.table_of(tuple(part.name for part in table.parts)) for table in tree.find_all(exp.Table))
    return dataclasses.replace(query, tables=tuple(dict.fromkeys(n for n in names if n is not None)))


def parse_statement(sql: str, *, catalog: str | None = None, schema: str | None = None) -> Statement:
    """The statement `sql` is (`SqlError` for a syntax error or a statement the stand-in does not run)."""
    if _QUERY.match(sql):
        return _query(sql, catalog, schema)
    if _CREATE_FUNCTION.match(sql):
        return _create_function(sql, catalog, schema)
    p = _Parser(sql, catalog, schema)
    if p.accept("CREATE", "TABLE"):
        if_not_exists = p.accept("IF", "NOT", "EXISTS")
        name = p.table_name()
        p.expect("USING", "DELTA", "LOCATION")
        return p.finish(CreateTable(name, p.string().rstrip("/"), if_not_exists))
    if p.accept("MSCK", "REPAIR", "TABLE"):
        name = p.table_name()
        p.expect("SYNC", "METADATA")
        return p.finish(SyncMetadata(name))
    if p.accept("COMMENT", "ON", "TABLE"):
        name = p.table_name()
        p.expect("IS")
        return p.finish(CommentOnTable(name, None if p.accept("NULL") else p.string()))
    if p.accept("ALTER", "TABLE"):
        name = p.table_name()
        if p.accept("OWNER", "TO"):
            return p.finish(SetOwner(name, p.identifier()))
        if p.accept("SET", "TAGS"):
            return p.finish(SetTags(name, None, p.tags()))
        if p.accept("SET", "ROW", "FILTER"):
            function = p.function_name()
            p.expect("ON")
            return p.finish(SetRowFilter(name, function, p.column_list()))
        if p.accept("DROP", "ROW", "FILTER"):
            return p.finish(SetRowFilter(name, None))
        if p.accept("ALTER", "COLUMN") or p.accept("ALTER"):
            column = p.identifier()
            if p.accept("COMMENT"):
                return p.finish(AlterColumnComment(name, column, p.string()))
            if p.accept("SET", "TAGS"):
                return p.finish(SetTags(name, column, p.tags()))
            if p.accept("SET", "MASK"):
                function = p.function_name()
                using = p.column_list() if p.accept("USING", "COLUMNS") else ()
                return p.finish(SetMask(name, column, function, using))
            if p.accept("DROP", "MASK"):
                return p.finish(SetMask(name, column, None))
    elif p.accept("DROP", "FUNCTION"):
        if_exists = p.accept("IF", "EXISTS")
        return p.finish(DropFunction(p.function_name(), if_exists))
    elif p.accept("OPTIMIZE"):
        return p.finish(Optimize(p.table_name()))
    elif p.accept("VACUUM"):
        name = p.table_name()
        hours = None
        if p.accept("RETAIN"):
            hours = p.number()
            p.expect("HOURS")
        return p.finish(Vacuum(name, hours))
    elif p.accept("GRANT"):
        privileges = p.privileges()
        p.expect("ON")
        kind: Literal["catalog", "schema", "table"] = "table"
        if p.accept("CATALOG"):
            kind = "catalog"
        elif p.accept("SCHEMA") or p.accept("DATABASE"):
            kind = "schema"
        else:
            p.accept("TABLE")
        target: tuple[str, ...] = p.table_name() if kind == "table" else p.name()
        if kind == "schema" and len(target) == 1 and catalog:
            target = (catalog, *target)
        p.expect("TO")
        return p.finish(Grant(privileges, kind, target, p.identifier()))
    else:
        raise SqlError(
            "UNSUPPORTED_STATEMENT",
            f"The local Databricks stand-in does not run this statement: {' '.join(sql.split())[:80]!r}. "
            f"It runs: {SUPPORTED}.",
            "0A000",
        )
    raise SqlError(
        "UNSUPPORTED_STATEMENT",
        f"The local Databricks stand-in does not run this ALTER TABLE form: {' '.join(sql.split())[:80]!r}. "
        f"It runs: {SUPPORTED}.",
        "0A000",
    )
