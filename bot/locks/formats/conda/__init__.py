"""Conda environments: ``environment.yml`` solved with rattler into one ``@EXPLICIT`` lock per
platform (``conda-linux-64.lock``), which ``micromamba create -f`` installs.

The solver's bindings load on first use (``environment.py`` and ``compiler.py``): a
repository without conda environments never pays for them.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.locks.formats.base import (
    EnvironmentFields,
    FieldProblem,
    LockFormat,
    SpecEditor,
    Toolchain,
    beside_spec,
    exact_pin,
)
from bot.locks.formats.conda.platforms import (
    DEFAULT_LOCK_PATTERN,
    EXPLICIT_MARKER,
    SUBDIRS,
    conda_subdir,
    lock_path_for,
)
from bot.locks.lockfile import Lockfile
from bot.locks.spec import SpecTree
from bot.paths import is_file_inside

if TYPE_CHECKING:
    from bot.locks.compiler import LockBackend
    from bot.locks.options import Tool
    from bot.sandbox import EgressPolicy


class CondaFormat(LockFormat):
    name = "conda"
    pypi_releases = False
    backends: tuple[str, ...] = ("conda",)
    installs_with_pip = False  # conda/micromamba install the lock; pip's view is no check
    exact_pins_only = True

    def owns_lock(self, path: str, text: str | None) -> bool:
        name = PurePosixPath(path).name
        if name.startswith("conda-") and name.endswith(".lock"):
            return True
        return text is not None and any(
            line.strip() == EXPLICIT_MARKER for line in text.splitlines()
        )

    def lock_path(self, env: EnvironmentFields) -> str:
        return self.platform_lock(env, self.lock_platforms(env)[0])

    def lock_platforms(self, env: EnvironmentFields) -> tuple[str, ...]:
        return env.platforms or ("linux-64",)

    def platform_lock(self, env: EnvironmentFields, platform: str) -> str:
        pattern = env.lock or beside_spec(env.spec, DEFAULT_LOCK_PATTERN)
        return lock_path_for(pattern, conda_subdir(platform))

    def installed_lock(self, env: EnvironmentFields) -> str | None:
        return None

    def leftover_outputs(self, root: Path, env: EnvironmentFields) -> tuple[str, ...]:
        pattern = env.lock or beside_spec(env.spec, DEFAULT_LOCK_PATTERN)
        current = {self.platform_lock(env, p) for p in self.lock_platforms(env)}
        candidates = (lock_path_for(pattern, subdir) for subdir in SUBDIRS)
        return tuple(
            p for p in candidates if p not in current and is_file_inside(root, p, source=p)
        )

    def first_lock_hint(self, env: EnvironmentFields) -> str:
        return f"conda list --explicit --md5 > {self.lock_path(env)}"

    def parse_lock(self, text: str, path: str) -> Lockfile:
        from bot.locks.formats.conda.environment import parse_explicit_lock

        return parse_explicit_lock(text, path)

    def read_spec(self, root: Path, spec: str) -> SpecTree:
        from bot.locks.formats.conda.environment import read_environment_yml

        environment = read_environment_yml(root, spec)
        return SpecTree(environment.direct_names, frozenset(), (spec,))

    def editor(self) -> SpecEditor:
        from bot.locks.formats.conda import environment

        return SpecEditor(
            environment.environment_entry,
            exact_pin(environment.pin_in_environment),
            environment.unpin_in_environment,
        )

    def check_fields(self, env: EnvironmentFields) -> None:
        for index, item in enumerate(env.platforms):
            try:
                conda_subdir(item)
            except ValueError as exc:
                raise FieldProblem(("platforms", index), str(exc)) from exc
        if not PurePosixPath(env.spec).name.endswith((".yml", ".yaml")):
            raise FieldProblem(("spec",), "a conda environment's spec is an environment.yml")
        if env.lock is not None and "{platform}" not in env.lock:
            raise FieldProblem(
                ("lock",), "a conda lock path needs {platform}, e.g. conda-{platform}.lock"
            )
        if env.resolution == "per-platform":
            raise FieldProblem(
                ("resolution",),
                "per-platform resolution needs the uv backend (conda locks per platform anyway)",
            )

    def compilers(self, tools: Toolchain, policy: EgressPolicy) -> dict[Tool, LockBackend]:
        from bot.locks.compiler import LazyBackend

        def build() -> LockBackend:
            from bot.locks.formats.conda.compiler import CondaBackend

            return CondaBackend(
                tools.cache_dir, channel_alias=tools.conda_channel_alias, policy=policy
            )

        return {"conda": LazyBackend("conda", build)}


CONDA = CondaFormat()
