"""Poetry projects: ``pyproject.toml`` locked into ``poetry.lock`` beside it, and optionally
exported into the requirements file the image installs.

``poetry lock`` runs in the project's directory; the export that follows keeps the form of
the existing exported file (groups, extras, hashes).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.locks.formats.base import (
    EnvironmentFields,
    FieldProblem,
    FollowUpTarget,
    LockFormat,
    SpecEditor,
    Toolchain,
    beside_spec,
    exact_pin,
)
from bot.locks.formats.poetry.project import (
    LOCK_NAME,
    parse_poetry_lock,
    pin_in_pyproject,
    pyproject_entry,
    read_pyproject,
    unpin_in_pyproject,
)
from bot.locks.formats.requirements import check_pip_platforms
from bot.locks.lockfile import Lockfile
from bot.locks.spec import SpecTree

if TYPE_CHECKING:
    from bot.locks.compiler import ExportRequest, LockBackend
    from bot.locks.options import Tool
    from bot.sandbox import EgressPolicy


class PoetryFormat(LockFormat):
    name = "poetry"
    moves_to_chosen_versions = False
    backends: tuple[str, ...] = ("poetry",)
    own_fields = frozenset({"export", "export_extras", "poetry_migrate"})
    exact_pins_only = True

    def owns_lock(self, path: str, text: str | None) -> bool:
        return PurePosixPath(path).name == LOCK_NAME

    def lock_path(self, env: EnvironmentFields) -> str:
        return env.lock if env.lock is not None else beside_spec(env.spec, LOCK_NAME)

    def installed_lock(self, env: EnvironmentFields) -> str | None:
        return env.export

    def first_lock_hint(self, env: EnvironmentFields) -> str:
        directory = str(PurePosixPath(env.spec).parent)
        return "poetry lock" if directory == "." else f"poetry lock --directory {directory}"

    def parse_lock(self, text: str, path: str) -> Lockfile:
        return parse_poetry_lock(text, path)

    def read_spec(self, root: Path, spec: str) -> SpecTree:
        project = read_pyproject(root, spec)
        return SpecTree(project.direct_names, frozenset(), (spec,))

    def editor(self) -> SpecEditor:
        return SpecEditor(pyproject_entry, exact_pin(pin_in_pyproject), unpin_in_pyproject)

    def check_fields(self, env: EnvironmentFields) -> None:
        if PurePosixPath(env.spec).name != "pyproject.toml":
            raise FieldProblem(("spec",), "a poetry environment's spec is its pyproject.toml")
        check_pip_platforms(env)

    def inferred_settings(
        self, root: Path, env: EnvironmentFields, taken: frozenset[str]
    ) -> dict[str, str]:
        """The requirements file the Dockerfile installs, when the config names no export."""
        if env.export is not None:
            return {}
        from bot.locks.formats.poetry.export import detected_export  # with the compile stage

        found = detected_export(root, env)
        return {"export": found} if found is not None and found not in taken else {}

    def compilers(self, tools: Toolchain, policy: EgressPolicy) -> dict[Tool, LockBackend]:
        # Built on first use: a repository without Poetry environments needs no Poetry.
        from bot.locks.compiler import LazyBackend
        from bot.locks.formats.poetry.compiler import PoetryBackend, find_poetry

        def build() -> LockBackend:
            poetry = find_poetry(tools.poetry_bin)
            return PoetryBackend(tools.env, poetry, tools.cache_dir, tools.sandbox)

        return {"poetry": LazyBackend("poetry", build)}

    def follow_up(
        self, root: Path, env: EnvironmentFields, target: FollowUpTarget
    ) -> ExportRequest | None:
        from bot.locks.formats.poetry.export import export_request

        return export_request(root, env, target.output, target.text, target.lock)


POETRY = PoetryFormat()
