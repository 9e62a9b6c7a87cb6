"""JSON lines to raw rows in plain Python, with the embedded parser's semantics (DuckDB's JSON reader).

The Spark parser runs this on the executors. Spark's own JSON functions cannot stand in: they differ
from DuckDB and from one engine to the next (classic Spark and Databricks' Jackson accept single
quotes and text after the object and write `1.0E-7`; Sail's reader refuses NaN and trailing commas and
keeps the last of two equal keys), so each would give other raw rows from the same hostile line.

What DuckDB does, and this module with it:
- a record is a line whose first non-blank character is `{` and that is valid JSON; NaN, Infinity,
  `inf` and `nan` (any case, `-` allowed) and trailing commas are valid, text after the value is not;
- a value is its text: strings unescaped, numbers rewritten (integers as digits; reals in shortest
  form, `.0` on whole numbers, exponent outside 1e-7 < |x| < 1e21: `1e-7`, `1e21`; overflowing reals
  and the NaN spellings as written), objects and arrays as compact JSON, `null` as NULL;
- the first of two equal keys wins; the unknown keys are listed in document order, repeats included.
Deep nesting is parsed without recursion.
"""

import json
import math
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pyarrow as pa

from medallion_platform.ingestion.landing_text import BAD_TEXT, NOT_TEXT

__all__ = ["parse_json_lines"]

NOT_OBJECT = "not a JSON object"
MALFORMED = "malformed JSON"


class _Num(str):
    """A number (or a NaN/Infinity spelling) as DuckDB writes it."""


class _Obj(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, repeated keys kept."""


def _real(text: str) -> _Num:
    value = float(text)
    if math.isinf(value):
        return _Num(text)  # DuckDB keeps an overflowing real as written
    if value == 0:
        return _Num("-0.0" if math.copysign(1, value) < 0 else "0.0")
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent = int(exponent) + len("".join(map(str, digit_tuple))) - len(digits)
    k = len(digits)
    n = k + exponent  # the decimal point's place after the first digit
    sign = "-" if value < 0 else ""
    if k <= n <= 21:
        return _Num(f"{sign}{digits}{'0' * (n - k)}.0")
    if 0 < n <= 21:
        return _Num(f"{sign}{digits[:n]}.{digits[n:]}")
    if -6 < n <= 0:
        return _Num(f"{sign}0.{'0' * -n}{digits}")
    mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
    return _Num(f"{sign}{mantissa}e{n - 1}")


def _int(text: str) -> _Num:
    return _Num(str(int(text)))


_DECODER = json.JSONDecoder(object_pairs_hook=_Obj, parse_float=_real, parse_int=_int, parse_constant=_Num)
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_TOKEN = re.compile(
    r"""(?P<ws>[ \t\n\r]+)
    |(?P<str>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
    |(?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?![0-9A-Za-z.])
    |(?P<special>-?(?i:nan|infinity|inf))(?![0-9A-Za-z])
    |(?P<word>true|false|null)(?![0-9A-Za-z])
    |(?P<punct>[{}\[\]:,])""",
    re.X,
)
_WORDS = {"true": True, "false": False, "null": None}


class _Invalid(Exception):
    pass


def _has_lone_surrogate(value: object) -> bool:
    try:
        _dump(value).encode("utf-8")
        for key in _keys_deep(value):
            key.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _keys_deep(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Obj):
            for key, inner in item:
                yield key
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def _scalar(kind: str, text: str) -> object:
    if kind == "str":
        value = json.loads(text)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate escape: DuckDB refuses the document
            raise _Invalid from exc
        return value
    if kind == "num":
        return _real(text) if any(c in text for c in ".eE") else _int(text)
    if kind == "special":
        return _Num(text)
    return _WORDS[text]


def _parse_slow(line: str) -> object:
    """The document without recursion, trailing commas and DuckDB's NaN/Infinity spellings allowed;
    raises `_Invalid` when DuckDB would not read it."""
    matches = list(_TOKEN.finditer(line))
    if sum(m.end() - m.start() for m in matches) != len(line):
        raise _Invalid  # something no token matches
    tokens = [(m.lastgroup, m.group()) for m in matches if m.lastgroup != "ws"]
    stack: list[tuple[object, list[str | None]]] = []  # (container, [pending key]) per open level
    root: object = None
    done = False
    expect = "value"  # value | value_or_close | key_or_close | key | colon | comma_or_close
    for kind, text in tokens:
        if done:
            raise _Invalid  # text after the document
        value: object
        if expect in ("value", "value_or_close") and kind != "punct":
            value = _scalar(kind or "", text)
        elif expect in ("value", "value_or_close") and text in "[{":
            container: object = _Obj() if text == "{" else []
            stack.append((container, [None]))
            expect = "key_or_close" if text == "{" else "value_or_close"
            continue
        elif expect in ("key", "key_or_close") and kind == "str":
            stack[-1][1][0] = str(_scalar("str", text))
            expect = "colon"
            continue
        elif expect == "colon" and text == ":":
            expect = "value"
            continue
        elif expect == "comma_or_close" and text == ",":
            expect = "key_or_close" if isinstance(stack[-1][0], _Obj) else "value_or_close"
            continue
        elif (expect in ("comma_or_close", "key_or_close", "value_or_close")) and text in "]}":
            container, _ = stack[-1]
            if (text == "}") != isinstance(container, _Obj):
                raise _Invalid
            stack.pop()
            value = container
        else:
            raise _Invalid
        if not stack:
            root, done = value, True
            continue
        container, pending = stack[-1]
        if isinstance(container, _Obj):
            container.append((pending[0], value))
        else:
            container.append(value)  # type: ignore[attr-defined]
        expect = "comma_or_close"
    if not done:
        raise _Invalid
    return root


def _parse(line: str) -> object:
    """The document DuckDB reads from `line`; raises `_Invalid` when it reads none."""
    try:
        value = _DECODER.decode(line)
    except (ValueError, RecursionError):
        return _parse_slow(line)
    if _SURROGATE.search(line) and _has_lone_surrogate(value):
        raise _Invalid
    return value


def _escape(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _dump(value: object) -> str:
    """`value` as DuckDB writes a JSON value: compact, without recursion."""
    out: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif item is None:
            out.append("null")
        elif isinstance(item, _Obj):
            stack.append(_Raw("}"))
            for i, (key, inner) in reversed(list(enumerate(item))):
                stack.append(inner)
                stack.append(_Raw(("," if i else "") + _escape(key) + ":"))
            stack.append(_Raw("{"))
        elif isinstance(item, list):
            stack.append(_Raw("]"))
            for i, inner in reversed(list(enumerate(item))):
                stack.append(inner)
                if i:
                    stack.append(_Raw(","))
            stack.append(_Raw("["))
        else:
            out.append(_escape(item) if isinstance(item, str) and not isinstance(item, _Num) else str(_text(item)))
    return "".join(out)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _text(value: object) -> str | None:
    """A value as `json_extract_string` returns it."""
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return _dump(value)
    raise TypeError(f"unexpected JSON value {value!r}")


def _record(line: str, bad: bool, names: Sequence[str], known: frozenset[str]) -> tuple[list, str | None, str | None]:
    """(the contract's values, the unknown keys, the parse error) of one line."""
    if bad:
        return [None] * len(names), None, NOT_TEXT
    try:
        document = _parse(line)
    except _Invalid:
        return [None] * len(names), None, MALFORMED
    if not isinstance(document, _Obj) or not line.lstrip(" \t\r\n").startswith("{"):
        return [None] * len(names), None, NOT_OBJECT
    first: dict[str, object] = {}
    extra: list[str] = []
    for key, value in document:
        first.setdefault(key, value)
        if key not in known:
            extra.append(key)
    return [_text(first.get(n)) for n in names], ",".join(extra) if extra else None, None


def parse_json_lines(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """Lines (`line`, `line_no`, optionally BAD_TEXT, and carried columns) → raw rows: `names` as text,
    `_raw_record`, `_parse_error`, `_extra_fields`, `_source_line`, then the carried columns as they are."""
    known = frozenset(names)
    texts = table.column("line").to_pylist()
    bad = table.column(BAD_TEXT).to_pylist() if BAD_TEXT in table.column_names else [False] * len(texts)
    values: list[list[str | None]] = [[] for _ in names]
    raw, errors, extras = [], [], []
    for line, is_bad in zip(texts, bad, strict=True):
        row, extra, error = _record(line, bool(is_bad), names, known)
        for column, value in zip(values, row, strict=True):
            column.append(value)
        raw.append(line if error is not None or extra is not None else None)
        errors.append(error)
        extras.append(extra)
    columns = {n: pa.array(v, pa.string()) for n, v in zip(names, values, strict=True)}
    columns |= {
        "_raw_record": pa.array(raw, pa.string()),
        "_parse_error": pa.array(errors, pa.string()),
        "_extra_fields": pa.array(extras, pa.string()),
        "_source_line": table.column("line_no").cast(pa.int64()),
    }
    carried = [c for c in table.column_names if c not in ("line", "line_no", BAD_TEXT)]
    return pa.table({**columns, **{c: table.column(c) for c in carried}})
