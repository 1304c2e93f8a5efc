"""Compile backends: one ``LockBackend`` protocol, one module per tool.

A backend turns a ``CompileRequest`` into a lock written at ``request.output`` and returns a
``CompileOutcome``. A resolver failure is a value (``ok=False`` with the tool's own words),
so the other environments still finish; only a missing tool or a broken setup raises.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode, FailureKind
from bot.locks.options import (
    ReplayedOptions,
    RequirementsTool,
    Tool,
    canonical_command,
    relative_to,
)
from bot.locks.sources import argument_sources, check_sources, spec_sources
from bot.locks.spec import read_spec_tree
from bot.paths import resolve_inside
from bot.sandbox import Sandbox, SandboxResult
from bot.sandbox.environment import host_basics


@dataclass(frozen=True)
class ExtraOutput:
    """A file a backend writes besides the main lock: another platform's lock, or the
    requirements file exported from a Poetry lock."""

    path: str
    """Repository-relative final path."""
    output: Path
    """Where the backend writes it (a temporary file, renamed with the lock on success)."""
    kind: Literal["platform-lock", "export"]
    platform: str | None = None
    """For ``platform-lock``: the target platform (``linux/arm64``)."""


@dataclass(frozen=True)
class ExportRequest:
    """``poetry export`` of the lock into a requirements file the image installs."""

    output: ExtraOutput
    groups: tuple[str, ...] = ("main",)
    """Dependency groups exported (``--only``); dev groups never reach a production export."""
    extras: tuple[str, ...] = ()
    with_hashes: bool = True


@dataclass(frozen=True)
class CompileRequest:
    root: Path
    """The repository (staging) root: the sandbox's workspace. Spec, lock and constraint
    paths are relative to it."""
    spec: str
    lock: str
    output: Path
    """Where the compiler writes (a temporary file beside the lock, renamed on success)."""
    existing: Lockfile | None
    constraints: tuple[str, ...] = ()
    """Locks passed as ``--constraint`` (repository-relative)."""
    hidden_constraints: tuple[str, ...] = ()
    """Constraint files passed to the compiler but not recorded in the lock's header
    (Lockwarden's own exclusions); repository-relative."""
    python_version: str | None = None
    mode: CompileMode = field(default_factory=CompileMode)
    extra_args: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    timeout_s: float = 900.0
    platforms: tuple[str, ...] = ()
    """Target platforms (``linux/amd64``...). The main lock is for the first one when the
    backend writes one lock per platform (conda, uv per platform); empty: the host's."""
    universal: bool = False
    """uv ``--universal``: one lock, with markers, valid on every platform."""
    extra_outputs: tuple[ExtraOutput, ...] = ()
    """Further files to write (per-platform locks); see ``ExtraOutput``."""
    export: ExportRequest | None = None
    cwd: str = ""
    """Directory the compiler runs in, relative to ``root`` (``""``: the root): where the
    lock's recorded command ran, so paths in annotations keep their spelling."""
    migrate_lock_format: bool = False
    """Poetry: a lock an older Poetry wrote may be rewritten in the current format."""
    exclude_newer: datetime | None = None
    """Release-age quarantine: leave out files uploaded after this instant (pip-tools, uv).
    Never recorded in the lock's header: the repository's own command stays as it is."""

    @property
    def workdir(self) -> Path:
        return self.root / self.cwd if self.cwd else self.root


@dataclass(frozen=True)
class CompileOutcome:
    ok: bool
    argv: tuple[str, ...]
    """The command that ran."""
    header_command: str
    """The command recorded in the lock's header."""
    duration_s: float
    error: str | None = None
    """One line for people: what failed and what to do."""
    failure: FailureKind | None = None
    tool_output: str = ""
    """The resolver's own last lines, quoted in errors."""
    notes: tuple[str, ...] = ()

    @classmethod
    def not_started(
        cls, failure: FailureKind, error: str, header: str = "", notes: tuple[str, ...] = ()
    ) -> CompileOutcome:
        """A compile refused or impossible before the tool ran."""
        return cls(False, (), header, 0.0, error=error, failure=failure, notes=notes)


class LockBackend(Protocol):
    @property
    def name(self) -> Tool: ...

    def compile(self, request: CompileRequest) -> CompileOutcome: ...


# Variables that change what a resolver sees. With isolation on they are removed so the
# lock depends on the repository alone, not on whoever runs the bot.
_RESOLUTION_VARIABLES = re.compile(
    r"^(PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|NO_INDEX|CONSTRAINT|REQUIREMENT|PRE|"
    r"ONLY_BINARY|NO_BINARY|PREFER_BINARY|CONFIG_FILE|REQUIRE_HASHES|USER|TARGET|PREFIX)|"
    r"UV_(INDEX|INDEX_URL|DEFAULT_INDEX|EXTRA_INDEX_URL|FIND_LINKS|NO_INDEX|CONSTRAINT|"
    r"OVERRIDE|PRERELEASE|RESOLUTION|EXCLUDE_NEWER|CONFIG_FILE|PYTHON|CUSTOM_COMPILE_COMMAND)|"
    r"CUSTOM_COMPILE_COMMAND)$"
)


_PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def tool_environment(
    base: Mapping[str, str], *, isolate: bool, cache_dir: Path | None
) -> dict[str, str]:
    """The environment a compiler runs with, built from an allow-list of the host's: search
    path, home, locale and proxies, and pip's and uv's own settings (without the ones that
    change resolution, when isolated). Nothing else (tokens, ``LOCKWARDEN_*`` settings) ever
    reaches a compiler; the sandbox filters again and replaces home and proxies."""
    env = host_basics(base)
    env.update((k, v) for k, v in base.items() if k.upper() in _PROXY_NAMES)
    env.update(
        (k, v)
        for k, v in base.items()
        if (k.startswith(("PIP_", "UV_")) or k == "CUSTOM_COMPILE_COMMAND")
        and not (isolate and _RESOLUTION_VARIABLES.match(k))
    )
    if isolate:
        env["PIP_CONFIG_FILE"] = os.devnull
        env["UV_NO_CONFIG"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["PYTHONUTF8"] = "1"
    if cache_dir is not None:
        env["PIP_CACHE_DIR"] = str(cache_dir / "pip")
        env["UV_CACHE_DIR"] = str(cache_dir / "uv")
    return env


def mode_args(mode: CompileMode) -> list[str]:
    if mode.kind == "full":
        return ["--upgrade"]
    if mode.kind == "targeted":
        return [f"--upgrade-package={p}" for p in mode.packages]
    return []


def index_args(request: CompileRequest) -> list[str]:
    args = [f"--index-url={request.index_url}"] if request.index_url else []
    args += [f"--extra-index-url={url}" for url in request.extra_index_urls]
    return args


def upload_cutoff(request: CompileRequest) -> str | None:
    """The quarantine's cutoff in RFC 3339 (``2024-05-01T12:00:00Z``), which uv's
    ``--exclude-newer`` and pip's ``--uploaded-prior-to`` both read; None without one."""
    if request.exclude_newer is None:
        return None
    return request.exclude_newer.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolver_args(request: CompileRequest, args: Sequence[str], paths: ReplayPaths) -> list[str]:
    """What ``pip-compile`` and ``uv pip compile`` take alike after their own options: the
    replayed ``args``, every constraint, the indexes and the upgrade mode."""
    return [
        *args,
        *(f"--constraint={c}" for c in paths.constraints),
        # Not in the header: Lockwarden's own exclusions are no part of the recorded command.
        *(f"--constraint={c}" for c in paths.hidden_constraints),
        *index_args(request),
        *mode_args(request.mode),
    ]


@dataclass(frozen=True)
class ReplayPaths:
    """The paths a compile passes, as seen from the directory it runs in, and the command
    its lock's header records."""

    sources: tuple[str, ...]
    constraints: tuple[str, ...]
    """Recorded ones as spelled, then the config's."""
    hidden_constraints: tuple[str, ...]
    header: str


def replay_paths(
    request: CompileRequest,
    replayed: ReplayedOptions,
    tool: RequirementsTool,
    *,
    lock: str,
    args: Sequence[str],
    header_extra: Sequence[str] = (),
    faithful: bool = True,
) -> ReplayPaths:
    """Paths relative to ``request.cwd``, and the header command: the recorded command
    verbatim when the compile replays it exactly (same tool, spec, options and constraints),
    else the custom command a header showed, else the canonical one (with ``header_extra``,
    options compared separately by the caller: ``faithful``)."""
    cwd = request.cwd
    spec = relative_to(cwd, request.spec)
    recorded = [_inside(request.root, cwd, s) for s in replayed.sources]
    same_spec = request.spec in recorded and None not in recorded
    sources = replayed.sources if same_spec else (spec,)
    constraints = list(replayed.constraints)
    seen = {_inside(request.root, cwd, c) for c in constraints}
    added = [relative_to(cwd, c) for c in request.constraints if c not in seen]
    constraints += added
    hidden = tuple(relative_to(cwd, c) for c in request.hidden_constraints)
    exact = set(args) == set(replayed.args) and not added and same_spec and faithful
    if replayed.recorded_command is not None and exact:
        header = replayed.recorded_command
    else:
        header = replayed.custom_command or canonical_command(
            tool, (*args, *header_extra), tuple(constraints), relative_to(cwd, lock), spec
        )
    return ReplayPaths(tuple(sources), tuple(constraints), hidden, header)


def _inside(root: Path, cwd: str, path: str) -> str | None:
    """A recorded path as a repository-relative one; None when it leads outside."""
    joined = posixpath.normpath(posixpath.join(cwd, path)) if cwd else posixpath.normpath(path)
    if path == "-" or posixpath.isabs(path) or joined == ".." or joined.startswith("../"):
        return None
    try:
        resolve_inside(root, joined, source=path)
    except LockwardenError:
        return None
    return joined


def merge_args(*groups: tuple[str, ...] | list[str]) -> list[str]:
    """Concatenate option groups, dropping exact repeats (config args may restate recorded ones)."""
    out: list[str] = []
    for group in groups:
        for arg in group:
            if arg not in out:
                out.append(arg)
    return out


_NOT_FOUND = (
    re.compile(r"No matching distribution found for (?P<what>\S+)"),
    re.compile(r"Because (?P<what>\S+) was not found in the package registry"),
    re.compile(r"Because there is no version of (?P<what>[^\s,]+)"),
)
_UNREACHABLE = re.compile(
    r"(Connection refused|Failed to establish a new connection|Name or service not known|"
    r"Temporary failure in name resolution|Could not fetch URL|error sending request|"
    r"Failed to fetch|tcp connect error|Max retries exceeded|dns error)",
    re.IGNORECASE,
)
_CONFLICT = re.compile(
    r"(ResolutionImpossible|conflicting dependencies|Could not find a version that "
    r"satisfies|No solution found when resolving|are incompatible|unsatisfiable)",
    re.IGNORECASE,
)


def classify_failure(output: str) -> tuple[FailureKind, str]:
    """Sort a resolver's error output into a kind and a one-line message for people."""
    if _UNREACHABLE.search(output) and not re.search(r"was not found in the package", output):
        return "index-unreachable", "the package index could not be reached"
    for pattern in _NOT_FOUND:
        match = pattern.search(output)
        if match:
            what = match.group("what").strip("'\"`:")
            return "not-found", f"no release of {what} on the index matches the spec"
    if _CONFLICT.search(output):
        return "conflict", "the requirements conflict; no set of versions satisfies them all"
    return "tool-error", "the compiler failed"


def run_compiler(
    argv: list[str],
    request: CompileRequest,
    *,
    sandbox: Sandbox,
    env: Mapping[str, str],
    header: str,
    notes: tuple[str, ...],
    toolchain: tuple[Path, ...] = (),
    writable: tuple[Path, ...] = (),
) -> CompileOutcome:
    """Run a compiler command in the sandbox and turn its exit into an outcome value."""
    try:
        run = sandbox.run(
            argv,
            workspace=request.root,
            cwd=request.workdir,
            env=env,
            timeout_s=request.timeout_s,
            toolchain=toolchain,
            writable=writable,
        )
    except CommandTimeoutError as exc:
        return CompileOutcome(
            ok=False,
            argv=tuple(argv),
            header_command=header,
            duration_s=request.timeout_s,
            failure="timeout",
            error=exc.user_message,
            notes=notes,
        )
    result = run.result
    notes = (*notes, *refusal_notes(run))
    outcome = CompileOutcome(result.ok, result.argv, header, result.duration_s, notes=notes)
    if result.ok:
        return outcome
    kind, message = classify_failure(result.stderr + result.stdout)
    if run.refused:
        kind, message = "index-unreachable", f"the sandbox refused a connection: {run.refused[0]}"
    return replace(outcome, failure=kind, error=message, tool_output=result.output_tail())


def refusal_notes(run: SandboxResult) -> tuple[str, ...]:
    """One note per destination the sandbox's network policy refused during a compile."""
    return tuple(
        f"sandbox refused a connection: {reason}; an index there must be listed in "
        "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS"
        for reason in run.refused
    )


def cache_mounts(cache_dir: Path | None) -> tuple[Path, ...]:
    """The download cache, shown read-write to a sandboxed compiler (created first, so the
    sandbox has a directory to show)."""
    if cache_dir is None:
        return ()
    cache_dir.mkdir(parents=True, exist_ok=True)
    return (cache_dir,)


def refused_sources(
    request: CompileRequest, sandbox: Sandbox, recorded: Sequence[str], header: str
) -> tuple[tuple[str, ...], CompileOutcome | None]:
    """Notes naming the spec's index options and direct references, and the failure when
    one of them, or an index the config or the lock's header names, is refused (a private
    host the operator has not allowed, or a direct reference outside the sandbox). Checked
    before the compiler starts, sandbox or not."""
    try:
        files = read_spec_tree(request.root, request.spec).files
    except LockwardenError:
        files = ()  # the compile stage reports a spec that leaves the repository
    in_specs = spec_sources(request.root, files)
    elsewhere = (
        *argument_sources(f"{request.lock} (recorded command)", recorded),
        *argument_sources(".github/lockwarden.yml", index_args(request)),
    )
    notes = check_sources(in_specs, sandbox.policy, sandboxed=sandbox.isolated).notes
    check = check_sources((*in_specs, *elsewhere), sandbox.policy, sandboxed=sandbox.isolated)
    if check.error is None:
        return notes, None
    return notes, CompileOutcome.not_started("refused", check.error, header, notes)


class LazyBackend:
    """A backend built on first use: a repository without Poetry or conda environments does
    not need Poetry installed, nor pays for importing the conda solver. A tool that is not
    installed fails the environments that use it, not the run."""

    def __init__(self, name: Tool, factory: Callable[[], LockBackend]) -> None:
        self.name: Tool = name
        self._factory = factory
        self._backend: LockBackend | None = None

    def compile(self, request: CompileRequest) -> CompileOutcome:
        if self._backend is None:
            try:
                self._backend = self._factory()
            except ToolNotFoundError as exc:  # fails this environment, not the run
                return CompileOutcome.not_started("tool-error", exc.user_message)
        return self._backend.compile(request)
