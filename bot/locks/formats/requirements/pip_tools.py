"""pip-tools backend: ``pip-compile`` as a subprocess, replaying the lock's recorded options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.locks.compiler import (
    CompileOutcome,
    CompileRequest,
    cache_mounts,
    merge_args,
    refused_sources,
    replay_paths,
    resolver_args,
    run_compiler,
    upload_cutoff,
)
from bot.locks.interpreters import Provisioner, Provisioning, Toolchain, Unavailable
from bot.locks.options import RequirementsTool, replay_options
from bot.sandbox import Sandbox


class PipToolsBackend:
    name: RequirementsTool = "pip-tools"

    def __init__(
        self,
        env: Mapping[str, str],
        sandbox: Sandbox,
        cache_dir: Path | None = None,
        provisioner: Provisioner | None = None,
    ) -> None:
        self._env = dict(env)
        self._sandbox = sandbox
        self._cache_dir = cache_dir
        # Without one (a bare backend), only the running interpreter and ones already found.
        self._provisioner = provisioner or Provisioner(Provisioning(None, env=self._env))

    def compile(self, request: CompileRequest) -> CompileOutcome:
        replayed = replay_options(request.existing, self.name)
        args = merge_args(replayed.args, request.extra_args)
        paths = replay_paths(request, replayed, self.name, lock=request.lock, args=args)
        header = paths.header
        source_notes, refused = refused_sources(request, self._sandbox, replayed.args, header)
        if refused is not None:
            return refused
        notes = (*replayed.notes, *source_notes)
        version = request.python_version or replayed.python_version
        toolchain = self._interpreter(version)
        if isinstance(toolchain, Unavailable):
            return CompileOutcome.not_started("tool-error", toolchain.message, header, notes)
        argv = [
            str(toolchain.python),
            "-m",
            "piptools",
            "compile",
            "--quiet",
            *resolver_args(request, _with_cutoff(args, upload_cutoff(request)), paths),
            *([f"--cache-dir={self._cache_dir / 'pip-tools'}"] if self._cache_dir else []),
            f"--output-file={request.output}",
            *paths.sources,
        ]
        # pip-compile writes this text as the header's command instead of its own spelling.
        env = {**self._env, "CUSTOM_COMPILE_COMMAND": header}
        return run_compiler(
            argv,
            request,
            sandbox=self._sandbox,
            env=env,
            header=header,
            notes=notes,
            toolchain=toolchain.prefixes,
            writable=cache_mounts(self._cache_dir),
        )

    def _interpreter(self, version: str | None) -> Toolchain | Unavailable:
        """pip-tools for the Python ``version`` (X.Y; None: the running one): Lockwarden's
        own, in a virtualenv made with that interpreter, found or installed."""
        return self._provisioner.toolchain(version)


def _with_cutoff(args: list[str], cutoff: str | None) -> list[str]:
    """``args`` with pip's ``--uploaded-prior-to`` in ``--pip-args`` (pip-compile drives pip's
    finder with them), added to the repository's own ``--pip-args`` when it has one: a
    second ``--pip-args`` would replace the first. The header is built before, without it."""
    if cutoff is None:
        return args
    option = f"--uploaded-prior-to={cutoff}"
    for position, arg in enumerate(args):
        if arg.startswith("--pip-args="):
            return [*args[:position], f"{arg} {option}", *args[position + 1 :]]
        if arg == "--pip-args" and position + 1 < len(args):
            merged = f"--pip-args={args[position + 1]} {option}"
            return [*args[:position], merged, *args[position + 2 :]]
    return [*args, f"--pip-args={option}"]
