"""What a compile is asked to do, and how one fails: the words every stage and report share.

Kept apart from ``bot.locks.compiler`` (the compilers and the sandbox they run in), so that
reading a result needs none of that loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModeKind = Literal["minimal", "full", "targeted"]
FailureKind = Literal[
    "not-found", "conflict", "index-unreachable", "timeout", "tool-error", "refused"
]


@dataclass(frozen=True)
class CompileMode:
    """minimal: only what spec edits force; full: ``--upgrade``; targeted: ``-P pkg[==v]``."""

    kind: ModeKind = "minimal"
    packages: tuple[str, ...] = ()
