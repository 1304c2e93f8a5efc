"""Compile: every environment's spec becomes a LockResult (new lock, changes, or a failure).

Environments run in constraint order (an upstream lock is compiled before the locks it
constrains) and independent ones in parallel. All compiles happen in the staging tree; a
failure is a value, so one broken environment never loses the others' results.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.backends import CompileMode, CompileRequest, FailureKind, LockBackend
from bot.locks.diff import LockDiff, diff_locks
from bot.locks.graph import downstream_closure, topological_order
from bot.locks.ignore import (
    IgnoreRule,
    exclusion_constraints,
    ignore_note,
    read_ignores,
    strip_constraint_annotations,
)
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.locks.options import Tool
from bot.locks.spec import SpecTree, read_spec_tree

Status = Literal["changed", "unchanged", "failed"]


@dataclass(frozen=True)
class LockResult:
    name: str
    spec: str
    lock: str
    backend: Tool
    status: Status
    constrained_by: tuple[str, ...] = ()
    error: str | None = None
    failure: FailureKind | Literal["spec", "consistency", "upstream"] | None = None
    tool_output: str = ""
    diff: LockDiff | None = None
    old_text: str | None = None
    new_text: str | None = None
    command: tuple[str, ...] = ()
    header_command: str = ""
    compile_s: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsistencyIssue:
    """A package pinned at different versions in different environments."""

    package: str
    versions: tuple[tuple[str, str], ...]
    """(environment, version) pairs, in compile order."""
    required: bool
    """True when the package is listed in ``consistent``: then it is an error."""


@dataclass(frozen=True)
class CompileStageResult:
    results: tuple[LockResult, ...]
    consistency: tuple[ConsistencyIssue, ...]
    order: tuple[str, ...]


def parse_targets(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``--upgrade-package`` values: a name, or ``name==version``; nothing else."""
    out = []
    for raw in packages:
        try:
            req = Requirement(raw)
        except InvalidRequirement as exc:
            raise LockwardenError(f"--upgrade-package {raw!r}: {exc}") from exc
        pins = list(req.specifier)
        if (
            req.url
            or req.marker
            or req.extras
            or len(pins) > 1
            or (pins and pins[0].operator != "==")
        ):
            raise LockwardenError(
                f"--upgrade-package {raw!r}: give a package name, optionally with ==VERSION"
            )
        out.append(f"{canonicalize_name(req.name)}{req.specifier}")
    return tuple(out)


def compile_environments(
    stage_root: Path,
    config: RepoConfig,
    backends: Mapping[Tool, LockBackend],
    *,
    selected: tuple[str, ...] = (),
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass, safe as a default
    max_parallel: int = 1,
    timeout_s: float = 900.0,
) -> CompileStageResult:
    envs = {env.name: env for env in config.environments}
    lock_owner = {env.lock_path: env.name for env in config.environments}
    trees: dict[str, SpecTree | LockwardenError] = {}
    edges: dict[str, list[str]] = {}
    for env in config.environments:
        upstream = list(env.constraints)
        try:
            tree = read_spec_tree(stage_root, env.spec)
            trees[env.name] = tree
            upstream += sorted(
                lock_owner[path]
                for path in tree.constraint_files
                if path in lock_owner and lock_owner[path] != env.name
            )
        except LockwardenError as exc:
            trees[env.name] = exc
        edges[env.name] = list(dict.fromkeys(upstream))
    order = topological_order(edges)
    wanted = downstream_closure(edges, selected) if selected else set(order)
    todo = [name for name in order if name in wanted]
    ignores: tuple[IgnoreRule, ...] | LockwardenError
    try:
        ignores = read_ignores(stage_root)
    except LockwardenError as exc:  # fails every environment: none would honour the rules
        ignores = exc

    results: dict[str, LockResult] = {}
    running: dict[Future[LockResult], str] = {}
    with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="compile") as pool:
        while todo or running:
            for name in list(todo):
                if all(dep in results or dep not in wanted for dep in edges[name]):
                    todo.remove(name)
                    failed_upstream = tuple(
                        d for d in edges[name] if d in results and results[d].status == "failed"
                    )
                    future = pool.submit(
                        _compile_one,
                        stage_root,
                        envs[name],
                        tuple(edges[name]),
                        trees[name],
                        {e.name: e.lock_path for e in config.environments},
                        config,
                        backends[envs[name].backend],
                        mode,
                        timeout_s,
                        failed_upstream,
                        ignores,
                    )
                    running[future] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    ordered = [results[name] for name in order if name in results]
    consistency = check_consistency(stage_root, config, order, results)
    ordered = _reject_downstream([_apply_consistency(r, consistency) for r in ordered], edges)
    return CompileStageResult(tuple(ordered), consistency, tuple(order))


def _reject_downstream(
    results: list[LockResult], edges: Mapping[str, list[str]]
) -> list[LockResult]:
    """A lock compiled against an upstream lock that was rejected after compiling (by the
    ``consistent`` rule) rests on pins that will not be written: reject it too."""
    rejected: set[str] = set()
    out = []
    for result in results:  # topological order: upstreams come first
        if result.failure == "consistency":
            rejected.add(result.name)
        elif result.status != "failed":
            bad = [name for name in edges[result.name] if name in rejected]
            if bad:
                rejected.add(result.name)
                result = replace(
                    result,
                    status="failed",
                    failure="consistency",
                    error=f"compiled against the new {', '.join(bad)} lock, which was rejected "
                    "by the 'consistent' rule; fix that environment first",
                )
        out.append(result)
    return out


def _compile_one(
    root: Path,
    env: EnvironmentConfig,
    upstream: tuple[str, ...],
    tree: SpecTree | LockwardenError,
    locks: Mapping[str, str],
    config: RepoConfig,
    backend: LockBackend,
    mode: CompileMode,
    timeout_s: float,
    failed_upstream: tuple[str, ...],
    ignores: tuple[IgnoreRule, ...] | LockwardenError = (),
) -> LockResult:
    started = time.perf_counter()
    base = LockResult(
        name=env.name,
        spec=env.spec,
        lock=env.lock_path,
        backend=env.backend,
        status="failed",
        constrained_by=upstream,
    )
    if isinstance(ignores, LockwardenError):
        return replace(base, error=ignores.user_message, failure="spec")
    if isinstance(tree, LockwardenError):
        return replace(base, error=tree.user_message, failure="spec")
    if not (root / env.spec).is_file():
        return replace(base, error=f"{env.spec}: spec file not found", failure="spec")
    missing = [name for name in failed_upstream if not (root / locks[name]).is_file()]
    if missing:
        return replace(
            base,
            failure="upstream",
            error=f"not compiled: {', '.join(missing)} failed and has no lock yet to "
            "constrain this environment; fix that environment first",
        )
    lock_path = root / env.lock_path
    old_text: str | None = None
    existing: Lockfile | None = None
    if lock_path.is_file():
        old_text = lock_path.read_text("utf-8")
        try:
            existing = parse_lockfile(old_text, env.lock_path)
        except LockwardenError as exc:
            return replace(base, error=exc.user_message, failure="spec", old_text=old_text)
    # Upstream locks the spec does not already reference with its own -c line.
    cli_constraints = tuple(
        locks[name] for name in env.constraints if locks[name] not in tree.constraint_files
    )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    output = lock_path.with_name(f".{lock_path.name}.lockwarden.tmp")
    # Both compilers read existing pins from the output file: seed it with the current lock.
    output.write_text(old_text or "", "utf-8")
    notes = tuple(
        f"compiled against the current {name} lock: {name} failed" for name in failed_upstream
    )
    # Ignored versions go to the compiler as a constraints file of its own beside the output;
    # it is not in the repository, so the lock must not mention it.
    locked = existing.versions() if existing is not None else {}
    exclusions = exclusion_constraints(ignores, locked)
    hidden_name = f".{lock_path.name}.lockwarden-ignore.txt"
    hidden_rel = str(PurePosixPath(env.lock_path).with_name(hidden_name))
    hidden = root / hidden_rel
    request = CompileRequest(
        root=root,
        spec=env.spec,
        lock=env.lock_path,
        output=output,
        existing=existing,
        constraints=cli_constraints,
        hidden_constraints=(hidden_rel,) if exclusions else (),
        python_version=env.python,
        mode=mode,
        extra_args=env.compile_args,
        index_url=config.index_url,
        extra_index_urls=config.extra_index_urls,
        timeout_s=timeout_s,
    )
    try:
        if exclusions:
            hidden.write_text("".join(f"{line}\n" for line in exclusions), "utf-8")
        outcome = backend.compile(request)
        if not outcome.ok:
            return replace(
                base,
                error=outcome.error,
                failure=outcome.failure,
                tool_output=outcome.tool_output,
                old_text=old_text,
                command=outcome.argv,
                header_command=outcome.header_command,
                compile_s=time.perf_counter() - started,
                notes=notes
                + outcome.notes
                + ignore_note(ignores, locked, None if existing is None else _names(existing)),
            )
        new_text = output.read_text("utf-8")
        if exclusions:
            new_text = strip_constraint_annotations(new_text, hidden_rel)
            output.write_text(new_text, "utf-8")
        try:
            new_lock = parse_lockfile(new_text, env.lock_path)
        except LockwardenError as exc:  # a compiler wrote something we cannot read
            return replace(base, error=exc.user_message, failure="tool-error", old_text=old_text)
        os.replace(output, lock_path)  # downstream environments now see the new pins
    finally:
        output.unlink(missing_ok=True)
        if exclusions:
            hidden.unlink(missing_ok=True)
    diff = diff_locks(existing, new_lock, direct_names=tree.direct_names)
    return replace(
        base,
        status="unchanged" if new_text == old_text else "changed",
        diff=diff,
        old_text=old_text,
        new_text=new_text,
        command=outcome.argv,
        header_command=outcome.header_command,
        compile_s=time.perf_counter() - started,
        notes=notes + outcome.notes + ignore_note(ignores, locked, _names(new_lock)),
    )


def _names(lock: Lockfile) -> frozenset[str]:
    return frozenset(entry.name for entry in lock.requirements)


def check_consistency(
    root: Path, config: RepoConfig, order: list[str], results: Mapping[str, LockResult]
) -> tuple[ConsistencyIssue, ...]:
    """Packages pinned at different versions across environments (new locks where compiled)."""
    required = {canonicalize_name(name) for name in config.consistent}
    pins: dict[str, dict[str, str]] = {}
    envs = {env.name: env for env in config.environments}
    for name in order:
        lock = _current_lock(root, envs[name], results.get(name))
        if lock is None:
            continue
        for package, version in lock.versions().items():
            pins.setdefault(package, {})[name] = version
    issues = []
    for package in sorted(pins):
        by_env = pins[package]
        if len(set(by_env.values())) > 1:
            issues.append(
                ConsistencyIssue(
                    package=package,
                    versions=tuple(by_env.items()),
                    required=package in required,
                )
            )
    return tuple(issues)


def _current_lock(root: Path, env: EnvironmentConfig, result: LockResult | None) -> Lockfile | None:
    text = result.new_text if result is not None and result.new_text is not None else None
    if text is None:
        path = root / env.lock_path
        if not path.is_file():
            return None
        text = path.read_text("utf-8")
    try:
        return parse_lockfile(text, env.lock_path)
    except LockwardenError:
        return None


def _apply_consistency(result: LockResult, issues: tuple[ConsistencyIssue, ...]) -> LockResult:
    """An environment that breaks a ``consistent`` rule fails: its new lock is not written.

    The first environment in compile order that pins the package sets the version; the
    others must follow it.
    """
    if result.status == "failed":
        return result
    broken = [
        issue
        for issue in issues
        if issue.required
        and any(env == result.name and ver != issue.versions[0][1] for env, ver in issue.versions)
    ]
    if not broken:
        return result
    detail = "; ".join(
        f"{i.package} is {dict(i.versions)[result.name]} here but {i.versions[0][1]} in "
        f"{i.versions[0][0]}"
        for i in broken
    )
    return replace(
        result,
        status="failed",
        failure="consistency",
        error=f"'consistent' requires one version across environments: {detail}; pin it in "
        "the specs or add a constraint between these environments",
    )


def against_baseline(
    stage: CompileStageResult,
    baseline_root: Path,
    config: RepoConfig,
    seeds: Mapping[str, str],
) -> CompileStageResult:
    """Re-state results against the locks in ``baseline_root`` (the default branch).

    A compile that started from seeded locks (an open pull request's, or a rollback's
    restored ones) is diffed against its seed; what people review is the change against the
    default branch. A seeded environment that was not compiled this time keeps its seed.
    """
    out = []
    done = {r.name for r in stage.results}
    for result in stage.results:
        if result.status == "failed" or result.new_text is None:
            out.append(result)
            continue
        env = next(e for e in config.environments if e.name == result.name)
        out.append(_restate(result, env, baseline_root, result.new_text))
    for env in config.environments:
        seed = seeds.get(env.lock_path)
        if env.name in done or seed is None:
            continue
        base = LockResult(
            name=env.name, spec=env.spec, lock=env.lock_path, backend=env.backend, status="changed"
        )
        restated = _restate(base, env, baseline_root, seed)
        if restated.status == "changed":
            out.append(restated)
    order = {name: i for i, name in enumerate(stage.order)}
    out.sort(key=lambda r: order.get(r.name, len(order)))
    return replace(stage, results=tuple(out))


def _restate(result: LockResult, env: EnvironmentConfig, root: Path, new_text: str) -> LockResult:
    path = root / env.lock_path
    old_text = path.read_text("utf-8") if path.is_file() else None
    try:
        old = parse_lockfile(old_text, env.lock_path) if old_text is not None else None
        new = parse_lockfile(new_text, env.lock_path)
        tree = read_spec_tree(root, env.spec)
    except LockwardenError as exc:
        return replace(result, status="failed", failure="spec", error=exc.user_message)
    return replace(
        result,
        status="unchanged" if new_text == old_text else "changed",
        old_text=old_text,
        new_text=new_text,
        diff=diff_locks(old, new, direct_names=tree.direct_names),
    )
