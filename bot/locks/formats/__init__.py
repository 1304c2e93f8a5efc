"""The lock formats, and the one place that picks one.

Each format lives in its own folder (``requirements/``, ``poetry/``, ``conda/``) and implements
``LockFormat`` (``base.py``). Configuration, the compile stage and the review commands ask
here, by an environment's ``backend:`` or by a lock's path, and never branch on a name.
Adding a format means adding a folder and one entry in ``FORMATS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import LockwardenError
from bot.locks.formats.base import LockFormat, Toolchain
from bot.locks.formats.conda import CONDA
from bot.locks.formats.poetry import POETRY
from bot.locks.formats.requirements import REQUIREMENTS
from bot.locks.lockfile import Lockfile
from bot.locks.spec import SpecTree
from bot.paths import resolve_inside

if TYPE_CHECKING:
    from bot.locks.compiler import LockBackend
    from bot.locks.options import Tool
    from bot.sandbox import EgressPolicy

FORMATS: tuple[LockFormat, ...] = (POETRY, CONDA, REQUIREMENTS)
"""Every format; a lock belongs to the first that owns it (requirements files last: they
have no name or marker of their own)."""

BACKENDS: tuple[str, ...] = tuple(backend for fmt in FORMATS for backend in fmt.backends)

_BY_BACKEND: dict[str, LockFormat] = {b: fmt for fmt in FORMATS for b in fmt.backends}


def format_for(backend: str) -> LockFormat:
    """The format an environment's ``backend:`` compiles."""
    try:
        return _BY_BACKEND[backend]
    except KeyError:
        raise ValueError(
            f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}"
        ) from None


def format_of_lock(path: str, text: str | None = None) -> LockFormat:
    """The format of a lock, from its file name and (when read) its content."""
    return next(fmt for fmt in FORMATS if fmt.owns_lock(path, text))


def parse_any_lock(text: str, path: str) -> Lockfile:
    """Parse a lock of any format; errors name the file and the line."""
    return format_of_lock(path, text).parse_lock(text, path)


def lock_or_none(backend: str, text: str | None, path: str) -> Lockfile | None:
    """``text`` parsed as the lock of a ``backend`` environment; None when there is no text
    or it does not parse (the compile stage is the one that reports an unreadable lock)."""
    if text is None:
        return None
    try:
        return format_for(backend).parse_lock(text, path)
    except (LockwardenError, ValueError):
        return None


def read_spec(root: Path, backend: str, spec: str) -> SpecTree:
    """The spec's direct requirements and included files. A spec that leads outside ``root``
    (a symlink) raises ``PathEscapeError`` before it is read."""
    resolve_inside(root, spec, source=spec)
    return format_for(backend).read_spec(root, spec)


def all_compilers(tools: Toolchain, policy: EgressPolicy) -> dict[Tool, LockBackend]:
    """The compiler of every backend (those that need a tool not installed here fail the
    environments that use them, not the run)."""
    compilers: dict[Tool, LockBackend] = {}
    for fmt in FORMATS:
        compilers.update(fmt.compilers(tools, policy))
    return compilers


__all__ = [
    "BACKENDS",
    "FORMATS",
    "LockFormat",
    "Toolchain",
    "all_compilers",
    "format_for",
    "format_of_lock",
    "parse_any_lock",
    "read_spec",
]
