"""One entry point per question that depends on the lock flavour.

pip-tools and uv write requirements files, Poetry writes ``poetry.lock``, conda environments
get ``@EXPLICIT`` locks. Callers that only need "the lock as a ``Lockfile``" or "the spec's
direct requirements" ask here and never branch on the flavour themselves.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from bot.locks.lockfile import Lockfile, LockFlavour, parse_lockfile
from bot.locks.spec import SpecTree, read_spec_tree
from bot.paths import resolve_inside


def lock_flavour(path: str, text: str | None = None) -> LockFlavour:
    """The flavour of a lock, from its file name and (for conda) its ``@EXPLICIT`` line."""
    if PurePosixPath(path).name == "poetry.lock":
        return "poetry"
    name = PurePosixPath(path).name
    if (name.startswith("conda-") and name.endswith(".lock")) or (
        text is not None and any(line.strip() == "@EXPLICIT" for line in text.splitlines())
    ):
        return "conda"
    return "requirements"


def parse_any_lock(text: str, path: str) -> Lockfile:
    """Parse a lock of any flavour; errors name the file and the line."""
    flavour = lock_flavour(path, text)
    if flavour == "poetry":
        from bot.locks.poetry import parse_poetry_lock

        return parse_poetry_lock(text, path)
    if flavour == "conda":
        from bot.locks.conda import parse_explicit_lock

        return parse_explicit_lock(text, path)
    return parse_lockfile(text, path)


def read_spec(root: Path, backend: str, spec: str) -> SpecTree:
    """The spec's direct requirements and included files, for any backend. A spec that leads
    outside ``root`` (a symlink) raises ``PathEscapeError`` before it is read."""
    resolve_inside(root, spec, source=spec)
    if backend == "poetry":
        from bot.locks.poetry import read_pyproject

        project = read_pyproject(root, spec)
        return SpecTree(project.direct_names, frozenset(), (spec,))
    if backend == "conda":
        from bot.locks.conda import read_environment_yml

        environment = read_environment_yml(root, spec)
        return SpecTree(environment.direct_names, frozenset(), (spec,))
    return read_spec_tree(root, spec)
