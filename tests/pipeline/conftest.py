"""Fixtures for the pipeline and CLI tests: a small package graph and repositories in tmp_path.

``make_repo`` builds a repository whose ``.github/lockwarden.yml`` points at the local
package index, and runs the real pipeline (``bot.worker.refresh``) on it with a cache of the
test's own. ``tests/test_cli.py`` imports the plain helpers from here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.pipeline.checkout import Workspace
from bot.results import RunResult
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh
from tests.support.index_server import PackageIndex

BACKENDS = ("pip-tools", "uv")

# name -> version -> requirements. Versions are published in this order.
GRAPH: Mapping[str, Mapping[str, Sequence[str]]] = {
    "alpha": {"1.0.0": ["beta>=1.0"], "1.1.0": ["beta>=1.0.1"]},
    "beta": {"1.0.0": [], "1.0.1": [], "2.0.0": []},
    "gamma": {"0.9.0": [], "1.0.0": []},
    "delta": {"1.0.0": []},
}


def publish_graph(index: PackageIndex) -> PackageIndex:
    """Put ``GRAPH`` on ``index``: alpha 1.0.0/1.1.0 -> beta, beta 1.0.0/1.0.1/2.0.0, ..."""
    for name, versions in GRAPH.items():
        for version, requires in versions.items():
            index.publish(name, version, requires)
    return index


def env_config(
    name: str,
    *,
    backend: str = "uv",
    spec: str | None = None,
    constraints: Sequence[str] = (),
    compile_args: Sequence[str] = ("--no-emit-index-url",),
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``environments`` in ``.github/lockwarden.yml``."""
    entry: dict[str, Any] = {
        "name": name,
        "spec": spec or f"requirements/{name}.in",
        "backend": backend,
    }
    if constraints:
        entry["constraints"] = list(constraints)
    if compile_args:
        entry["compile_args"] = list(compile_args)
    entry.update(extra)
    return entry


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: relative path -> (bytes, mtime in ns)."""
    out: dict[str, tuple[bytes, int]] = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            out[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def pins_of(text: str, path: str = "lock.txt") -> dict[str, str]:
    """Canonical name -> pinned version of a lock's text."""
    return parse_lockfile(text, path).versions()


@dataclass
class Repo:
    """A repository in tmp_path, wired to the local index."""

    root: Path
    index: PackageIndex
    cache_dir: Path
    environments: list[dict[str, Any]] = field(default_factory=list)

    # -- files -----------------------------------------------------------------------------

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        return path

    def spec(self, env: str, *requirements: str) -> Path:
        """Write ``requirements/<env>.in`` with one requirement per line."""
        return self.write(f"requirements/{env}.in", "".join(f"{r}\n" for r in requirements))

    def configure(self, *environments: dict[str, Any], **top: Any) -> Path:
        """Write ``.github/lockwarden.yml`` with ``index_url`` set to the local index."""
        self.environments = list(environments)
        data: dict[str, Any] = {"index_url": self.index.url, **top}
        data["environments"] = list(environments)
        return self.write(".github/lockwarden.yml", yaml.safe_dump(data, sort_keys=False))

    def lock_path(self, env: str) -> Path:
        return self.root / "requirements" / f"{env}.txt"

    def lock_text(self, env: str) -> str:
        return self.lock_path(env).read_text("utf-8")

    def lock(self, env: str) -> Lockfile:
        return parse_lockfile(self.lock_text(env), f"requirements/{env}.txt")

    def pins(self, env: str) -> dict[str, str]:
        return self.lock(env).versions()

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        return snapshot(self.root)

    # -- running ---------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        return Settings(cache_dir=self.cache_dir, **overrides)

    def refresh(
        self,
        *,
        environments: Iterable[str] = (),
        upgrade: bool = False,
        upgrade_packages: Iterable[str] = (),
        dry_run: bool = False,
        build: bool = True,
        test: bool = True,
        verify_reproducible: bool | None = None,
        **settings: Any,
    ) -> RunResult:
        options = RefreshOptions(
            environments=tuple(environments),
            upgrade=upgrade,
            upgrade_packages=tuple(upgrade_packages),
            dry_run=dry_run,
            build=build,
            test=test,
            verify_reproducible=verify_reproducible,
        )
        return refresh(
            Workspace(root=self.root, repo=self.root.name), options, self.settings(**settings)
        )


def new_repo(base: Path, index: PackageIndex, name: str = "repo") -> Repo:
    root = base / name
    (root / "requirements").mkdir(parents=True)
    return Repo(root=root, index=index, cache_dir=base / "cache")


@pytest.fixture
def graph_index(package_index: PackageIndex) -> PackageIndex:
    """The local index with ``GRAPH`` published."""
    return publish_graph(package_index)


@pytest.fixture
def make_repo(tmp_path: Path, graph_index: PackageIndex) -> Callable[..., Repo]:
    """``make_repo(name="repo")``: an empty repository on the graph index."""

    def factory(name: str = "repo") -> Repo:
        return new_repo(tmp_path, graph_index, name)

    return factory


@pytest.fixture
def repo(make_repo: Callable[..., Repo]) -> Repo:
    return make_repo()
