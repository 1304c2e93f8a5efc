"""Compile: every environment's spec becomes a LockResult (new lock, changes, or a failure).

Environments run in constraint order (an upstream lock is compiled before the locks it
constrains) and independent ones in parallel. All compiles happen in the staging tree; a
failure is a value, so one broken environment never loses the others' results.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from bot.config import CONFIG_PATH, EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.compiler import (
    CompileOutcome,
    CompileRequest,
    ExportRequest,
    ExtraOutput,
    LockBackend,
)
from bot.locks.diff import diff_locks
from bot.locks.formats import parse_any_lock, read_spec
from bot.locks.formats.base import FollowUpTarget
from bot.locks.graph import downstream_closure, topological_order
from bot.locks.ignore import (
    IGNORE_FILE,
    IgnoreRule,
    exclusion_constraints,
    ignore_note,
    read_ignores,
    strip_constraint_annotations,
)
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode
from bot.locks.options import Tool, relative_to, replay_directory
from bot.locks.spec import SpecTree, name_or_exact_pin
from bot.paths import read_text_if_present, resolve_inside
from bot.pipeline.git_ignored import check_not_ignored
from bot.pipeline.settled import NOT_RECOMPILED, settled_locks
from bot.progress import Progress, ProgressEvent, no_progress
from bot.results import CompileStageResult, ConsistencyIssue, LockResult, OutputFile
from bot.sandbox.egress import EgressPolicy
from bot.upstream.index import PYPI_SIMPLE
from bot.upstream.quarantine import release_age, upload_cutoff

if TYPE_CHECKING:
    from bot.locks.wheels import WheelGap


def parse_targets(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``--upgrade-package`` values: a name, or ``name==version``; nothing else."""
    out = []
    for raw in packages:
        target = name_or_exact_pin(raw)
        if target is None:
            raise LockwardenError(
                f"--upgrade-package {raw!r}: give a package name, optionally with ==VERSION"
            )
        out.append(target)
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
    repo_root: Path | None = None,
    config_source: str = CONFIG_PATH,
    policy: EgressPolicy | None = None,
    progress: Progress = no_progress,
) -> CompileStageResult:
    """Compile every selected environment in ``stage_root``; each one's queued, compiling
    and done (or failed) go to ``progress``.

    ``policy``: the non-public hosts the wheel check may ask (the indexes are the
    repository's choice); by default none.

    ``repo_root`` is the tree the stage was copied from: its symlinks that lead outside are
    left out of the stage, so paths are checked against it too, and an environment whose
    files go through such a link fails with the link named.
    """
    envs = {env.name: env for env in config.environments}
    roots = (stage_root,) if repo_root is None else (repo_root, stage_root)
    trees, edges = _read_specs(stage_root, config, roots, repo_root, config_source)
    order = topological_order(edges)
    wanted = downstream_closure(edges, selected) if selected else set(order)
    ignores = _read_ignore_rules(roots, stage_root)
    locks = {env.name: env.lock_path for env in config.environments}
    settled = (
        settled_locks(repo_root, stage_root, config, trees, edges)
        if repo_root is not None and mode.kind == "minimal"
        else {}
    )

    def job(name: str, failed_upstream: tuple[str, ...], moved: tuple[str, ...]) -> _CompileJob:
        return _CompileJob(
            root=stage_root,
            env=envs[name],
            upstream=tuple(edges[name]),
            tree=trees[name],
            locks=locks,
            config=config,
            backend=backends[envs[name].backend],
            mode=mode,
            timeout_s=timeout_s,
            failed_upstream=failed_upstream,
            ignores=ignores,
            policy=policy or EgressPolicy(),
            # A lock compiled against one that changes in this run must follow it.
            settled=None if moved else settled.get(name),
        )

    todo = [name for name in order if name in wanted]
    results = _compile_in_order(todo, wanted, edges, job, max_parallel, progress)
    ordered = [_with_leftovers(stage_root, config, results[n]) for n in order if n in results]
    consistency = check_consistency(stage_root, config, order, results)
    ordered = _reject_downstream([_apply_consistency(r, consistency) for r in ordered], edges)
    return CompileStageResult(tuple(ordered), consistency, tuple(order))


LEFTOVER_OUTPUT = (
    "{path} is no longer written ({env}'s platforms or resolution changed): delete it, or "
    "set them back if it is still installed from"
)


def _with_leftovers(root: Path, config: RepoConfig, result: LockResult) -> LockResult:
    """The result, with a note for each file the environment no longer writes. Another
    environment's file is no leftover."""
    env = next(e for e in config.environments if e.name == result.name)
    owned = {path for e in config.environments for path in e.lock_paths}
    leftovers = [p for p in env.format.leftover_outputs(root, env) if p not in owned]
    notes = tuple(LEFTOVER_OUTPUT.format(path=p, env=env.name) for p in leftovers)
    return replace(result, notes=result.notes + notes) if notes else result


def _read_specs(
    stage_root: Path,
    config: RepoConfig,
    roots: tuple[Path, ...],
    repo_root: Path | None,
    config_source: str,
) -> tuple[dict[str, SpecTree | LockwardenError], dict[str, list[str]]]:
    """Each environment's spec tree (or why it cannot be used) and the environments it is
    compiled against: its ``constraints`` and the owners of the locks its spec includes."""
    lock_owner = {path: env.name for env in config.environments for path in env.lock_paths}
    trees: dict[str, SpecTree | LockwardenError] = {}
    edges: dict[str, list[str]] = {}
    for env in config.environments:
        upstream = list(env.constraints)
        try:
            check_environment_paths(roots, env, config_source)
            if repo_root is not None:  # a spec or lock the stage left out: say why
                check_not_ignored(repo_root, stage_root, (env.spec, *env.lock_paths))
            tree = read_spec(stage_root, env.backend, env.spec)
            for root in roots[:-1]:  # the stage was read above; the source tree's links too
                read_spec(root, env.backend, env.spec)
            trees[env.name] = tree
            upstream += sorted(
                lock_owner[path]
                for path in tree.constraint_files
                if path in lock_owner and lock_owner[path] != env.name
            )
        except LockwardenError as exc:
            trees[env.name] = exc
        edges[env.name] = list(dict.fromkeys(upstream))
    return trees, edges


def _read_ignore_rules(
    roots: tuple[Path, ...], stage_root: Path
) -> tuple[IgnoreRule, ...] | LockwardenError:
    """The repository's ignore rules, or why they cannot be read."""
    try:
        for root in roots:
            resolve_inside(root, IGNORE_FILE, source=IGNORE_FILE)
        return read_ignores(stage_root)
    except LockwardenError as exc:  # fails every environment: none would honour the rules
        return exc


def _compile_in_order(
    todo: list[str],
    wanted: set[str],
    edges: Mapping[str, list[str]],
    job: Callable[[str, tuple[str, ...], tuple[str, ...]], _CompileJob],
    max_parallel: int,
    progress: Progress = no_progress,
) -> dict[str, LockResult]:
    """Compile ``todo`` (in topological order) on up to ``max_parallel`` threads, each
    environment once every wanted environment it is compiled against has its result."""
    todo = list(todo)
    for name in todo:
        progress(ProgressEvent(name, "compile", "queued"))
    results: dict[str, LockResult] = {}
    running: dict[Future[LockResult], str] = {}
    with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="compile") as pool:
        while todo or running:
            for name in list(todo):
                if all(dep in results or dep not in wanted for dep in edges[name]):
                    todo.remove(name)
                    done_deps = [d for d in edges[name] if d in results]
                    failed = tuple(d for d in done_deps if results[d].status == "failed")
                    moved = tuple(d for d in done_deps if results[d].status != "unchanged")
                    submitted = job(name, failed, moved)
                    running[pool.submit(_compile_reported, submitted, progress)] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                result = results[running.pop(future)] = future.result()
                progress(_compiled_event(result))
    return results


def _compile_reported(job: _CompileJob, progress: Progress) -> LockResult:
    """``_compile_one``, said when its thread starts it (a queued one may wait for a thread)."""
    progress(ProgressEvent(job.env.name, "compile", "running"))
    return _compile_one(job)


def _compiled_event(result: LockResult) -> ProgressEvent:
    """How an environment's compile ended, in a few words."""
    if result.status == "failed":
        return ProgressEvent(
            result.name, "compile", "failed", result.compile_s, result.failure or ""
        )
    changes = len(result.diff.changes) if result.diff is not None else 0
    detail = f"{changes} package{'s' if changes != 1 else ''} changed" if changes else result.status
    return ProgressEvent(result.name, "compile", "done", result.compile_s, detail)


def environment_paths(env: EnvironmentConfig) -> tuple[tuple[str, str], ...]:
    """(field, path) of every repository file an environment reads or writes."""
    out = [("spec", env.spec), *(("lock", path) for path in env.lock_paths)]
    if env.dockerfile is not None:
        out += [("dockerfile", env.dockerfile), ("context", env.context)]
    return tuple(out)


def check_environment_paths(
    roots: tuple[Path, ...], env: EnvironmentConfig, config_source: str = CONFIG_PATH
) -> None:
    """Raise ``PathEscapeError`` when a path of ``env`` leads outside any of ``roots``."""
    for field, path in environment_paths(env):
        where = "discovered" if config_source == "discovery" else f"in {config_source}"
        source = f"environment '{env.name}' ({where}), {field}"
        for root in roots:
            resolve_inside(root, path, source=source)


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


@dataclass(frozen=True)
class _CompileJob:
    """One environment's compile, as ``compile_environments`` hands it to a worker thread."""

    root: Path
    env: EnvironmentConfig
    upstream: tuple[str, ...]
    tree: SpecTree | LockwardenError
    locks: Mapping[str, str]  # every environment's lock path, by environment name
    config: RepoConfig
    backend: LockBackend
    mode: CompileMode
    timeout_s: float
    failed_upstream: tuple[str, ...]
    ignores: tuple[IgnoreRule, ...] | LockwardenError
    policy: EgressPolicy
    settled: str | None = None
    """The commit the lock was last written in, when nothing it is compiled from changed
    since (``bot.pipeline.settled``): a minimal refresh keeps it without a resolver."""


@dataclass(frozen=True)
class _CurrentFiles:
    """The environment's lock and extra outputs as they were before the compile."""

    text: str | None
    lock: Lockfile | None
    extras: Mapping[str, str | None]  # each extra output's text, by path

    def versions(self) -> dict[str, str]:
        return self.lock.versions() if self.lock is not None else {}


@dataclass(frozen=True)
class _Scratch:
    """The files a compile writes beside the lock: the new lock, the extra outputs and the
    ignore constraints. Renamed into place when the compile succeeds, removed in any case."""

    root: Path
    lock_path: str
    output: Path
    extras: tuple[ExtraOutput, ...]
    exclusions: tuple[str, ...]
    hidden_rel: str  # the ignore constraints, relative to the root

    def write_exclusions(self) -> None:
        if self.exclusions:
            text = "".join(f"{line}\n" for line in self.exclusions)
            (self.root / self.hidden_rel).write_text(text, "utf-8")

    def move_into_place(self) -> None:
        # Every file or none: downstream environments now see the new pins.
        for extra in self.extras:
            os.replace(extra.output, self.root / extra.path)
        os.replace(self.output, self.root / self.lock_path)

    def remove(self) -> None:
        self.output.unlink(missing_ok=True)
        for extra in self.extras:
            extra.output.unlink(missing_ok=True)
        if self.exclusions:
            (self.root / self.hidden_rel).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Attempt:
    """A compile whose inputs were read: what its failure or result is built from."""

    job: _CompileJob
    base: LockResult
    tree: SpecTree
    ignores: tuple[IgnoreRule, ...]
    current: _CurrentFiles
    notes: tuple[str, ...]
    started: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass(frozen=True)
class _Compiled:
    """What a successful compile left: the lock to keep, its extra outputs, the outcome."""

    outcome: CompileOutcome
    text: str
    lock: Lockfile
    outputs: tuple[OutputFile, ...]


def _compile_one(job: _CompileJob) -> LockResult:
    """Compile one environment in the staging tree; a failure comes back as the result."""
    started = time.perf_counter()
    env, root = job.env, job.root
    base = LockResult(
        name=env.name,
        spec=env.spec,
        lock=env.lock_path,
        backend=env.backend,
        status="failed",
        constrained_by=job.upstream,
        platform=env.lock_platforms[0] if env.lock_platforms else None,
    )
    ignores = job.ignores if env.format.takes_ignore_rules else ()
    if isinstance(ignores, LockwardenError):
        return replace(base, error=ignores.user_message, failure="spec")
    tree = job.tree
    if isinstance(tree, LockwardenError):
        return replace(base, error=tree.user_message, failure="spec")
    refused = _missing_input(job, base)
    if refused is not None:
        return refused
    current = _read_current(root, env, base)
    if isinstance(current, LockResult):
        return current
    if job.settled is not None and current.text is not None and current.lock is not None:
        note = NOT_RECOMPILED.format(lock=env.lock_path, commit=job.settled[:12])
        return replace(
            base,
            status="unchanged",
            old_text=current.text,
            new_text=current.text,
            diff=diff_locks(current.lock, current.lock, direct_names=tree.direct_names),
            compile_s=time.perf_counter() - started,
            notes=(note,),
        )
    scratch = _make_scratch(root, env, current, ignores)
    export = next(
        (
            env.format.follow_up(
                root, env, FollowUpTarget(extra, current.extras[extra.path], current.lock)
            )
            for extra in scratch.extras
            if extra.kind == "export"
        ),
        None,
    )
    notes = tuple(
        f"compiled against the current {name} lock: {name} failed" for name in job.failed_upstream
    )
    try:
        cwd = _working_directory(root, current.lock, env)
    except LockwardenError as exc:
        return replace(base, error=exc.user_message, failure="spec", old_text=current.text)
    request = _compile_request(job, tree, scratch, export, cwd, current.lock)
    attempt = _Attempt(job, base, tree, ignores, current, notes, started)
    try:
        compiled = _compile_in_scratch(attempt, request, scratch, cwd)
    finally:
        scratch.remove()
    if isinstance(compiled, LockResult):
        return compiled
    result = _compiled_result(attempt, compiled)
    if env.platforms and env.format.installs_with_pip:
        # The indexes the compile used, PyPI when none is set.
        indexes = tuple(
            dict.fromkeys((request.index_url or PYPI_SIMPLE, *request.extra_index_urls))
        )
        result = _check_wheels(
            result, env, indexes, compiled.lock, compiled.outputs, job.timeout_s, job.policy
        )
    return result


def _missing_input(job: _CompileJob, base: LockResult) -> LockResult | None:
    """The failure of an environment whose spec, or an upstream lock, does not exist."""
    if not (job.root / job.env.spec).is_file():
        return replace(base, error=f"{job.env.spec}: spec file not found", failure="spec")
    missing = [name for name in job.failed_upstream if not (job.root / job.locks[name]).is_file()]
    if missing:
        return replace(
            base,
            failure="upstream",
            error=f"not compiled: {', '.join(missing)} failed and has no lock yet to "
            "constrain this environment; fix that environment first",
        )
    return None


def _read_current(
    root: Path, env: EnvironmentConfig, base: LockResult
) -> _CurrentFiles | LockResult:
    """The environment's files before the compile, or the failure of a lock we cannot read."""
    old_text: str | None = None
    try:
        old_text = read_text_if_present(root, env.lock_path, source=env.lock_path)
        existing = parse_any_lock(old_text, env.lock_path) if old_text is not None else None
        old_extras = {
            path: read_text_if_present(root, path, source=path) for path, _, _ in env.outputs
        }
    except LockwardenError as exc:
        return replace(base, error=exc.user_message, failure="spec", old_text=old_text)
    return _CurrentFiles(old_text, existing, old_extras)


def _make_scratch(
    root: Path, env: EnvironmentConfig, current: _CurrentFiles, ignores: tuple[IgnoreRule, ...]
) -> _Scratch:
    """Create the scratch files the compiler writes, beside the lock."""
    lock_path = root / env.lock_path
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    output = lock_path.with_name(f".{lock_path.name}.lockwarden.tmp")
    # Both compilers read existing pins from the output file: seed it with the current lock.
    output.write_text(current.text or "", "utf-8")
    extras = tuple(
        ExtraOutput(path=path, output=_temp_output(root, path), kind=kind, platform=platform)
        for path, kind, platform in env.outputs
    )
    # Ignored versions go to the compiler as a constraints file of its own beside the output;
    # it is not in the repository, so the lock must not mention it.
    hidden_name = f".{lock_path.name}.lockwarden-ignore.txt"
    return _Scratch(
        root=root,
        lock_path=env.lock_path,
        output=output,
        extras=extras,
        exclusions=tuple(exclusion_constraints(ignores, current.versions())),
        hidden_rel=str(PurePosixPath(env.lock_path).with_name(hidden_name)),
    )


def _compile_request(
    job: _CompileJob,
    tree: SpecTree,
    scratch: _Scratch,
    export: ExportRequest | None,
    cwd: str,
    existing: Lockfile | None,
) -> CompileRequest:
    """What the backend is asked to compile, and where it writes."""
    env, config = job.env, job.config
    # Upstream locks the spec does not already reference with its own -c line.
    cli_constraints = tuple(
        job.locks[name] for name in env.constraints if job.locks[name] not in tree.constraint_files
    )
    return CompileRequest(
        root=job.root,
        spec=env.spec,
        lock=env.lock_path,
        output=scratch.output,
        existing=existing,
        constraints=cli_constraints,
        hidden_constraints=(scratch.hidden_rel,) if scratch.exclusions else (),
        python_version=env.python,
        mode=job.mode,
        extra_args=env.compile_args,
        index_url=env.index_url or config.index_url,
        extra_index_urls=tuple(dict.fromkeys((*config.extra_index_urls, *env.extra_index_urls))),
        timeout_s=job.timeout_s,
        platforms=env.platforms or env.lock_platforms,
        universal=len(env.platforms) > 1 and env.resolution == "universal",
        extra_outputs=tuple(e for e in scratch.extras if e.kind == "platform-lock"),
        export=export,
        cwd=cwd,
        migrate_lock_format=env.poetry_migrate,
        exclude_newer=upload_cutoff(
            release_age(env.min_release_age, config.min_release_age),
            job.mode,
            env.format.holds_back_by_upload_time,
            datetime.now(UTC),
        ),
    )


def _compile_in_scratch(
    attempt: _Attempt, request: CompileRequest, scratch: _Scratch, cwd: str
) -> _Compiled | LockResult:
    """Run the compiler and read back what it wrote; on success the files are moved into
    place (unless nothing changed), else the failure is returned."""
    scratch.write_exclusions()
    try:
        outcome = attempt.job.backend.compile(request)
    except LockwardenError as exc:  # the backend could not start: this environment fails
        return replace(
            attempt.base,
            error=exc.user_message,
            failure="tool-error",
            old_text=attempt.current.text,
            compile_s=attempt.elapsed(),
        )
    if not outcome.ok:
        return _compile_failure(attempt, outcome)
    new_text = scratch.output.read_text("utf-8")
    if scratch.exclusions:
        new_text = strip_constraint_annotations(new_text, relative_to(cwd, scratch.hidden_rel))
        scratch.output.write_text(new_text, "utf-8")
    current, direct = attempt.current, attempt.tree.direct_names
    try:
        new_lock = parse_any_lock(new_text, attempt.job.env.lock_path)
        outputs = tuple(
            _output_file(extra, current.extras[extra.path], direct) for extra in scratch.extras
        )
    except LockwardenError as exc:  # a compiler wrote something we cannot read
        return replace(
            attempt.base, error=exc.user_message, failure="tool-error", old_text=current.text
        )
    if (
        attempt.job.mode.kind == "minimal"
        and current.lock is not None
        and current.text is not None
        and _is_no_op(current.lock, new_lock, current.text, new_text, outputs)
    ):
        # Nothing a package manager reads changed: keep every file's bytes (no noise PR).
        kept = tuple(replace(o, new_text=o.old_text) for o in outputs)
        return _Compiled(outcome, current.text, current.lock, kept)
    scratch.move_into_place()
    return _Compiled(outcome, new_text, new_lock, outputs)


def _compile_failure(attempt: _Attempt, outcome: CompileOutcome) -> LockResult:
    existing = attempt.current.lock
    present = None if existing is None else _names(existing)
    return replace(
        attempt.base,
        error=outcome.error,
        failure=outcome.failure,
        tool_output=outcome.tool_output,
        old_text=attempt.current.text,
        command=outcome.argv,
        header_command=outcome.header_command,
        compile_s=attempt.elapsed(),
        notes=_once(
            attempt.notes
            + outcome.notes
            + ignore_note(attempt.ignores, attempt.current.versions(), present)
        ),
    )


def _compiled_result(attempt: _Attempt, compiled: _Compiled) -> LockResult:
    current = attempt.current
    diff = diff_locks(current.lock, compiled.lock, direct_names=attempt.tree.direct_names)
    changed = compiled.text != current.text or any(o.changed for o in compiled.outputs)
    ignored = ignore_note(attempt.ignores, current.versions(), _names(compiled.lock))
    return replace(
        attempt.base,
        status="changed" if changed else "unchanged",
        diff=diff,
        old_text=current.text,
        new_text=compiled.text,
        command=compiled.outcome.argv,
        header_command=compiled.outcome.header_command,
        compile_s=attempt.elapsed(),
        notes=_once(attempt.notes + compiled.outcome.notes + ignored),
        outputs=compiled.outputs,
    )


def _working_directory(root: Path, existing: Lockfile | None, env: EnvironmentConfig) -> str:
    """Where the lock's recorded command ran (requirements-file locks only); it must lie
    inside the repository."""
    if not env.format.replays_lock_command:
        return ""
    cwd = replay_directory(existing, env.lock_path, env.spec)
    if cwd:
        resolve_inside(root, cwd, source=f"{env.lock_path} (the directory its header implies)")
    return cwd


def _once(notes: tuple[str, ...]) -> tuple[str, ...]:
    """Each note once (several outputs of one environment may give the same one)."""
    return tuple(dict.fromkeys(notes))


def _is_no_op(
    old: Lockfile, new: Lockfile, old_text: str, new_text: str, outputs: tuple[OutputFile, ...]
) -> bool:
    """True when no file of the environment changed what a package manager reads: the same
    packages, versions, hashes, markers and options; only header, annotation or ordering
    bytes may differ."""
    if not _same_content(old, new, old_text, new_text):
        return False
    for output in outputs:
        if output.old_text is None or output.new_text is None:
            return False
        before = parse_any_lock(output.old_text, output.path)
        after = parse_any_lock(output.new_text, output.path)
        if not _same_content(before, after, output.old_text, output.new_text):
            return False
    return True


_CONTENT_HASH_RE = re.compile(r'^content-hash\s*=\s*"([^"]*)"', re.MULTILINE)


def _same_content(old: Lockfile, new: Lockfile, old_text: str, new_text: str) -> bool:
    # A poetry.lock's content-hash is checked by ``poetry install``: a stale one breaks it.
    if _CONTENT_HASH_RE.findall(old_text) != _CONTENT_HASH_RE.findall(new_text):
        return False
    return _content(old) == _content(new)


def _content(lock: Lockfile) -> tuple[object, ...]:
    """What an installer reads from a lock, independent of order and comments."""
    entries = sorted(
        (
            entry.name,
            entry.specifier,
            tuple(sorted(entry.extras)),
            entry.marker or "",
            entry.url or "",
            entry.editable,
            tuple(sorted(entry.hashes)),
            entry.build or "",
            entry.channel or "",
        )
        for entry in lock.requirements
    )
    includes = sorted((include.kind, include.path) for include in lock.includes)
    return (
        tuple(entries),
        lock.index,
        tuple(includes),
        tuple(sorted(lock.unsafe_comment_names)),
        tuple(sorted(lock.other_options)),
    )


def _temp_output(root: Path, path: str) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.lockwarden.tmp")
    temp.write_text("", "utf-8")
    return temp


def _output_file(extra: ExtraOutput, old_text: str | None, direct: frozenset[str]) -> OutputFile:
    """Read back one extra output; a file the backend left empty keeps its old text."""
    new_text = extra.output.read_text("utf-8") if extra.output.is_file() else ""
    if not new_text:
        raise LockwardenError(f"{extra.path}: the compiler wrote nothing")
    old = parse_any_lock(old_text, extra.path) if old_text is not None else None
    new = parse_any_lock(new_text, extra.path)
    return OutputFile(
        path=extra.path,
        kind=extra.kind,
        platform=extra.platform,
        old_text=old_text,
        new_text=new_text,
        diff=diff_locks(old, new, direct_names=direct),
    )


def _check_wheels(
    result: LockResult,
    env: EnvironmentConfig,
    indexes: tuple[str, ...],
    lock: Lockfile,
    outputs: tuple[OutputFile, ...],
    timeout_s: float,
    policy: EgressPolicy,
) -> LockResult:
    """Report pinned packages that have no wheel for a target platform (pip would build the
    sdist in the image, or fail); with ``require_wheels`` they fail the environment."""
    from bot.locks.platforms import parse_platform
    from bot.locks.wheels import check_wheels

    python = env.python or lock.header.python_version or "{}.{}".format(*sys.version_info[:2])
    # One lock for all platforms, or each platform's own lock against that platform.
    checks: list[tuple[Lockfile, tuple[str, ...]]]
    if env.lock_platforms:
        checks = [(lock, env.lock_platforms[:1])]
        for output in outputs:
            if output.kind == "platform-lock" and output.new_text and output.platform:
                checks.append((parse_any_lock(output.new_text, output.path), (output.platform,)))
    else:
        checks = [(lock, env.platforms)]
    gaps: list[WheelGap] = []
    unchecked: list[str] = []
    for checked_lock, names in checks:
        report = check_wheels(
            checked_lock,
            [parse_platform(name) for name in names],
            python,
            indexes,
            policy=policy,
            timeout_s=min(timeout_s, 60.0),
        )
        gaps.extend(report.gaps)
        unchecked.extend(report.unchecked)
    result = replace(result, wheel_gaps=tuple(gaps), wheels_unchecked=tuple(unchecked))
    if gaps and env.require_wheels:
        listed = ", ".join(f"{g.package}=={g.version} on {g.platform}" for g in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        return replace(
            result,
            status="failed",
            failure="wheels",
            error=f"no wheel for a target platform: {listed}{more} ('require_wheels' is on)",
        )
    return result


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
    try:
        if text is None:
            text = read_text_if_present(root, env.lock_path, source=env.lock_path)
        return None if text is None else parse_any_lock(text, env.lock_path)
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
            name=env.name,
            spec=env.spec,
            lock=env.lock_path,
            backend=env.backend,
            status="changed",
            platform=env.lock_platforms[0] if env.lock_platforms else None,
            outputs=tuple(
                OutputFile(path, kind, platform, None, seeds[path])
                for path, kind, platform in env.outputs
                if path in seeds
            ),
        )
        restated = _restate(base, env, baseline_root, seed)
        if restated.status == "changed":
            out.append(restated)
    order = {name: i for i, name in enumerate(stage.order)}
    out.sort(key=lambda r: order.get(r.name, len(order)))
    return replace(stage, results=tuple(out))


def _restate(result: LockResult, env: EnvironmentConfig, root: Path, new_text: str) -> LockResult:
    try:
        check_environment_paths((root,), env)
        old_text = read_text_if_present(root, env.lock_path, source=env.lock_path)
        old = parse_any_lock(old_text, env.lock_path) if old_text is not None else None
        new = parse_any_lock(new_text, env.lock_path)
        tree = read_spec(root, env.backend, env.spec)
        outputs = tuple(
            _restate_output(output, root, tree.direct_names)
            for output in result.outputs
            if output.new_text is not None
        )
    except LockwardenError as exc:
        return replace(result, status="failed", failure="spec", error=exc.user_message)
    changed = new_text != old_text or any(o.changed for o in outputs)
    return replace(
        result,
        status="changed" if changed else "unchanged",
        old_text=old_text,
        new_text=new_text,
        diff=diff_locks(old, new, direct_names=tree.direct_names),
        outputs=outputs,
    )


def _restate_output(output: OutputFile, root: Path, direct: frozenset[str]) -> OutputFile:
    assert output.new_text is not None
    old_text = read_text_if_present(root, output.path, source=output.path)
    old = parse_any_lock(old_text, output.path) if old_text is not None else None
    new = parse_any_lock(output.new_text, output.path)
    return replace(output, old_text=old_text, diff=diff_locks(old, new, direct_names=direct))
