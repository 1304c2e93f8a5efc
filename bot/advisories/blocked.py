"""Advisories the spec keeps from being fixed: every fixed version is ruled out by it.

A fix is allowed when some fixed version satisfies every requirement of that package in the
spec tree (the spec, the specs it ``-r`` includes, and the ``-c`` constraint files). A ``-c``
file that is a lock of one of the config's environments (``-c serve.txt`` in ``dev.in``) is
not counted: that lock is compiled first in the same run, so its pin moves with the fix and
rules nothing out (``environment_requirements``). When no fix is allowed, the advisory is
blocked, and the report names the requirement that rules the fixes out, as written, with
its file and line, so the person knows which line to change.

Requirements-file specs (pip-tools, uv) are read this way. A Poetry project's constraints are
Poetry's own syntax (``^1.0``) and conda is not audited, so neither reports blocked fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bot.errors import LockwardenError
from bot.locks.formats import format_for, read_spec
from bot.locks.lockfile import parse_lockfile
from bot.locks.spec import repo_relative
from bot.paths import read_text_inside
from bot.results import Advisory, BlockedFix

if TYPE_CHECKING:
    from bot.config import EnvironmentConfig, RepoConfig


@dataclass(frozen=True)
class SpecRequirement:
    """One requirement of a spec file on one package."""

    source: str
    """``requirements/serve.in:4``."""
    written: str
    """The requirement as written, without its comment (``hcore<2``)."""
    specifier: SpecifierSet


SpecRequirements = Mapping[str, tuple[SpecRequirement, ...]]
"""Canonical name -> its requirements in the spec tree, in file order."""


def environment_requirements(
    root: Path, config: RepoConfig, env: EnvironmentConfig
) -> SpecRequirements:
    """The requirements of ``env``'s spec tree that can block a fix: its specs and its real
    constraint files, without any lock of ``config``'s environments. Both the signals stage
    and the security job judge fixes with this, so they agree on what is blocked."""
    locks = frozenset(_normal(path) for other in config.environments for path in other.lock_paths)
    return spec_requirements(root, env.backend, env.spec, leave_out=locks)


def _normal(path: str) -> str:
    return repo_relative(PurePosixPath(path)) or path


def spec_requirements(
    root: Path, backend: str, spec: str, *, leave_out: frozenset[str] = frozenset()
) -> SpecRequirements:
    """The version requirements of the spec tree of a requirements-file environment, but
    those of the ``-c`` files in ``leave_out``; empty for other formats and for a spec that
    cannot be read (the compile reports that)."""
    if format_for(backend).name != "requirements":
        return {}
    try:
        tree = read_spec(root, backend, spec)
    except (LockwardenError, OSError, ValueError):
        return {}
    constraints = sorted(p for p in tree.constraint_files if _normal(p) not in leave_out)
    out: dict[str, list[SpecRequirement]] = {}
    for path in (*tree.files, *constraints):
        for name, requirement in _file_requirements(root, path):
            out.setdefault(name, []).append(requirement)
    return {name: tuple(reqs) for name, reqs in out.items()}


def _file_requirements(root: Path, path: str) -> Iterable[tuple[str, SpecRequirement]]:
    try:
        text = read_text_inside(root, path, source=path)
        parsed = parse_lockfile(text, path)
    except (LockwardenError, OSError, ValueError):
        return
    lines = text.splitlines()
    for entry in parsed.requirements:
        if not entry.specifier or entry.url:
            continue
        try:
            specifier = SpecifierSet(entry.specifier)
        except InvalidSpecifier:
            continue
        written = lines[entry.line - 1] if 0 < entry.line <= len(lines) else entry.raw_name
        written = written.split(" #", 1)[0].rstrip(" \\").strip()
        yield entry.name, SpecRequirement(f"{path}:{entry.line}", written, specifier)


def blocked_fixes(
    advisories: Iterable[Advisory], requirements: SpecRequirements
) -> tuple[BlockedFix, ...]:
    """Those of ``advisories`` with fixed versions none of which the spec allows."""
    out: list[BlockedFix] = []
    for advisory in advisories:
        blocker = _blocker(advisory, requirements.get(advisory.package, ()))
        if blocker is not None:
            out.append(BlockedFix(advisory, blocker.source, blocker.written))
    return tuple(out)


def _blocker(advisory: Advisory, reqs: tuple[SpecRequirement, ...]) -> SpecRequirement | None:
    """The requirement that rules out every fix: the first one that alone allows none, else
    (together they do) the first one; None when a fix is allowed or none is published."""
    fixes = _versions(advisory.fixed_versions)
    if not fixes or not reqs:
        return None
    if any(all(r.specifier.contains(v, prereleases=True) for r in reqs) for v in fixes):
        return None
    alone = (r for r in reqs if not any(r.specifier.contains(v, prereleases=True) for v in fixes))
    return next(alone, reqs[0])


def _versions(values: Iterable[str]) -> list[Version]:
    out: list[Version] = []
    for value in values:
        try:
            out.append(Version(value))
        except InvalidVersion:
            continue
    return out
