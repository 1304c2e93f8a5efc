"""Pins in a spec, for every lock format: what a pin writes, and what an unpin gives back.

A first pin remembers the person's own entry, as written, in its note's ``(was: ...)``. A
re-pin keeps that first ``was:`` and the earlier reason (unless a new one is given), so an
unpin always puts the person's line back byte for byte, however often the package was
pinned or rolled back in between. A line that still carries Lockwarden's note but is no
longer an exact pin was edited by hand: Lockwarden leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.locks.formats.base import LockFormat, SpecEntry
from bot.locks.pin_notes import NextPin, PinNote, next_pin, pin_note

PinRefused = Literal["already-pinned", "edited-by-hand"]


@dataclass(frozen=True)
class PinAuthor:
    """Who asks for the pin, where, and why."""

    verb: str
    """``pinned`` or ``rolled back``."""
    login: str
    number: int | None
    reason: str | None = None


@dataclass(frozen=True)
class SpecEdit:
    """A spec before and after an edit; ``entry``: how it listed the package before."""

    text: str
    entry: SpecEntry | None


def pin_spec(
    fmt: LockFormat, edit: SpecEdit, spec: str, requirement: str, author: PinAuthor
) -> str | PinRefused:
    """``edit.text`` with ``requirement`` (``name==version``) pinned and its note beside it."""
    package, _, version = requirement.partition("==")
    plan: NextPin | PinRefused = NextPin(None, author.reason)
    if edit.entry is not None:
        entry = edit.entry
        plan = next_pin(entry.written, entry.comment, entry.pinned_version, version, author.reason)
    if isinstance(plan, str):
        return plan
    note = pin_note(author.verb, author.login, author.number, plan.reason, plan.was)
    return fmt.pin(edit.text, spec, package.strip(), requirement, note)


def unpin_spec(fmt: LockFormat, edit: SpecEdit, spec: str, package: str) -> str | PinRefused:
    """``edit.text`` without Lockwarden's pin of ``package`` (unchanged when it has none)."""
    entry = edit.entry
    if entry is not None and PinNote.parse(entry.comment) and entry.pinned_version is None:
        return "edited-by-hand"
    return fmt.unpin(edit.text, spec, package)


def read_entry(fmt: LockFormat, text: str, spec: str, package: str) -> SpecEdit:
    """The spec and how it lists ``package``, ready for ``pin_spec`` or ``unpin_spec``."""
    return SpecEdit(text, fmt.spec_entry(text, spec, package))
