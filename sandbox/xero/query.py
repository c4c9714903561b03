"""Xero's `where` and `order` parameters: the Dynamic LINQ subset that settings endpoints accept.

Supported: `==`/`=`, `!=`/`<>`, `<`, `<=`, `>`, `>=`; `AND`/`&&`, `OR`/`||`, `NOT`/`!`; parentheses;
string literals in double quotes (`""` or `\\"` inside), numbers, `true`/`false`/`null`,
`Guid("...")`, `DateTime(y, m, d[, h, m, s])`, `DateTime.Parse("...")`; string methods
`Contains`, `StartsWith`, `EndsWith`, `ToLower`, `ToUpper`, `Trim`. Field names are case-insensitive,
as in Xero. What Xero refuses (unknown fields, `>` on strings, syntax errors) raises `QueryError`, which
the API answers with 400 QueryParseException.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.xero.resources import Kind, Record


class QueryError(ValueError):
    """The text Xero puts in QueryParseException.Message."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.|"")*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!().,])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] == '"':
                raise QueryError("Unterminated string literal")
            raise QueryError(f"Syntax error '{text[pos]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(_Tok("end", "", pos))
    return out


@dataclass(frozen=True)
class _Expr:
    kind: Kind | None  # None: the null literal
    fn: Callable[[Record], Any]


_NUMERIC = {Kind.DECIMAL, Kind.INT}
_ORDERED = _NUMERIC | {Kind.DATETIME}
_STRING_METHODS = {"contains": "Contains", "startswith": "StartsWith", "endswith": "EndsWith",
                   "tolower": "ToLower", "toupper": "ToUpper", "trim": "Trim"}


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r'""|\\(.)', lambda m: m.group(1) if m.group(1) is not None else '"', body)


def _comparable(value: Any, kind: Kind | None) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if kind == Kind.GUID and isinstance(value, str):
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, Kind], type_name: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.fields = {name.lower(): (name, kind) for name, kind in fields.items()}
        self.type_name = type_name

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.tok.text != text:
            raise QueryError(f"'{text}' expected")
        self.i += 1

    def keyword(self, *words: str) -> bool:
        return self.tok.text.lower() in words and self.tok.kind in ("ident", "op")

    def parse(self) -> Callable[[Record], bool]:
        if self.tok.kind == "end":
            raise QueryError("Expression expected")
        expr = self.or_()
        if self.tok.kind != "end":
            raise QueryError("Syntax error")
        self.boolean(expr)
        return lambda record: expr.fn(record) is True

    def boolean(self, expr: _Expr) -> None:
        if expr.kind != Kind.BOOLEAN:
            raise QueryError("Expression of type 'Boolean' expected")

    def or_(self) -> _Expr:
        left = self.and_()
        while self.keyword("or", "||"):
            self.take()
            right = self.and_()
            self.boolean(left)
            self.boolean(right)
            left = _Expr(Kind.BOOLEAN, _either(left.fn, right.fn))
        return left

    def and_(self) -> _Expr:
        left = self.unary()
        while self.keyword("and", "&&"):
            self.take()
            right = self.unary()
            self.boolean(left)
            self.boolean(right)
            left = _Expr(Kind.BOOLEAN, _both(left.fn, right.fn))
        return left

    def unary(self) -> _Expr:
        if self.keyword("not", "!"):
            self.take()
            inner = self.unary()
            self.boolean(inner)
            return _Expr(Kind.BOOLEAN, _negate(inner.fn))
        return self.comparison()

    def comparison(self) -> _Expr:
        left = self.postfix()
        if self.tok.kind == "op" and self.tok.text in ("==", "=", "!=", "<>", "<", "<=", ">", ">="):
            op = self.take().text
            right = self.postfix()
            return self.compare(left, op, right)
        return left

    def compare(self, left: _Expr, op: str, right: _Expr) -> _Expr:
        lk, rk = left.kind, right.kind
        equality = op in ("==", "=", "!=", "<>")
        same = (lk == rk or {lk, rk} <= _NUMERIC or {lk, rk} == {Kind.GUID, Kind.STRING}
                or None in (lk, rk))
        if not same or (not equality and not ({lk, rk} - {None} <= _ORDERED)):
            names = (k.value if k else "Object" for k in (lk, rk))
            raise QueryError(f"Operator '{op}' incompatible with operand types '{next(names)}' and '{next(names)}'")
        kind = Kind.GUID if Kind.GUID in (lk, rk) else lk or rk

        def test(record: Record) -> bool:
            a, b = _comparable(left.fn(record), kind), _comparable(right.fn(record), kind)
            if op in ("==", "="):
                return bool(a == b)
            if op in ("!=", "<>"):
                return bool(a != b)
            if a is None or b is None:
                return False
            return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])

        return _Expr(Kind.BOOLEAN, test)

    def postfix(self) -> _Expr:
        expr = self.primary()
        while self.tok.text == ".":
            self.take()
            name_tok = self.take()
            method = _STRING_METHODS.get(name_tok.text.lower())
            type_name = expr.kind.value if expr.kind else "Object"
            if name_tok.kind != "ident" or method is None or expr.kind != Kind.STRING:
                raise QueryError(f"No applicable method '{name_tok.text}' exists in type '{type_name}'")
            self.expect("(")
            if method in ("Contains", "StartsWith", "EndsWith"):
                arg = self.postfix()
                if arg.kind != Kind.STRING:
                    raise QueryError(f"No applicable method '{method}' exists in type 'String'")
                self.expect(")")
                expr = _Expr(Kind.BOOLEAN, _string_test(method, expr.fn, arg.fn))
            else:
                self.expect(")")
                expr = _Expr(Kind.STRING, _string_map(method, expr.fn))
        return expr

    def primary(self) -> _Expr:
        tok = self.take()
        if tok.kind == "string":
            text = _unquote(tok.text)
            return _Expr(Kind.STRING, lambda r: text)
        if tok.kind == "number":
            number = Decimal(tok.text)
            return _Expr(Kind.DECIMAL, lambda r: number)
        if tok.text == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if tok.kind != "ident":
            raise QueryError("Expression expected")
        word = tok.text.lower()
        if word in ("true", "false"):
            value = word == "true"
            return _Expr(Kind.BOOLEAN, lambda r: value)
        if word == "null":
            return _Expr(None, lambda r: None)
        if word == "guid" and self.tok.text == "(":
            return self.guid()
        if word == "datetime" and self.tok.text in ("(", "."):
            return self.datetime_()
        try:
            name, kind = self.fields[word]
        except KeyError:
            raise QueryError(f"No property or field '{tok.text}' exists in type '{self.type_name}'") from None
        return _Expr(kind, lambda r: r.get(name))

    def guid(self) -> _Expr:
        self.expect("(")
        tok = self.take()
        if tok.kind != "string":
            raise QueryError("No applicable constructor exists in type 'Guid'")
        value = _unquote(tok.text).lower()
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
            raise QueryError("Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
        self.expect(")")
        return _Expr(Kind.GUID, lambda r: value)

    def datetime_(self) -> _Expr:
        if self.tok.text == ".":
            self.take()
            if self.take().text.lower() != "parse":
                raise QueryError("No applicable method exists in type 'DateTime'")
            self.expect("(")
            tok = self.take()
            if tok.kind != "string":
                raise QueryError("No applicable method 'Parse' exists in type 'DateTime'")
            try:
                value = datetime.fromisoformat(_unquote(tok.text))
            except ValueError:
                raise QueryError("String was not recognized as a valid DateTime.") from None
            self.expect(")")
        else:
            self.expect("(")
            parts: list[int] = []
            while True:
                tok = self.take()
                if tok.kind != "number":
                    raise QueryError("No applicable constructor exists in type 'DateTime'")
                parts.append(int(Decimal(tok.text)))
                if self.tok.text != ",":
                    break
                self.take()
            self.expect(")")
            try:
                if len(parts) not in (3, 6):
                    raise ValueError(parts)
                full = [*parts, 0, 0, 0]
                value = datetime(full[0], full[1], full[2], full[3], full[4], full[5])
            except (ValueError, InvalidOperation):
                raise QueryError("No applicable constructor exists in type 'DateTime'") from None
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _Expr(Kind.DATETIME, lambda r: moment)


Fn = Callable[[Record], Any]


def _either(a: Fn, b: Fn) -> Fn:
    return lambda r: bool(a(r)) or bool(b(r))


def _both(a: Fn, b: Fn) -> Fn:
    return lambda r: bool(a(r)) and bool(b(r))


def _negate(a: Fn) -> Fn:
    return lambda r: not a(r)


def _string_test(method: str, subject: Callable[[Record], Any], arg: Callable[[Record], Any]) -> Callable[[Record], bool]:
    def test(record: Record) -> bool:
        value, needle = subject(record), arg(record)
        if value is None or needle is None:
            return False
        if method == "Contains":
            return needle in value
        return bool(value.startswith(needle) if method == "StartsWith" else value.endswith(needle))
    return test


def _string_map(method: str, subject: Callable[[Record], Any]) -> Callable[[Record], Any]:
    def apply(record: Record) -> Any:
        value = subject(record)
        if value is None:
            return None
        return value.lower() if method == "ToLower" else value.upper() if method == "ToUpper" else value.strip()
    return apply


def compile_where(text: str, fields: Mapping[str, Kind], type_name: str) -> Callable[[Record], bool]:
    return _Parser(text, fields, type_name).parse()


def _sort_key(value: Any) -> tuple[int, Any]:
    # Nulls first, strings without case, as the SQL collation behind the API orders them.
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)


def _field_key(name: str) -> Callable[[Record], tuple[int, Any]]:
    return lambda r: _sort_key(r.get(name))


def apply_order(records: list[Record], text: str, fields: Mapping[str, Kind], type_name: str) -> list[Record]:
    by_lower = {name.lower(): name for name in fields}
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError("Syntax error")
        name = by_lower.get(words[0].lower())
        if name is None:
            raise QueryError(f"No property or field '{words[0]}' exists in type '{type_name}'")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC", "ASCENDING", "DESCENDING"):
            raise QueryError("Syntax error")
        keys.append((name, direction.startswith("DESC")))
    out = list(records)
    for name, descending in reversed(keys):
        out.sort(key=_field_key(name), reverse=descending)
    return out
