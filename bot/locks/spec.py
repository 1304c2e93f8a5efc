"""Read a spec with everything it includes: its direct requirements and its ``-c`` files.

Every ``-r`` and ``-c`` path must stay inside the repository (after symlinks): the compiler
would read it too, so one that leads outside fails the spec here, naming the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.locks.lockfile import Include, read_lockfile
from bot.paths import PathEscapeError, resolve_inside


@dataclass(frozen=True)
class SpecTree:
    direct_names: frozenset[str]
    """Canonical names the spec (and the specs it ``-r`` includes) asks for."""
    constraint_files: frozenset[str]
    """Repository-relative paths of every ``-c`` file reachable from the spec."""
    files: tuple[str, ...]
    """The spec and every included spec, repository-relative."""


def read_spec_tree(root: Path, spec: str) -> SpecTree:
    """Follow ``-r`` includes from ``spec``; missing includes are left to the compiler to report.

    Raises ``PathEscapeError`` when the spec or an include leads outside ``root``.
    """
    names: set[str] = set()
    constraints: set[str] = set()
    files: list[str] = []
    pending = [(spec, spec)]
    while pending:
        current, source = pending.pop()
        path = resolve_inside(root, current, source=source)
        if current in files or not path.is_file():
            continue
        files.append(current)
        parsed = read_lockfile(path, display_path=current)
        names.update(r.name for r in parsed.requirements)
        base = PurePosixPath(current).parent
        for include in parsed.includes:
            if "://" in include.path:
                continue  # a URL, not a file of the repository
            target = _include_target(root, base, current, include)
            if include.kind == "constraint":
                constraints.add(target)
            else:
                pending.append((target, f"{current}:{include.line}"))
    return SpecTree(frozenset(names), frozenset(constraints), tuple(files))


def _include_target(root: Path, base: PurePosixPath, current: str, include: Include) -> str:
    """The repository path of one ``-r``/``-c`` include, checked to stay inside ``root``."""
    source = f"{current}:{include.line}"
    if "${" in include.path:
        # pip expands ${VAR} in requirements files: the path could be anything.
        raise PathEscapeError(source, include.path, "uses an environment variable")
    target = repo_relative(base / include.path)
    if target is None:
        absolute = PurePosixPath(include.path).is_absolute()
        reason = "is absolute" if absolute else "leaves the repository through '..'"
        raise PathEscapeError(source, include.path, reason)
    resolve_inside(root, target, source=source)
    return target


def repo_relative(path: PurePosixPath) -> str | None:
    """Collapse ``.`` and ``..``; None when the path leaves the repository."""
    if path.is_absolute():
        return None
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def name_or_exact_pin(value: str) -> str | None:
    """``name`` or ``name==version`` with the name canonicalized; None for anything else
    (a range, a wildcard, extras, a marker, a URL): what a targeted upgrade or a pin takes."""
    try:
        requirement = Requirement(value)
    except InvalidRequirement:
        return None
    clauses = list(requirement.specifier)
    if requirement.url or requirement.marker or requirement.extras or len(clauses) > 1:
        return None
    name = canonicalize_name(requirement.name)
    if not clauses:
        return name
    exact = clauses[0]
    if exact.operator != "==" or exact.version.endswith(".*"):
        return None
    return f"{name}=={exact.version}"
