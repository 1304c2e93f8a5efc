"""The note Lockwarden writes beside a pin it puts into a spec, for every spec format.

``pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer``: who pinned, where, what
the spec said before (so an unpin can put it back) and why. Requirements specs, Poetry's
``pyproject.toml`` and conda's ``environment.yml`` all carry it as a comment; the review
commands write it, the spec editors read it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from bot.errors import LockwardenError

VERBS = ("pinned", "rolled back")

PIN_NOTE_RE = re.compile(
    r"^(?P<verb>pinned|rolled back) by @(?P<login>[A-Za-z0-9][A-Za-z0-9-]*(?:\[bot\])?)"
    r"(?: in #(?P<number>\d+))?"
    # The old requirement may hold parentheses (markers): it ends at the ``)`` the reason or
    # the end of the note follows.
    r"(?: \(was: (?P<was>.+?)\)(?=: |$))?"
    r"(?:: (?P<reason>.*))?$"
)
"""The note as a comment's text (without ``#``)."""


@dataclass(frozen=True)
class PinNote:
    """A pin note read back from a spec's comment."""

    verb: str
    login: str
    number: int | None
    was: str | None
    """The person's own entry before the first pin, as written (its comment included)."""
    reason: str | None

    @classmethod
    def parse(cls, comment: str | None) -> PinNote | None:
        """The note in ``comment`` (a comment's text, without ``#``); None when it is none."""
        found = PIN_NOTE_RE.match(comment.strip()) if comment else None
        if found is None:
            return None
        number = found.group("number")
        return cls(
            verb=found.group("verb"),
            login=found.group("login"),
            number=int(number) if number else None,
            was=found.group("was"),
            reason=found.group("reason"),
        )


def one_line(text: str | None) -> str | None:
    """``text`` with its whitespace runs folded to single spaces; None when empty."""
    if text is None:
        return None
    return " ".join(text.split()) or None


def pin_note(verb: str, login: str, number: int | None, reason: str | None, was: str | None) -> str:
    """``pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer``.

    ``verb`` is ``pinned`` or ``rolled back``; ``number`` (the pull request or issue) and
    ``was`` (the spec's requirement before) are left out when None.
    """
    if verb not in VERBS:
        raise LockwardenError(f"unknown pin verb {verb!r}; use one of {', '.join(VERBS)}")
    note = f"{verb} by @{login.removeprefix('@')}"
    if number is not None:
        note += f" in #{number}"
    # ``was`` is kept as written, spaces and all: an unpin puts it back byte for byte.
    if was is not None and was.strip():
        note += f" (was: {_without_line_breaks(was)})"
    reason = one_line(reason)
    if reason is not None:
        note += f": {reason}"
    return note


def _without_line_breaks(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def note_comment(note: str) -> str:
    """``note`` as the text of a one-line comment: line breaks become spaces, nothing else
    changes (the ``was:`` part must stay byte for byte)."""
    return _without_line_breaks(note).strip()


@dataclass(frozen=True)
class NextPin:
    """What a new pin's note says: the person's own entry and the reason."""

    was: str | None
    reason: str | None


PinRefusal = Literal["already-pinned", "edited-by-hand"]


def next_pin(
    written: str | None, comment: str | None, pinned: str | None, version: str, reason: str | None
) -> NextPin | PinRefusal:
    """The note of a pin to ``version`` over an entry written as ``written``.

    A first pin remembers the entry itself. A re-pin keeps the first pin's ``was:`` (the
    person's own entry, which an unpin gives back) and its reason unless a new one is given.
    An entry whose note is Lockwarden's but whose line is no longer an exact pin was edited
    by hand, and is left alone; a pin to the version already pinned changes nothing.
    """
    earlier = PinNote.parse(comment)
    if earlier is None:
        return NextPin(written, reason)
    if pinned is None:
        return "edited-by-hand"
    if _same_version(pinned, version):
        return "already-pinned"
    return NextPin(earlier.was, reason or earlier.reason)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip() == b.strip()
