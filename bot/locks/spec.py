"""Read a spec with everything it includes: its direct requirements and its ``-c`` files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot.locks.lockfile import read_lockfile


@dataclass(frozen=True)
class SpecTree:
    direct_names: frozenset[str]
    """Canonical names the spec (and the specs it ``-r`` includes) asks for."""
    constraint_files: frozenset[str]
    """Repository-relative paths of every ``-c`` file reachable from the spec."""
    files: tuple[str, ...]
    """The spec and every included spec, repository-relative."""


def read_spec_tree(root: Path, spec: str) -> SpecTree:
    """Follow ``-r`` includes from ``spec``; missing includes are left to the compiler to report."""
    names: set[str] = set()
    constraints: set[str] = set()
    files: list[str] = []
    pending = [spec]
    while pending:
        current = pending.pop()
        path = root / current
        if current in files or not path.is_file():
            continue
        files.append(current)
        parsed = read_lockfile(path, display_path=current)
        names.update(r.name for r in parsed.requirements)
        base = PurePosixPath(current).parent
        for include in parsed.includes:
            target = repo_relative(base / include.path)
            if target is None:
                continue
            if include.kind == "constraint":
                constraints.add(target)
            else:
                pending.append(target)
    return SpecTree(frozenset(names), frozenset(constraints), tuple(files))


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
