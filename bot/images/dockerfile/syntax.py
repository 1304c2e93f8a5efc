"""Dockerfile syntax: instructions with their positions, heredocs, parser directives, pragmas
and the words of their arguments.

Every character of an instruction's arguments keeps its offset in the whole text, which the
byte-exact rewrites of base images and OS-package pins need, and which gives each word its
line. :func:`parse_dockerfile` reads the text the way Docker does: parser directives first
(``# escape=`` sets the continuation character), continuation lines joined, blank and comment
lines inside a continued instruction skipped, heredoc bodies (``RUN <<EOF``) kept apart from
the instructions. It is lenient (what is not an instruction is skipped) and lists what Docker
would refuse as :class:`Problem` values, for the checks to report.

:func:`shell_tokens` splits arguments into words and operators, once for every reader: shell
commands in ``RUN`` (quotes, ``\\``-newline, comments, ``&&``, ``|``, redirections...) and,
with ``shell=False``, the plain words of ``FROM``, ``COPY``, ``ENV``, ``WORKDIR``...

A comment right above an instruction may silence rules for it: ``# lockwarden ignore=LW005``
(and ``# hadolint ignore=DL3008``, which hadolint applies itself).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from bot.errors import LockwardenError
from bot.lines import physical_lines

Chars = tuple[tuple[str, int], ...]
"""Characters of a piece of Dockerfile text, each with its offset in the whole text (-1 for a
character that stands for an escape, such as ``\\u002d`` in an exec-form word)."""

INSTRUCTIONS = frozenset(
    {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK"}
    | {"LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME"}
    | {"WORKDIR"}
)
HEREDOC_RE = re.compile(
    r"(?:^|(?<=\s))\d*<<(-?)(?:\"([^\"\s]+)\"|'([^'\s]+)'|\\?([A-Za-z_][\w.-]*))"
)
"""A heredoc marker (``<<EOF``, ``<<-"EOT"``...): group 1 is ``-`` when leading tabs of the
closing line are ignored; groups 2 to 4 hold the name."""

_HEREDOC_KEYWORDS = frozenset(("RUN", "COPY", "ADD"))
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([A-Za-z_]+)[ \t]*=[ \t]*(\S+)[ \t]*$")
_KEYWORD_RE = re.compile(r"[ \t]*([A-Za-z]+)(?=[ \t\r\n\\`]|$)")
_PRAGMA_RE = re.compile(
    r"^\s*#\s*(lockwarden|hadolint)\s+ignore\s*=\s*([\w\s,]+?)\s*$", re.IGNORECASE
)
_FLAG_RE = re.compile(r"\s*(--[\w-]+(?:=\S*)?)\s*")
_OPERATOR_CHARS = frozenset(";&|()<>")
_NO_OPERATORS: frozenset[str] = frozenset()
_JSON_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_JSON_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ShellToken:
    """A word (quotes removed, ``text``) or an operator (``&&``, ``;``, ``|``, ``>``, a
    newline...), with the offset of each character of ``text``."""

    kind: Literal["word", "operator"]
    chars: Chars

    @property
    def text(self) -> str:
        return "".join(char for char, _ in self.chars)


@dataclass(frozen=True)
class Instruction:
    """One instruction, with where its arguments sit in the text."""

    keyword: str
    """Upper case: ``FROM``, ``RUN``..."""
    line: int
    """1-based line of the keyword."""
    arguments: Chars
    """The arguments after the keyword as Docker joins them: continuation escapes and the
    comment lines inside a continued instruction removed."""
    heredocs: tuple[Chars, ...] = ()
    """The bodies of the instruction's heredocs (``RUN <<EOF``), in order, with line ends."""
    end_line: int = 0
    """1-based last line of the instruction itself (its heredoc bodies follow it)."""
    pragmas: frozenset[tuple[str, str]] = frozenset()
    """``(tool, rule)`` silenced by ``# lockwarden ignore=...``/``# hadolint ignore=...``
    comments right above the instruction."""

    @property
    def value(self) -> str:
        """The arguments as one string, surrounding whitespace removed."""
        return "".join(char for char, _ in self.arguments).strip()

    def ignored(self, tool: str) -> frozenset[str]:
        """The rules a pragma of ``tool`` (``lockwarden``, ``hadolint``) silences here."""
        return frozenset(rule for owner, rule in self.pragmas if owner == tool)

    def words(self) -> tuple[ShellToken, ...]:
        """The plain words of the arguments (no shell operators or comments), without the
        heredoc markers: what ``FROM``, ``COPY``, ``ENV`` and ``WORKDIR`` take."""
        chars = strip_heredoc_markers(self.arguments) if self.heredocs else self.arguments
        return shell_tokens(chars, shell=False)


@dataclass(frozen=True)
class Dockerfile:
    """A Dockerfile's instructions, its parser directives and what Docker would refuse."""

    instructions: tuple[Instruction, ...]
    directives: Mapping[str, str]
    """Parser directives by lower-case name (``syntax``, ``escape``...)."""
    escape: str
    """The continuation character: ``\\`` unless ``# escape=`` sets a backtick."""
    problems: tuple[Problem, ...]
    """In line order."""

    @property
    def problem(self) -> Problem | None:
        """The first reason the file is not a valid Dockerfile, None when it is one."""
        if self.problems:
            return self.problems[0]
        if not any(i.keyword == "FROM" for i in self.instructions):
            return Problem(1, "no FROM instruction: a Dockerfile must start a stage with FROM")
        return None


@dataclass(frozen=True)
class Problem:
    """Why Docker would refuse the file, at a 1-based line; the message says what to fix."""

    line: int
    message: str


def decode_dockerfile(raw: bytes) -> str | Problem:
    """The text of a Dockerfile's bytes (a byte-order mark dropped), or where it is not
    UTF-8."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return Problem(line, f"line {line} is not UTF-8 text; save the file as UTF-8")


def parse_dockerfile(text: str) -> Dockerfile:
    """The instructions of a Dockerfile, in order, and what Docker would refuse in it."""
    lines = physical_lines(text)
    directives = _directives(lines)
    escape = directives.get("escape", "\\")
    reader = _Reader(text, lines, escape if escape in ("\\", "`") else "\\")
    instructions = tuple(reader.instructions())
    problems = sorted(reader.problems, key=lambda p: p.line)
    return Dockerfile(instructions, MappingProxyType(directives), reader.escape, tuple(problems))


def dockerfile_instructions(text: str) -> tuple[Instruction, ...]:
    """The instructions of a Dockerfile, in order. Lenient: text that is not an instruction
    is skipped (``check_dockerfile`` reports syntax errors)."""
    return parse_dockerfile(text).instructions


def _directives(lines: Sequence[str]) -> dict[str, str]:
    """The parser directives (``# escape=```...): only the lines before anything else."""
    found: dict[str, str] = {}
    for line in lines:
        match = _DIRECTIVE_RE.match(line.strip().lstrip("\ufeff"))
        if match is None:
            break  # directives only stand before anything else, comments included
        found.setdefault(match.group(1).lower(), match.group(2))
    return found


def _pragmas(line: str) -> set[tuple[str, str]]:
    match = _PRAGMA_RE.match(line)
    if match is None:
        return set()
    tool = match.group(1).lower()
    return {(tool, r.strip().upper()) for r in match.group(2).split(",") if r.strip()}


class _Reader:
    """Walks the physical lines once, collecting instructions and problems."""

    def __init__(self, text: str, lines: Sequence[str], escape: str) -> None:
        self.text = text
        self.lines = lines
        self.escape = escape
        self.starts = [0]
        for line in lines:
            self.starts.append(self.starts[-1] + len(line))
        self.index = 0
        self.problems: list[Problem] = []
        self.pending: set[tuple[str, str]] = set()
        """Pragmas waiting for the next instruction."""
        self.seen_from = False

    def instructions(self) -> Iterator[Instruction]:
        while self.index < len(self.lines):
            stripped = self.lines[self.index].strip().lstrip("\ufeff")
            if stripped.startswith("#"):
                self.pending.update(_pragmas(stripped))
            if not stripped or stripped.startswith("#"):
                self.index += 1
                continue
            instruction = self._instruction()
            if instruction is not None:
                yield instruction

    def _instruction(self) -> Instruction | None:
        first = self.index
        body = self.lines[first].rstrip("\r\n")
        bom = 1 if first == 0 and body.startswith("\ufeff") else 0
        match = _KEYWORD_RE.match(body, bom)
        if match is None:
            word = body[bom:].split()[0]
            self._problem(first + 1, f"unknown instruction '{word.upper()}' on line {first + 1}")
            self.index += 1
            return None
        pragmas = frozenset(self.pending)
        self.pending = set()
        chars = self._arguments(match.end())
        end_line = self.index
        keyword = match.group(1).upper()
        heredocs = self._heredocs(keyword, chars, first + 1)
        instruction = Instruction(keyword, first + 1, chars, heredocs, end_line, pragmas)
        self._validate(instruction)
        return instruction

    def _arguments(self, column: int) -> Chars:
        """The characters after the keyword, continuation lines joined; leaves ``index`` on
        the line after the instruction."""
        lines = self.lines
        chars: list[tuple[str, int]] = []
        while True:
            body = lines[self.index].rstrip("\r\n")
            content = body[column:]
            trimmed = content.rstrip(" \t")
            continued = trimmed.endswith(self.escape) and self.index + 1 < len(lines)
            kept = trimmed[:-1] if continued else content
            start = self.starts[self.index] + column
            chars.extend((char, start + i) for i, char in enumerate(kept))
            self.index += 1
            column = 0
            if not continued:
                return tuple(chars)
            while self.index < len(lines) and (
                not lines[self.index].strip() or lines[self.index].lstrip().startswith("#")
            ):
                # A pragma inside a continued instruction applies to the next one.
                self.pending.update(_pragmas(lines[self.index]))
                self.index += 1
            if self.index >= len(lines):
                return tuple(chars)

    def _heredocs(self, keyword: str, chars: Chars, line: int) -> tuple[Chars, ...]:
        if keyword not in _HEREDOC_KEYWORDS:
            return ()
        bodies: list[Chars] = []
        joined = "".join(char for char, _ in chars)
        for marker in HEREDOC_RE.finditer(joined):
            name = marker.group(2) or marker.group(3) or marker.group(4)
            body_start = self.index
            while self.index < len(self.lines):
                current = self.lines[self.index].rstrip("\r\n")
                if (current.lstrip("\t") if marker.group(1) else current) == name:
                    break
                self.index += 1
            else:
                self._problem(
                    line,
                    f"the heredoc <<{name} opened on line {line} is never closed;"
                    f" end it with a line holding only {name}",
                )
            start, end = self.starts[body_start], self.starts[self.index]
            bodies.append(tuple((self.text[offset], offset) for offset in range(start, end)))
            self.index += 1  # the terminator line
        return tuple(bodies)

    def _validate(self, instruction: Instruction) -> None:
        keyword, line = instruction.keyword, instruction.line
        if keyword not in INSTRUCTIONS:
            self._problem(line, f"unknown instruction '{keyword}' on line {line}")
        elif not instruction.value:
            self._problem(line, f"{keyword} on line {line} has no arguments")
        elif keyword == "FROM":
            self.seen_from = True
        elif not self.seen_from and keyword != "ARG":
            self._problem(
                line, f"{keyword} on line {line} comes before FROM; only ARG may precede it"
            )

    def _problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))


# --------------------------------------------------------------------------- arguments


def strip_heredoc_markers(chars: Chars) -> Chars:
    """``chars`` without the heredoc markers (``<<EOF``): what the instruction has besides
    its heredocs."""
    joined = "".join(char for char, _ in chars)
    dropped = {i for m in HEREDOC_RE.finditer(joined) for i in range(m.start(), m.end())}
    return tuple(char for i, char in enumerate(chars) if i not in dropped)


def split_flags(chars: Chars) -> tuple[tuple[str, ...], Chars]:
    """The leading ``--flag[=value]`` words of ``RUN``/``COPY`` arguments (``--mount=...``,
    ``--network=host``) and the characters after them."""
    joined = "".join(char for char, _ in chars)
    flags: list[str] = []
    position = 0
    while (match := _FLAG_RE.match(joined, position)) is not None:
        flags.append(match.group(1))
        position = match.end()
    return tuple(flags), chars[position:]


def exec_form(chars: Chars) -> tuple[ShellToken, ...] | None:
    """The words of an exec-form argument list (``["cmd", "arg"]``), each character with its
    offset; None for the shell form (Docker runs text that is not a JSON list of strings with
    the shell)."""
    text = "".join(char for char, _ in chars)
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        return None
    words = tuple(_json_word(chars, text, m) for m in _JSON_STRING_RE.finditer(text))
    return words if words and [w.text for w in words] == parsed else None


def _json_word(chars: Chars, text: str, match: re.Match[str]) -> ShellToken:
    decoded: list[tuple[str, int]] = []
    position = match.start(1)
    while position < match.end(1):
        char = text[position]
        if char != "\\":
            decoded.append((char, chars[position][1]))
            position += 1
            continue
        escape = text[position + 1]
        if escape == "u":
            decoded.append((chr(int(text[position + 2 : position + 6], 16)), -1))
            position += 6
        else:
            decoded.append((_JSON_ESCAPES.get(escape, escape), -1))
            position += 2
    return ShellToken("word", tuple(decoded))


# --------------------------------------------------------------------------- words


def shell_tokens(chars: Chars, *, shell: bool = True) -> tuple[ShellToken, ...]:
    """Split source into words and operators. Quotes are removed from words (their
    characters keep their offsets) and ``\\``-newline is a line continuation. As shell
    (``shell=True``), ``;&|()<>`` and newlines are operators and ``#`` at the start of a word
    begins a comment; otherwise only whitespace separates words."""
    operators = _OPERATOR_CHARS if shell else _NO_OPERATORS
    tokens: list[ShellToken] = []
    index = 0
    while index < len(chars):
        char = chars[index][0]
        if char in " \t\r" or (char == "\n" and not shell):
            index += 1
        elif char == "\n":
            tokens.append(ShellToken("operator", (chars[index],)))
            index += 1
        elif char == "#" and shell:
            while index < len(chars) and chars[index][0] != "\n":
                index += 1
        elif char in operators:
            end = index
            while end < len(chars) and chars[end][0] in operators:
                end += 1
            tokens.append(ShellToken("operator", chars[index:end]))
            index = end
        elif char == "\\" and index + 1 < len(chars) and chars[index + 1][0] == "\n":
            index += 2
        else:
            word, index = _shell_word(chars, index, operators)
            tokens.append(ShellToken("word", word))
    return tuple(tokens)


def _shell_word(chars: Chars, index: int, operators: frozenset[str]) -> tuple[Chars, int]:
    word: list[tuple[str, int]] = []
    while index < len(chars):
        char = chars[index][0]
        if char in " \t\r\n" or char in operators:
            break
        if char == "\\":
            if index + 1 < len(chars) and chars[index + 1][0] != "\n":
                word.append(chars[index + 1])
            index += 2
        elif char == "'":
            end = index + 1
            while end < len(chars) and chars[end][0] != "'":
                end += 1
            word.extend(chars[index + 1 : end])
            index = end + 1
        elif char == '"':
            index = _double_quoted(chars, index + 1, word)
        else:
            word.append(chars[index])
            index += 1
    return tuple(word), index


def _double_quoted(chars: Chars, index: int, word: list[tuple[str, int]]) -> int:
    """Append the inside of a double-quoted string to ``word``; the index after it."""
    while index < len(chars) and chars[index][0] != '"':
        if chars[index][0] == "\\" and index + 1 < len(chars) and chars[index + 1][0] in '$`"\\\n':
            if chars[index + 1][0] != "\n":
                word.append(chars[index + 1])
            index += 2
            continue
        word.append(chars[index])
        index += 1
    return index + 1


# --------------------------------------------------------------------------- positions


class LineIndex:
    """Offsets to 1-based line numbers, for many lookups in one text."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def line(self, offset: int) -> int:
        return bisect_right(self._starts, offset)


def replace_spans(text: str, replacements: Mapping[tuple[int, int], str]) -> str:
    """``text`` with each ``(start, end)`` span replaced; spans must not overlap."""
    out: list[str] = []
    position = 0
    for (start, end), new in sorted(replacements.items()):
        if start < position:
            raise LockwardenError(f"overlapping edits at offset {start}")
        out.append(text[position:start])
        out.append(new)
        position = end
    out.append(text[position:])
    return "".join(out)
