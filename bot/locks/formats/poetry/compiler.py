"""Poetry backend: ``poetry lock`` (or ``poetry update --lock``) in the project's directory,
then ``poetry export`` of the new lock into the requirements file the image installs.

Poetry writes ``poetry.lock`` in place and resolves path dependencies relative to the
project, so it runs in the project's own directory; the new lock is copied to
``request.output`` and the original bytes are put back (or the file removed when there was
none), so the repository's lock only changes when the compile stage renames the output.

Poetry runs isolated from the host: its configuration, credentials and data directory are an
empty per-run directory, the system keyring is not asked, and no virtualenv is created. A
project whose ``requires-python`` excludes the interpreter Poetry runs on is the exception:
Poetry then needs an environment of a Python the project allows, so it runs once more with
virtualenv creation on, into the per-run directory, and finds a compatible interpreter itself.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.errors import CommandTimeoutError, ConfigError, ToolNotFoundError
from bot.locks.compiler import (
    CompileOutcome,
    CompileRequest,
    ExportRequest,
    cache_mounts,
    classify_failure,
)
from bot.locks.formats.poetry.project import (
    LOCK_NAME,
    PoetryProject,
    migration_verdict,
    parse_poetry_lock,
    read_pyproject,
)
from bot.locks.modes import CompileMode, FailureKind
from bot.locks.options import Tool
from bot.sandbox import Sandbox, interpreter_prefix

INSTALL_HINT = (
    "install Poetry 2 with poetry-plugin-export in a virtualenv of its own (.ci/setup makes "
    ".tools/poetry from deploy/requirements-poetry.txt) and set LOCKWARDEN_POETRY_BIN to its "
    "bin/poetry, or put poetry on PATH"
)

# Variables of the host that would change what Poetry does: its own settings (sources,
# credentials, virtualenv handling) and the environment it would otherwise lock "for".
_HOST_VARIABLES = re.compile(r"^(POETRY_.*|VIRTUAL_ENV|CONDA_PREFIX|CONDA_DEFAULT_ENV)$")

_INCOMPATIBLE_LOCK = "not compatible with the current version of Poetry"
_PYTHON_NOT_ALLOWED = re.compile(r"Current Python version \S+ is not allowed by the project")
_NO_COMPATIBLE_PYTHON = re.compile(
    r"(Poetry was unable to find a compatible version|is not supported by the project)"
)
_NO_MATCHING_VERSIONS = re.compile(
    r"depends on (?P<what>[^\s(]+)(?: \((?P<spec>[^)]*)\))? which doesn't match any versions"
)
_NOT_A_DEPENDENCY = re.compile(r"The following packages are not dependencies of this project: (.+)")
_UNREACHABLE = re.compile(r"All attempts to connect to \S+ failed")
_SOLVING_FAILED = "version solving failed"


def find_poetry(configured: str | None) -> str:
    """The Poetry executable: the configured one, else ``poetry`` on PATH."""
    if configured:
        if Path(configured).is_file() or shutil.which(configured):
            return configured
        raise ToolNotFoundError(
            f"LOCKWARDEN_POETRY_BIN is {configured}, which does not exist; {INSTALL_HINT}"
        )
    found = shutil.which("poetry")
    if found is None:
        raise ToolNotFoundError(f"Poetry was not found; {INSTALL_HINT}")
    return found


def poetry_command(mode: CompileMode) -> tuple[str, ...] | str:
    """Poetry's arguments for a compile mode, or why the mode cannot be expressed.

    ``poetry lock`` keeps every locked version the project still allows (Poetry 2),
    ``--regenerate`` starts from scratch, ``update --lock`` moves the named packages only.
    """
    if mode.kind == "full":
        return ("lock", "--regenerate")
    if mode.kind == "minimal" or not mode.packages:
        return ("lock",)
    names = []
    for target in mode.packages:
        try:
            requirement = Requirement(target)
        except InvalidRequirement:
            return f"{target!r} is not a package name; give a name such as 'numpy'"
        if requirement.specifier:
            return (
                "Poetry cannot move one package to a given version without changing "
                f"pyproject.toml; pin it instead (/lockwarden pin {target})"
            )
        names.append(canonicalize_name(requirement.name))
    return ("update", "--lock", *names)


def classify_poetry_failure(output: str) -> tuple[FailureKind, str]:
    """Sort Poetry's error output into a failure kind and a one-line message for people."""
    if _INCOMPATIBLE_LOCK in output:
        return (
            "tool-error",
            f"poetry.lock is {_INCOMPATIBLE_LOCK}; update Poetry (LOCKWARDEN_POETRY_BIN) or "
            "regenerate the lock with `poetry lock --regenerate`",
        )
    if _NO_COMPATIBLE_PYTHON.search(output) or _PYTHON_NOT_ALLOWED.search(output):
        return (
            "tool-error",
            "Poetry found no Python interpreter the project's requires-python allows; install "
            "one where Lockwarden runs (on PATH) or widen requires-python",
        )
    not_a_dependency = _NOT_A_DEPENDENCY.search(output)
    if not_a_dependency:
        names = not_a_dependency.group(1).strip()
        return "tool-error", f"{names}: not a dependency of this project; check the name"
    if _UNREACHABLE.search(output):
        return "index-unreachable", "a package source of pyproject.toml could not be reached"
    missing = _NO_MATCHING_VERSIONS.search(output)
    if missing:
        spec = f" ({missing.group('spec')})" if missing.group("spec") else ""
        return (
            "not-found",
            f"no release of {missing.group('what')}{spec} on the package sources matches the spec",
        )
    if _SOLVING_FAILED in output:
        return "conflict", "the requirements conflict; no set of versions satisfies them all"
    kind, message = classify_failure(output)
    return kind, "Poetry failed; see its output" if kind == "tool-error" else message


@dataclass(frozen=True)
class _Run:
    """One Poetry command's exit, as a value."""

    ok: bool
    argv: tuple[str, ...]
    duration_s: float
    output: str = ""
    """stderr and stdout, for classification."""
    tail: str = ""
    timed_out: str | None = None
    """The timeout message, when Poetry was stopped."""


class PoetryBackend:
    name: Tool = "poetry"

    def __init__(
        self, env: Mapping[str, str], poetry_bin: str, cache_dir: Path | None, sandbox: Sandbox
    ) -> None:
        self._env = {k: v for k, v in env.items() if not _HOST_VARIABLES.match(k)}
        self._poetry = poetry_bin
        self._cache_dir = cache_dir
        self._sandbox = sandbox
        # Poetry's own virtualenv and the interpreter it was made from, shown read-only.
        self._toolchain = (interpreter_prefix(poetry_bin), _base_prefix(poetry_bin))

    def compile(self, request: CompileRequest) -> CompileOutcome:
        project_dir = (request.root / request.spec).parent
        lock_file = request.root / request.lock
        original = lock_file.read_bytes() if lock_file.is_file() else None
        if original is not None:
            # A lock this Poetry cannot read fails here, naming the line, not inside Poetry.
            parse_poetry_lock(original.decode("utf-8", errors="replace"), request.lock)
        command = poetry_command(request.mode)
        if isinstance(command, str):
            return _refused("poetry update --lock", command)
        header = " ".join(("poetry", *command, *request.extra_args))
        expected = project_dir / LOCK_NAME
        if lock_file.resolve() != expected.resolve():
            return _refused(
                header,
                f"{request.lock}: Poetry writes {LOCK_NAME} beside pyproject.toml "
                f"({expected.relative_to(request.root)}); set the environment's lock there",
            )
        try:
            project = read_pyproject(request.root, request.spec)
        except ConfigError as exc:
            return _refused(header, exc.user_message)
        notes = _notes(request, project)
        with tempfile.TemporaryDirectory(prefix="lockwarden-poetry-") as scratch:
            try:
                places = _Places(request.root, project_dir, Path(scratch))
                outcome = self._lock_and_export(request, places, lock_file, command, header, notes)
            finally:
                _restore(lock_file, original)
        return _kept_format(request, original, outcome)

    def _lock_and_export(
        self,
        request: CompileRequest,
        places: _Places,
        lock_file: Path,
        command: tuple[str, ...],
        header: str,
        notes: tuple[str, ...],
    ) -> CompileOutcome:
        started = time.perf_counter()
        deadline = started + request.timeout_s
        env = self._environment(places.scratch)
        argv = [*self._base_argv(places.project_dir), *command, *request.extra_args]
        run = self._run(argv, places, env, deadline)
        if not run.ok and _PYTHON_NOT_ALLOWED.search(run.output):
            # Poetry only switches to an interpreter the project allows inside a virtualenv.
            run = self._run(argv, places, _with_virtualenvs(env, places.scratch), deadline)
        if not run.ok:
            return _outcome(run, header, notes, started)
        if request.export is not None:
            export = self._run(
                [*self._base_argv(places.project_dir), *export_args(request.export)],
                places,
                env,
                deadline,
            )
            if not export.ok:
                failed = _outcome(export, header, notes, started)
                where = request.export.output.path
                return replace(failed, error=f"poetry export into {where} failed: {failed.error}")
        shutil.copyfile(lock_file, request.output)
        return _outcome(run, header, notes, started)

    def _base_argv(self, project_dir: Path) -> list[str]:
        return [self._poetry, f"--directory={project_dir}", "--no-interaction", "--no-ansi"]

    def _environment(self, scratch: Path) -> dict[str, str]:
        cache = self._cache_dir / "poetry" if self._cache_dir is not None else scratch / "cache"
        return {
            **self._env,
            "POETRY_CACHE_DIR": str(cache),
            "POETRY_CONFIG_DIR": str(scratch / "config"),
            "POETRY_DATA_DIR": str(scratch / "data"),
            "POETRY_VIRTUALENVS_CREATE": "false",
            "POETRY_VIRTUALENVS_IN_PROJECT": "false",
            "POETRY_NO_INTERACTION": "1",
            # Credentials come from no keyring of the host (and none blocks asking for one).
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        }

    def _run(
        self, argv: list[str], places: _Places, env: Mapping[str, str], deadline: float
    ) -> _Run:
        timeout = max(1.0, deadline - time.perf_counter())
        try:
            sandboxed = self._sandbox.run(
                argv,
                workspace=places.root,
                cwd=places.project_dir,
                env=env,
                timeout_s=timeout,
                toolchain=self._toolchain,
                writable=(places.scratch, *cache_mounts(self._cache_dir)),
            )
        except CommandTimeoutError as exc:
            return _Run(False, tuple(argv), timeout, timed_out=exc.user_message)
        except ToolNotFoundError as exc:
            return _Run(False, tuple(argv), 0.0, output=exc.user_message, tail=exc.user_message)
        result = sandboxed.result
        return _Run(
            result.ok,
            result.argv,
            result.duration_s,
            output=result.stderr + result.stdout,
            tail=result.output_tail(),
        )


@dataclass(frozen=True)
class _Places:
    root: Path
    """The workspace the sandbox shows read-write."""
    project_dir: Path
    scratch: Path
    """Poetry's config, data and (without a cache) cache directories."""


def _base_prefix(poetry_bin: str) -> Path:
    """The interpreter installation Poetry's virtualenv was made from."""
    python = Path(poetry_bin).absolute().parent / "python"
    return interpreter_prefix(python) if python.exists() else interpreter_prefix(poetry_bin)


def export_args(export: ExportRequest) -> list[str]:
    """``poetry export`` of the groups (and extras) asked for into the export's output."""
    return [
        "export",
        "--format=requirements.txt",
        f"--output={export.output.output.absolute()}",
        f"--only={','.join(export.groups)}",
        *(["--without-hashes"] if not export.with_hashes else []),
        *(f"--extras={extra}" for extra in export.extras),
    ]


def _kept_format(
    request: CompileRequest, original: bytes | None, outcome: CompileOutcome
) -> CompileOutcome:
    """Keep a lock an older Poetry wrote in its format unless its migration was asked for
    (``poetry_migrate``, a full refresh): see ``migration_verdict``."""
    if not outcome.ok or original is None:
        return outcome
    verdict = migration_verdict(
        original.decode("utf-8", errors="replace"),
        request.output.read_text("utf-8"),
        request.lock,
        asked=request.migrate_lock_format or request.mode.kind == "full",
    )
    if verdict.action == "keep":
        # The export was made from the new lock, which locks the very same packages.
        request.output.write_bytes(original)
        return outcome
    if verdict.action == "refuse":
        return replace(
            _refused(outcome.header_command, verdict.message or ""),
            failure="refused",
            argv=outcome.argv,
            notes=outcome.notes,
        )
    if verdict.message is not None:
        return replace(outcome, notes=(*outcome.notes, verdict.message))
    return outcome


def _refused(header: str, message: str) -> CompileOutcome:
    """A request Poetry is not run for."""
    return CompileOutcome.not_started("tool-error", message, header)


def _notes(request: CompileRequest, project: PoetryProject) -> tuple[str, ...]:
    """What the request asked for that Poetry does not take."""
    notes = []
    if (request.index_url or request.extra_index_urls) and not project.sources:
        notes.append(
            "the configured package indexes were not applied: Poetry reads its sources from "
            "pyproject.toml ([[tool.poetry.source]])"
        )
    if request.constraints:
        notes.append(
            f"constraints from {', '.join(request.constraints)} were not applied: Poetry has "
            "no constraints files"
        )
    return tuple(notes)


def _with_virtualenvs(env: Mapping[str, str], scratch: Path) -> dict[str, str]:
    return {
        **env,
        "POETRY_VIRTUALENVS_CREATE": "true",
        "POETRY_VIRTUALENVS_PATH": str(scratch / "virtualenvs"),
        "POETRY_VIRTUALENVS_OPTIONS_NO_PIP": "true",
    }


def _outcome(run: _Run, header: str, notes: tuple[str, ...], started: float) -> CompileOutcome:
    """The compile's outcome after Poetry's command ``run``: done, or why it failed."""
    outcome = CompileOutcome(True, run.argv, header, time.perf_counter() - started, notes=notes)
    if run.ok:
        return outcome
    if run.timed_out is not None:
        return replace(outcome, ok=False, failure="timeout", error=run.timed_out)
    kind, message = classify_poetry_failure(run.output)
    return replace(outcome, ok=False, failure=kind, error=message, tool_output=run.tail)


def _restore(lock_file: Path, original: bytes | None) -> None:
    """Put the project's lock back as it was before Poetry ran."""
    if original is None:
        lock_file.unlink(missing_ok=True)
    elif not lock_file.is_file() or lock_file.read_bytes() != original:
        lock_file.write_bytes(original)
