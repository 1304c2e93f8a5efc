"""Pins written into a requirements spec (``.in``), as pure text edits.

A pin replaces the package's line with ``<requirement>  # <note>``; the note says who pinned
it and what the line said before, so ``unpin_in_spec`` can put that line back. Every other
line is kept byte-for-byte, line endings included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.errors import LockwardenError
from bot.lines import physical_lines
from bot.locks.formats.base import SpecEntry
from bot.locks.lockfile import split_comment, split_options
from bot.locks.pin_notes import PIN_NOTE_RE, note_comment


@dataclass(frozen=True)
class _Logical:
    """A requirement-file line, possibly continued over several physical lines."""

    first: int
    """Index of its first physical line."""
    last: int
    continued: bool
    """True when a physical line of it ends with ``\\``."""
    code: str
    """Code without comment, continuations joined, stripped."""
    comment: str | None
    """The comment of its last physical line, stripped, without ``#``."""


def _logical(lines: list[str]) -> Iterator[_Logical]:
    pending: list[str] = []
    first = 0
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        code, comment = split_comment(body)
        comment = None if comment is None else comment.strip()
        if not pending:
            first = index
        if comment is None and code.rstrip().endswith("\\"):
            pending.append(code.rstrip()[:-1])
            continue
        pending.append(code)
        yield _Logical(first, index, len(pending) > 1, " ".join(pending).strip(), comment)
        pending = []
    if pending:  # the file ends on a continuation
        yield _Logical(first, len(lines) - 1, True, " ".join(pending).strip(), None)


def _names(line: _Logical, package: str) -> bool:
    """True when ``line`` is a requirement of ``package`` (canonical name)."""
    if not line.code or line.code.startswith("-"):
        return False  # blank, comment, option, -r / -c / -e line
    try:
        req = Requirement(split_options(line.code)[0])
    except InvalidRequirement:
        return False  # a bare URL or path
    return canonicalize_name(req.name) == package


def spec_entry(text: str, package: str) -> SpecEntry | None:
    """The spec's first line for ``package``: as written (comment included), its comment,
    and its version when it is an exact pin; None when the spec does not name it."""
    wanted = canonicalize_name(package)
    lines = physical_lines(text)
    for line in _logical(lines):
        if _names(line, wanted):
            written = "".join(lines[line.first : line.last + 1]).rstrip("\r\n")
            return SpecEntry(written, line.comment, _exact_version(split_options(line.code)[0]))
    return None


def _exact_version(requirement: str) -> str | None:
    clauses = list(Requirement(requirement).specifier)
    if len(clauses) == 1 and clauses[0].operator == "==" and not clauses[0].version.endswith("*"):
        return clauses[0].version
    return None


def _line_ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def pin_in_spec(text: str, requirement: str, note: str, *, path: str = "the spec") -> str:
    """The spec with the package's line(s) replaced by ``<requirement>  # <note>``, or with
    that line appended when the spec does not name the package.

    Read the old line with ``spec_entry`` first to put it into the note's
    ``(was: ...)``. ``path`` names the spec in errors.
    """
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise LockwardenError(
            f"cannot pin {requirement!r}: not a valid requirement ({exc}); write e.g. "
            "'numpy==1.26.4'"
        ) from exc
    wanted = canonicalize_name(req.name)
    comment = note_comment(note)
    pinned = requirement.strip() + (f"  # {comment}" if comment else "")
    lines = physical_lines(text)
    matches = [line for line in _logical(lines) if _names(line, wanted)]
    for line in matches:
        if line.continued:
            raise LockwardenError(
                f"{path}:{line.first + 1}: the requirement for {wanted} is continued with '\\' "
                "at the end of a line; join it into one line and run the command again"
            )
    if not matches:
        eol = _line_ending(text)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += eol
        return "".join(lines) + pinned + eol
    replaced = {line.first for line in matches}
    out = []
    for index, line_text in enumerate(lines):
        if index == matches[0].first:
            out.append(pinned + line_text[len(line_text.rstrip("\r\n")) :])
        elif index not in replaced:  # further lines of the package give way to the pin
            out.append(line_text)
    return "".join(out)


def unpin_in_spec(text: str, package: str) -> tuple[str, bool]:
    """The spec without the pin Lockwarden wrote for ``package``: the ``(was: ...)``
    requirement goes back in its place, or the line goes when there was none.

    ``(text, False)`` when the spec has no such pin (a hand-written pin is left alone).
    """
    wanted = canonicalize_name(package)
    lines = physical_lines(text)
    restore: dict[int, str | None] = {}
    for line in _logical(lines):
        if line.continued or line.comment is None or not _names(line, wanted):
            continue
        note = PIN_NOTE_RE.match(line.comment)
        if note is not None:
            restore[line.first] = note.group("was")
    if not restore:
        return text, False
    out = []
    for index, line_text in enumerate(lines):
        if index not in restore:
            out.append(line_text)
            continue
        was = restore[index]
        if was is not None:
            out.append(was + line_text[len(line_text.rstrip("\r\n")) :])
    return "".join(out), True
