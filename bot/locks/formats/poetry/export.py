"""The form of a requirements file exported from a Poetry lock: read from the file itself.

An export made ``--without-hashes``, with ``--extras`` or with ``--with dev`` keeps that form
when Lockwarden refreshes it; the config's ``export_hashes``, ``export_extras`` and
``export_groups`` decide only where the existing file cannot tell (no file yet), and an
explicit config value always wins.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.errors import LockwardenError
from bot.locks.compiler import ExportRequest, ExtraOutput
from bot.locks.formats.base import EnvironmentFields
from bot.locks.formats.poetry.project import MAIN_GROUP, PoetryProject, parse_pyproject
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.paths import PathEscapeError, is_file_inside, read_text_inside


def export_request(
    root: Path,
    env: EnvironmentFields,
    output: ExtraOutput,
    old_text: str | None,
    lock: Lockfile | None,
) -> ExportRequest:
    """The export of ``env`` into ``output``: the form of the existing export (``old_text``),
    where the config does not set it explicitly, else the config's defaults."""
    explicit = env.model_fields_set
    defaults = ExportRequest(
        output=output,
        groups=env.export_groups,
        extras=env.export_extras,
        with_hashes=env.export_hashes,
    )
    exported = _read_export(old_text, output.path)
    if exported is None:
        return defaults
    pyproject = _read_pyproject(root, env.spec)
    names = frozenset(e.name for e in exported.requirements)
    groups, extras = defaults.groups, defaults.extras
    if pyproject is not None and "export_groups" not in explicit:
        groups = _exported_groups(pyproject[0], names, lock) or groups
    if pyproject is not None and "export_extras" not in explicit:
        extras = _exported_extras(pyproject[1], names)
    with_hashes = env.export_hashes if "export_hashes" in explicit else exported.has_hashes
    return ExportRequest(output=output, groups=groups, extras=extras, with_hashes=with_hashes)


def _read_export(text: str | None, path: str) -> Lockfile | None:
    if not text:
        return None
    try:
        exported = parse_lockfile(text, path)
    except LockwardenError:
        return None  # the export is rewritten in the config's form; its diff says so
    return exported if exported.requirements else None


def _read_pyproject(root: Path, spec: str) -> tuple[PoetryProject, dict[str, Any]] | None:
    try:
        text = read_text_inside(root, spec, source=spec)
        return parse_pyproject(text, spec), tomllib.loads(text)
    except (LockwardenError, tomllib.TOMLDecodeError):
        return None  # the compile reports the pyproject itself


def _exported_groups(
    project: PoetryProject, names: frozenset[str], lock: Lockfile | None
) -> tuple[str, ...]:
    """The groups whose own direct dependencies are in the export. A package ``main`` needs
    as well (listed in main, or in main's groups in the lock) says nothing of its group."""
    in_main = set(project.groups.get(MAIN_GROUP, ()))
    if lock is not None:
        in_main |= {e.name for e in lock.requirements if MAIN_GROUP in e.groups}
    found = []
    for group, direct in project.groups.items():
        own = set(direct) if group == MAIN_GROUP else set(direct) - in_main
        if own & names:
            found.append(group)
    return tuple(found)


def _exported_extras(data: Mapping[str, Any], names: frozenset[str]) -> tuple[str, ...]:
    """The project's extras with a package in the export."""
    found = [extra for extra, members in _extras(data).items() if members & names]
    return tuple(found)


def _extras(data: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Extra -> canonical names, from ``[project.optional-dependencies]`` and
    ``[tool.poetry.extras]``."""
    out: dict[str, set[str]] = {}
    project = data.get("project")
    optional = project.get("optional-dependencies") if isinstance(project, dict) else None
    for extra, items in (optional if isinstance(optional, dict) else {}).items():
        out.setdefault(extra, set()).update(_names(items, requirement=True))
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    legacy = poetry.get("extras") if isinstance(poetry, dict) else None
    for extra, items in (legacy if isinstance(legacy, dict) else {}).items():
        out.setdefault(extra, set()).update(_names(items, requirement=False))
    return {extra: frozenset(members) for extra, members in out.items()}


def _names(items: object, *, requirement: bool) -> set[str]:
    found: set[str] = set()
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, str):
            continue
        try:
            found.add(canonicalize_name(Requirement(item).name if requirement else item))
        except InvalidRequirement:
            continue  # parse_pyproject reports invalid requirements
    return found


_REQUIREMENT_ARG_RE = re.compile(r"(?:^|\s)(?:-r|--requirement)(?:=|\s+)(?P<path>[^\s;&|]+)")


def detected_export(root: Path, env: EnvironmentFields) -> str | None:
    """The requirements file a Poetry environment's Dockerfile installs with ``-r``, when it
    sits beside the project: Lockwarden regenerates it from the lock with ``poetry export``."""
    if env.dockerfile is None or not is_file_inside(root, env.dockerfile, source=env.dockerfile):
        return None
    text = read_text_inside(root, env.dockerfile, source=env.dockerfile)
    project = PurePosixPath(env.spec).parent
    for match in _REQUIREMENT_ARG_RE.finditer(text):
        name = PurePosixPath(match.group("path").strip("'\"")).name
        candidate = str(project / name)
        if name.endswith(".txt") and _is_repository_file(root, candidate):
            return candidate
    return None


def _is_repository_file(root: Path, relative: str) -> bool:
    try:
        return is_file_inside(root, relative, source=relative)
    except PathEscapeError:
        return False  # a link out of the repository is no export Lockwarden would write
