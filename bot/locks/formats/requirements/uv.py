"""uv backend: ``uv pip compile``, with the same contract as the pip-tools backend.

Target platforms: ``universal`` writes one lock with markers for every platform; one
platform is resolved for alone (``--python-platform``); several ``platforms`` (not
universal) give one lock per platform, the main lock for the first and each
``platform-lock`` extra output for its own, all from the same spec and options. The platform
flags are recorded in each lock's header, so the header reproduces that lock.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bot.errors import LockwardenError, ToolNotFoundError
from bot.locks.compiler import (
    CompileOutcome,
    CompileRequest,
    ExtraOutput,
    cache_mounts,
    merge_args,
    refused_sources,
    replay_paths,
    resolver_args,
    run_compiler,
    upload_cutoff,
)
from bot.locks.interpreters import Provisioner
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.locks.options import RequirementsTool, replay_options
from bot.locks.platforms import parse_platform
from bot.paths import is_file_inside, read_text_inside
from bot.sandbox import Sandbox, interpreter_prefix

_PLATFORM_OPTIONS = ("--python-platform", "--universal")


def find_uv(configured: str | None) -> str:
    """The uv executable: the configured one, else the binary shipped in the ``uv`` wheel."""
    if configured:
        return configured
    try:
        from uv import find_uv_bin
    except ImportError as exc:  # pragma: no cover - uv is a declared dependency
        raise ToolNotFoundError("uv is not installed; install it or set LOCKWARDEN_UV_BIN") from exc
    try:
        return find_uv_bin()
    except FileNotFoundError as exc:  # pragma: no cover - broken install
        raise ToolNotFoundError(f"uv binary not found: {exc}") from exc


class UvBackend:
    name: RequirementsTool = "uv"

    def __init__(
        self,
        env: Mapping[str, str],
        uv_bin: str,
        sandbox: Sandbox,
        provisioner: Provisioner | None = None,
    ) -> None:
        self._env = dict(env)
        self._uv = uv_bin
        self._sandbox = sandbox
        self._provisioner = provisioner

    def compile(self, request: CompileRequest) -> CompileOutcome:
        if len(request.platforms) > 1 and not request.universal:
            return self._compile_per_platform(request)
        python_platform = None
        if len(request.platforms) == 1 and not request.universal:
            try:
                python_platform = parse_platform(request.platforms[0]).uv_platform
            except ValueError as exc:
                return _platform_failure(str(exc))
        return self._compile_one(
            request, lock=request.lock, output=request.output, python_platform=python_platform
        )

    def _compile_per_platform(self, request: CompileRequest) -> CompileOutcome:
        """The main lock for the first platform, then each platform lock, stopping at the
        first failure."""
        try:
            uv_platforms = [parse_platform(p).uv_platform for p in request.platforms]
            main_platform = uv_platforms[0]
            targets = [
                (extra, extra.platform, parse_platform(extra.platform).uv_platform)
                for extra in request.extra_outputs
                if extra.kind == "platform-lock" and extra.platform is not None
            ]
        except ValueError as exc:
            return _platform_failure(str(exc))
        main = self._compile_one(
            request, lock=request.lock, output=request.output, python_platform=main_platform
        )
        if not main.ok:
            return _for_platform(main, request.platforms[0])
        duration = main.duration_s
        for extra, platform, uv_platform in targets:
            seeded = _seed(request.root, extra)
            if seeded is not None:
                return replace(seeded, duration_s=duration)
            outcome = self._compile_one(
                request,
                lock=extra.path,
                output=extra.output,
                python_platform=uv_platform,
                existing=_current_lock(request.root, extra.path),
            )
            duration += outcome.duration_s
            if not outcome.ok:
                return replace(_for_platform(outcome, platform), duration_s=duration)
        return replace(main, duration_s=duration)

    def _compile_one(
        self,
        request: CompileRequest,
        *,
        lock: str,
        output: Path,
        python_platform: str | None,
        existing: Lockfile | None = None,
    ) -> CompileOutcome:
        replayed = replay_options(existing or request.existing, self.name)
        python = request.python_version or replayed.python_version
        args = merge_args(replayed.args, request.extra_args)
        platform_args = [
            *(["--universal"] if request.universal else []),
            *([f"--python-platform={python_platform}"] if python_platform else []),
        ]
        if platform_args:
            # The request names the platform; a recorded one (another platform's, or the
            # previous mode's) must not come back with the replayed options.
            args = [a for a in args if a.partition("=")[0] not in _PLATFORM_OPTIONS]
        python_args = [f"--python-version={python}"] if python else []
        paths = replay_paths(
            request,
            replayed,
            self.name,
            lock=lock,
            args=[*args, *platform_args],
            header_extra=python_args,
            faithful=python == replayed.recorded_python,
        )
        header = paths.header
        cutoff = upload_cutoff(request)  # the quarantine, kept out of the header
        argv = [
            self._uv,
            "pip",
            "compile",
            "--quiet",
            "--no-progress",
            *resolver_args(request, _with_cutoff(args, cutoff), paths),
            *platform_args,
            *python_args,
            *self._interpreter_args(python, args),
            f"--custom-compile-command={header}",
            f"--output-file={output}",
            *paths.sources,
        ]
        source_notes, refused = refused_sources(request, self._sandbox, replayed.args, header)
        if refused is not None:
            return refused
        return run_compiler(
            argv,
            request,
            sandbox=self._sandbox,
            env=self._env,
            header=header,
            notes=(*replayed.notes, *source_notes),
            toolchain=(interpreter_prefix(self._uv),),
            writable=cache_mounts(self._cache_dir()),
        )

    def _interpreter_args(self, version: str | None, args: list[str]) -> list[str]:
        """``--python`` naming the running interpreter when the lock is for its Python: uv then
        skips looking for one on every compile (through pyenv's shell-script shims, on a
        person's machine). Only in the command run: the lock's header is the replayed command
        (``--custom-compile-command``), so the lock stays byte for byte the same. An
        interpreter the options already name is kept."""
        if self._provisioner is None or any(a in ("-p", "--python") for a in _names(args)):
            return []
        interpreter = self._provisioner.running(version)
        return [] if interpreter is None else [f"--python={interpreter.executable}"]

    def _cache_dir(self) -> Path | None:
        cache = self._env.get("UV_CACHE_DIR")
        return Path(cache).parent if cache else None


def _seed(root: Path, extra: ExtraOutput) -> CompileOutcome | None:
    """Copy the platform's current lock onto its output so uv keeps its pins (uv reads the
    output file as preferences), or clear the output when there is no current lock; a failure
    value when that fails."""
    current = root / extra.path
    try:
        if current.is_file():
            extra.output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(current, extra.output)
        else:
            extra.output.unlink(missing_ok=True)
    except OSError as exc:
        return CompileOutcome.not_started(
            "tool-error",
            f"{extra.path}: cannot copy the current lock to {extra.output} ({exc}); "
            "check the file's permissions and the free disk space",
        )
    return None


def _current_lock(root: Path, path: str) -> Lockfile | None:
    """A platform's current lock, whose header that platform's compile replays; None when
    there is none yet or it cannot be read (the main lock's options apply then)."""
    try:
        if not is_file_inside(root, path, source=path):
            return None
        return parse_lockfile(read_text_inside(root, path, source=path), path)
    except (LockwardenError, OSError):
        return None


def _for_platform(outcome: CompileOutcome, platform: str) -> CompileOutcome:
    """Say which platform's lock failed."""
    return replace(outcome, error=f"{platform}: {outcome.error or 'the compile failed'}")


def _platform_failure(message: str) -> CompileOutcome:
    return CompileOutcome.not_started("tool-error", f"{message} (in the environment's platforms)")


def _with_cutoff(args: list[str], cutoff: str | None) -> list[str]:
    """``args`` with ``--exclude-newer`` at the quarantine's cutoff, or at the repository's
    own recorded one when that is earlier (uv takes the option once)."""
    if cutoff is None:
        return args
    kept: list[str] = []
    own: list[str] = []
    pending = False
    for arg in args:
        if pending:
            own.append(arg)
            pending = False
        elif arg == "--exclude-newer":
            pending = True
        elif arg.startswith("--exclude-newer="):
            own.append(arg.partition("=")[2])
        else:
            kept.append(arg)
    # Both are RFC 3339 in UTC when comparable; a date or other form keeps the repository's.
    earliest = min([cutoff, *own]) if all(o.endswith("Z") for o in own) else own[-1]
    return [*kept, f"--exclude-newer={earliest}"]


def _names(args: list[str]) -> list[str]:
    """The option names in ``args`` (``--python=x`` -> ``--python``)."""
    return [a.partition("=")[0] for a in args if a.startswith("-")]
