"""The note Lockwarden writes beside a pin it puts into a spec, for every spec format.

``pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer``: who pinned, where, what
the spec said before (so an unpin can put it back) and why. Requirements specs, Poetry's
``pyproject.toml`` and conda's ``environment.yml`` all carry it as a comment; the review
commands write it, the spec editors read it back.
"""

from __future__ import annotations

import re

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
    was = one_line(was)
    if was is not None:
        note += f" (was: {was})"
    reason = one_line(reason)
    if reason is not None:
        note += f": {reason}"
    return note
