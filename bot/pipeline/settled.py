"""Locks a minimal refresh need not recompile: nothing they are compiled from has changed.

A minimal refresh keeps every pin its spec still allows, so when no spec, included file,
constraining lock, ignore rule or config changed since the lock was last committed, the
resolver would write the lock it reads. Two records decide it, and any doubt means compile:

- git: the lock's last commit, and no commit (or uncommitted change) to a spec, included
  file, constraining lock or ignore rule since;
- the lock itself: every requirement of the spec is pinned at a version the spec allows,
  nothing the lock marks as coming from the spec has left it, every package a constraining
  lock pins has the same version here, and its header agrees with the configuration (tool,
  Python, index, compile arguments): a config edit elsewhere (a schedule, a comment) does
  not force a compile, one that changes how this lock is compiled does.

Only requirements-file locks are judged here; other formats, several outputs per
environment, local or URL requirements always compile.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.git import settled_since
from bot.locks.formats.requirements import written_as_configured
from bot.locks.ignore import IGNORE_FILE
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.locks.spec import SpecTree
from bot.paths import read_text_if_present

NOT_RECOMPILED = (
    "not recompiled: nothing {lock} is compiled from has changed since commit {commit}, "
    "so a minimal refresh keeps it as it is (--upgrade or --upgrade-package compiles)"
)


def settled_locks(
    repo_root: Path,
    stage_root: Path,
    config: RepoConfig,
    trees: Mapping[str, SpecTree | LockwardenError],
    edges: Mapping[str, list[str]],
) -> dict[str, str]:
    """Environment name -> the commit its lock was last written in, for each environment
    whose lock stands as it is."""
    envs = {env.name: env for env in config.environments}
    out: dict[str, str] = {}
    for name, env in envs.items():
        tree = trees.get(name)
        if not isinstance(tree, SpecTree) or not _judged(env):
            continue
        upstream = [envs[u].lock_path for u in edges.get(name, ()) if u in envs]
        inputs = [*tree.files, *sorted(tree.constraint_files), *upstream, IGNORE_FILE]
        constraints = sorted({*tree.constraint_files, *upstream})
        try:
            commit = settled_since(repo_root, [env.lock_path], inputs)
            agrees = commit is not None and _lock_agrees(
                repo_root, stage_root, (config, env), tree, constraints
            )
        except LockwardenError:
            continue  # no git, an unreadable file: compile
        if commit is not None and agrees:
            out[name] = commit
    return out


def _judged(env: EnvironmentConfig) -> bool:
    return env.format.replays_lock_command and not env.outputs


def _lock_agrees(
    repo_root: Path,
    stage_root: Path,
    configured: tuple[RepoConfig, EnvironmentConfig],
    tree: SpecTree,
    constraints: list[str],
) -> bool:
    """The staged lock is the committed one (no seed replaced it) and agrees with its
    configuration, its spec and its constraining locks."""
    config, env = configured
    staged = read_text_if_present(stage_root, env.lock_path, source=env.lock_path)
    if staged is None or staged != read_text_if_present(
        repo_root, env.lock_path, source=env.lock_path
    ):
        return False
    lock = parse_lockfile(staged, env.lock_path)
    pins = lock.versions()
    if not pins or not _header_agrees(config, env, lock):
        return False
    return _specs_allow(stage_root, tree, pins) and _constraints_hold(
        stage_root, tree, lock, constraints
    )


def _header_agrees(config: RepoConfig, env: EnvironmentConfig, lock: Lockfile) -> bool:
    """The lock was written the way the configuration asks now."""
    header = lock.header
    if not written_as_configured(env, lock):
        return False  # no header, another tool or Python, or a conversion the config asks for
    index = env.index_url or config.index_url
    if index and lock.index.index_url and index.rstrip("/") != lock.index.index_url.rstrip("/"):
        return False
    recorded = set(header.command)
    return all(arg in recorded for arg in env.compile_args)


def _specs_allow(root: Path, tree: SpecTree, pins: Mapping[str, str]) -> bool:
    for path in tree.files:
        text = read_text_if_present(root, path, source=path)
        if text is None:
            return False
        for req in parse_lockfile(text, path).requirements:
            if req.url or req.editable:
                return False  # a local or URL requirement: its metadata may have changed
            if req.marker:
                continue  # it may not apply here; the resolver decides
            version = pins.get(req.name)
            if version is None or not _allows(req.specifier, version):
                return False
    return True


def _allows(specifier: str, version: str) -> bool:
    try:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    except InvalidSpecifier:
        return False


def _constraints_hold(root: Path, tree: SpecTree, lock: Lockfile, constraints: list[str]) -> bool:
    """Nothing the lock says came from the spec has left it, and the constraining locks
    pin what this one pins."""
    from_spec = {r.name for r in lock.requirements if any(v.startswith("-r ") for v in r.via)}
    if not from_spec <= tree.direct_names:
        return False
    pins = lock.versions()
    for path in constraints:
        text = read_text_if_present(root, path, source=path)
        if text is None:
            return False
        for name, version in parse_lockfile(text, path).versions().items():
            if name in pins and pins[name] != version:
                return False
    return True
