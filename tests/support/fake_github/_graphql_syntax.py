"""A parser for the subset of GraphQL the fake answers: one operation (``mutation`` or
``query``) with variable definitions, fields with aliases, arguments and selections, and
literal values (no fragments, directives or block strings).

A document outside the subset is refused with GitHub's parse error: ``Parse error on "<token>"
(<KIND>) at [<line>, <column>]``, or ``Unexpected end of document``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
    | (?P<ELLIPSIS>\.\.\.)
    | (?P<punct>[!$()\:=@\[\]{|}])
    | (?P<FLOAT>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+))
    | (?P<INT>-?(?:0|[1-9][0-9]*))
    | (?P<IDENTIFIER>[_A-Za-z][_0-9A-Za-z]*)
    | (?P<STRING>"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")
    """,
    re.VERBOSE,
)
# graphql-ruby's names for the punctuators, which GitHub's parse errors quote.
_PUNCT_KINDS = {
    "!": "BANG",
    "$": "VAR_SIGN",
    "(": "LPAREN",
    ")": "RPAREN",
    ":": "COLON",
    "=": "EQUALS",
    "@": "DIR_SIGN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    "{": "LCURLY",
    "|": "PIPE",
    "}": "RCURLY",
}


class GraphQLSyntaxError(Exception):
    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def body(self) -> dict[str, Any]:
        """GitHub's answer to a document it cannot parse (no ``data``)."""
        locations = [{"line": self.line, "column": self.column}] if self.line is not None else []
        return {"errors": [{"message": self.message, "locations": locations}]}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class VariableDefinition:
    name: str
    type: str  # as written, e.g. ``ID!``
    default: Any = None


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None
    arguments: dict[str, Any]  # values: literals, ``Variable``, lists and dicts of them
    selections: tuple[Field, ...]
    line: int
    column: int

    @property
    def key(self) -> str:
        """The name the field has in the response."""
        return self.alias or self.name


@dataclass(frozen=True)
class Operation:
    kind: str  # "mutation" or "query"
    name: str | None
    variables: tuple[VariableDefinition, ...]
    selections: tuple[Field, ...]


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        column = pos - line_start + 1
        if match is None:
            bad = source[pos]
            raise GraphQLSyntaxError(
                f'Parse error on "{bad}" (error) at [{line}, {column}]', line, column
            )
        text = match.group()
        kind = match.lastgroup or ""
        if kind != "skip":
            tokens.append(Token(_PUNCT_KINDS.get(text, kind), text, line, column))
        for newline in re.finditer(r"\r\n|\n|\r", text):
            line += 1
            line_start = pos + newline.end()
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token is None:
            raise GraphQLSyntaxError("Unexpected end of document")
        if token.kind != kind or (text is not None and token.text != text):
            raise _unexpected(token)
        self.pos += 1
        return token

    def accept(self, kind: str) -> Token | None:
        token = self.peek()
        if token is not None and token.kind == kind:
            self.pos += 1
            return token
        return None

    def document(self) -> Operation:
        first = self.peek()
        if first is None:
            raise GraphQLSyntaxError("Unexpected end of document")
        if first.kind == "LCURLY":
            operation = Operation("query", None, (), self.selection_set())
        elif first.kind == "IDENTIFIER" and first.text in ("mutation", "query"):
            operation = self.operation()
        else:
            raise _unexpected(first)
        extra = self.peek()
        if extra is not None:
            raise _unexpected(extra)  # one operation a document
        return operation

    def operation(self) -> Operation:
        kind = self.take("IDENTIFIER").text
        named = self.accept("IDENTIFIER")
        variables: list[VariableDefinition] = []
        if self.accept("LPAREN"):
            while not self.accept("RPAREN"):
                variables.append(self.variable_definition())
        return Operation(
            kind, named.text if named else None, tuple(variables), self.selection_set()
        )

    def variable_definition(self) -> VariableDefinition:
        self.take("VAR_SIGN")
        name = self.take("IDENTIFIER").text
        self.take("COLON")
        type_ = self.type_reference()
        default = self.value() if self.accept("EQUALS") else None
        return VariableDefinition(name, type_, default)

    def type_reference(self) -> str:
        if self.accept("LBRACKET"):
            inner = self.type_reference()
            self.take("RBRACKET")
            written = f"[{inner}]"
        else:
            written = self.take("IDENTIFIER").text
        return written + "!" if self.accept("BANG") else written

    def selection_set(self) -> tuple[Field, ...]:
        self.take("LCURLY")
        fields = [self.field()]
        while not self.accept("RCURLY"):
            fields.append(self.field())
        return tuple(fields)

    def field(self) -> Field:
        first = self.take("IDENTIFIER")
        alias, name = None, first
        if self.accept("COLON"):
            alias, name = first.text, self.take("IDENTIFIER")
        arguments: dict[str, Any] = {}
        if self.accept("LPAREN"):
            arguments = self.object_fields("RPAREN")
        selections = self.selection_set() if self._next_is("LCURLY") else ()
        return Field(name.text, alias, arguments, selections, first.line, first.column)

    def object_fields(self, closing: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while not self.accept(closing):
            key = self.take("IDENTIFIER").text
            self.take("COLON")
            fields[key] = self.value()
        return fields

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            raise GraphQLSyntaxError("Unexpected end of document")
        self.pos += 1
        if token.kind == "VAR_SIGN":
            return Variable(self.take("IDENTIFIER").text)
        if token.kind == "LBRACKET":
            items = []
            while not self.accept("RBRACKET"):
                items.append(self.value())
            return items
        if token.kind == "LCURLY":
            return self.object_fields("RCURLY")
        return _literal(token)

    def _next_is(self, kind: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind


def _literal(token: Token) -> Any:
    if token.kind == "STRING":
        return json.loads(token.text)  # GraphQL's string escapes are JSON's
    if token.kind == "INT":
        return int(token.text)
    if token.kind == "FLOAT":
        return float(token.text)
    if token.kind == "IDENTIFIER":
        constants = {"true": True, "false": False, "null": None}
        return constants.get(token.text, token.text)  # anything else: an enum value
    raise _unexpected(token)


def _unexpected(token: Token) -> GraphQLSyntaxError:
    return GraphQLSyntaxError(
        f'Parse error on "{token.text}" ({token.kind}) at [{token.line}, {token.column}]',
        token.line,
        token.column,
    )


def parse(source: str) -> Operation:
    """The one operation of ``source``; raises ``GraphQLSyntaxError``."""
    return _Parser(tokenize(source)).document()
