"""OData query expressions: `$filter`, `$orderby`, `$select` and key predicates `(guid)` / `(a='x',b=1)`.

Filters support eq ne gt ge lt le, and or not, parentheses, contains/startswith/endswith, with OData's
literal types. Dataverse compares strings case-insensitively (SQL collation); Global Discovery does not.
Operand types are checked as OData does (a Guid column against a quoted string is a 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.dataverse.errors import DataverseError, bad_query
from sandbox.dataverse.wire import parse_datetime

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDlL]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[(),=/])
    """,
    re.VERBOSE,
)
_COMPARISONS = {
    "eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_FUNCTIONS = ("contains", "startswith", "endswith")
_NUMERIC = {"Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class Literal:
    value: Any
    edm: str  # Edm.String, Edm.Int32, Edm.Decimal, Edm.Boolean, Edm.Guid, Edm.DateTimeOffset, or "null"


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise bad_query(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def literal_of(token: Token) -> Literal | None:
    if token.kind == "string":
        return Literal(token.text[1:-1].replace("''", "'"), "Edm.String")
    if token.kind == "guid":
        return Literal(token.text.lower(), "Edm.Guid")
    if token.kind == "datetime":
        moment = parse_datetime(token.text)
        return Literal(moment, "Edm.DateTimeOffset") if moment else None
    if token.kind == "number":
        text = token.text.rstrip("mMdDlL")
        if "." in text or "e" in text.lower():
            return Literal(Decimal(text), "Edm.Decimal")
        number = int(text)
        return Literal(number, "Edm.Int32" if -(2**31) <= number < 2**31 else "Edm.Int64")
    if token.kind == "name" and token.text in ("true", "false"):
        return Literal(token.text == "true", "Edm.Boolean")
    if token.kind == "name" and token.text == "null":
        return Literal(None, "null")
    return None


# Filters --------------------------------------------------------------------------------------------------

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class Schema:
    """What an expression may name: property (wire) name -> Edm type, and the type name for errors."""

    types: Mapping[str, str]
    type_name: str
    case_sensitive: bool = False

    def unknown(self, name: str) -> DataverseError:
        return bad_query(f"Could not find a property named '{name}' on type '{self.type_name}'.")


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.schema = schema

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise bad_query(f"Syntax error: unexpected end of '{self.text}'.")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise bad_query(f"Syntax error at position {token.position} in '{self.text}'.")

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            token = self.take()
            raise bad_query(f"Syntax error at position {token.position} in '{self.text}'.")
        return predicate

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            right = self.negation()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def negation(self) -> Predicate:
        token = self.peek()
        if token is not None and token.text == "not":
            self.take()
            inner = self.negation()
            return lambda row: not inner(row)
        return self.primary()

    def primary(self) -> Predicate:
        token = self.take()
        if token.text == "(":
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token.kind == "name" and token.text in _FUNCTIONS:
            return self.function(token.text)
        left = self.operand(token)
        operator = self.take()
        if operator.text not in _COMPARISONS:
            raise bad_query(f"Syntax error at position {operator.position} in '{self.text}'.")
        right = self.operand(self.take())
        return self.comparison(operator.text, left, right)

    def operand(self, token: Token) -> tuple[str | None, Literal | None]:
        literal = literal_of(token)
        if literal is not None:
            return None, literal
        if token.kind != "name":
            raise bad_query(f"Syntax error at position {token.position} in '{self.text}'.")
        if token.text not in self.schema.types:
            raise self.schema.unknown(token.text)
        return token.text, None

    def _edm(self, side: tuple[str | None, Literal | None]) -> str:
        name, literal = side
        return self.schema.types[name] if name is not None else (literal.edm if literal else "null")

    def comparison(self, op: str, left: tuple[str | None, Literal | None], right: tuple[str | None, Literal | None]) -> Predicate:
        left_type, right_type = self._edm(left), self._edm(right)
        if not _compatible(left_type, right_type):
            raise bad_query(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{left_type}' and '{right_type}' for operator kind '{_COMPARISONS[op]}'."
            )
        kind = left_type if left_type != "null" else right_type
        sensitive = self.schema.case_sensitive

        def value(side: tuple[str | None, Literal | None], row: Row) -> Any:
            name, literal = side
            raw = row.get(name) if name is not None else (literal.value if literal else None)
            return _normalise(raw, kind, sensitive)

        def test(row: Row) -> bool:
            a, b = value(left, row), value(right, row)
            if op == "eq":
                return bool(a == b)
            if op == "ne":
                return bool(a != b)
            if a is None or b is None:
                return False
            return bool({"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op])

        return test

    def function(self, name: str) -> Predicate:
        self.expect("(")
        target = self.operand(self.take())
        self.expect(",")
        argument = self.operand(self.take())
        self.expect(")")
        if self._edm(target) != "Edm.String" or self._edm(argument) not in ("Edm.String", "null"):
            raise bad_query(
                f"No function signature for the function with name '{name}' matches the specified arguments. The "
                f"function signatures considered are: {name}(Edm.String Nullable=true, Edm.String Nullable=true)."
            )
        sensitive = self.schema.case_sensitive

        def test(row: Row) -> bool:
            text = _side_value(target, row)
            part = _side_value(argument, row)
            if text is None or part is None:
                return False
            if not sensitive:
                text, part = str(text).casefold(), str(part).casefold()
            if name == "contains":
                return str(part) in str(text)
            if name == "startswith":
                return str(text).startswith(str(part))
            return str(text).endswith(str(part))

        return test


def _side_value(side: tuple[str | None, Literal | None], row: Row) -> Any:
    name, literal = side
    return row.get(name) if name is not None else (literal.value if literal else None)


def _compatible(a: str, b: str) -> bool:
    if "null" in (a, b) or a == b:
        return True
    return a in _NUMERIC and b in _NUMERIC


def _normalise(value: Any, kind: str, case_sensitive: bool) -> Any:
    if value is None:
        return None
    if kind == "Edm.String":
        return str(value) if case_sensitive else str(value).casefold()
    if kind == "Edm.Guid":
        return str(value).lower()
    if kind == "Edm.DateTimeOffset":
        return value if not isinstance(value, str) else parse_datetime(value)
    if kind in _NUMERIC:
        return Decimal(str(value))
    return value


def compile_filter(text: str, schema: Schema) -> Predicate:
    return _Parser(text, schema).parse()


# $orderby, $select, keys -----------------------------------------------------------------------------------


def parse_orderby(text: str, schema: Schema) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise bad_query(f"Syntax error in $orderby '{text}'.")
        if words[0] not in schema.types:
            raise schema.unknown(words[0])
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[str, bool]], schema: Schema) -> list[dict[str, Any]]:
    result = list(rows)
    for name, descending in reversed(order):
        kind = schema.types[name]
        # SQL Server puts nulls first when ascending, last when descending.
        result.sort(key=_sorter(name, kind, schema), reverse=descending)
    return result


def _sorter(name: str, kind: str, schema: Schema) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    def key(row: dict[str, Any]) -> tuple[bool, Any]:
        normalised = _normalise(row.get(name), kind, schema.case_sensitive)
        return (normalised is not None, normalised if normalised is not None else 0)

    return key


def parse_select(text: str, schema: Schema) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in schema.types:
            raise schema.unknown(name)
    return names


def parse_key(text: str) -> str | dict[str, Literal]:
    """`(guid)` -> the GUID; `(a='x',b=<guid>)` -> {name: literal}."""
    tokens = tokenize(text)
    if len(tokens) == 1:
        literal = literal_of(tokens[0])
        if literal is not None and literal.edm == "Edm.Guid":
            return str(literal.value)
        raise bad_query(f"Bad Request - Error in query syntax: the key '{text}' is not a valid primary key value.")
    values: dict[str, Literal] = {}
    index = 0
    while index < len(tokens):
        if index + 2 >= len(tokens) or tokens[index].kind != "name" or tokens[index + 1].text != "=":
            raise bad_query(f"Bad Request - Error in query syntax: '{text}'.")
        literal = literal_of(tokens[index + 2])
        if literal is None:
            raise bad_query(f"Bad Request - Error in query syntax: '{text}'.")
        values[tokens[index].text] = literal
        index += 3
        if index < len(tokens):
            if tokens[index].text != ",":
                raise bad_query(f"Bad Request - Error in query syntax: '{text}'.")
            index += 1
    return values
