"""pip-tools backend: ``pip-compile`` as a subprocess, replaying the lock's recorded options."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from bot import shell
from bot.locks.backends import (
    CompileOutcome,
    CompileRequest,
    cache_mounts,
    index_args,
    merge_args,
    mode_args,
    refused_sources,
    run_compiler,
)
from bot.locks.options import RequirementsTool, canonical_command, replay_options
from bot.sandbox import Sandbox, interpreter_prefix
from bot.sandbox.environment import host_basics


class PipToolsBackend:
    name: RequirementsTool = "pip-tools"

    def __init__(
        self, env: Mapping[str, str], sandbox: Sandbox, cache_dir: Path | None = None
    ) -> None:
        self._env = dict(env)
        self._sandbox = sandbox
        self._cache_dir = cache_dir

    def compile(self, request: CompileRequest) -> CompileOutcome:
        replayed = replay_options(request.existing, self.name)
        args = merge_args(replayed.args, request.extra_args)
        constraints = tuple(merge_args(replayed.constraints, request.constraints))
        header = replayed.custom_command or canonical_command(
            self.name, tuple(args), constraints, request.lock, request.spec
        )
        source_notes, refused = refused_sources(request, self._sandbox, replayed.args, header)
        if refused is not None:
            return refused
        notes = (*replayed.notes, *source_notes)
        version = request.python_version or replayed.python_version
        python = self._interpreter(version)
        if python is None:
            return CompileOutcome(
                ok=False,
                argv=(),
                header_command=header,
                duration_s=0.0,
                failure="tool-error",
                error=(
                    f"pip-compile resolves for the Python it runs on, and no python"
                    f"{version} with pip-tools was found; install it, or set "
                    "'backend: uv' for this environment"
                ),
                notes=notes,
            )
        argv = [
            python,
            "-m",
            "piptools",
            "compile",
            "--quiet",
            *args,
            *(f"--constraint={c}" for c in constraints),
            # Not in ``header``: Lockwarden's own exclusions are no part of the recorded command.
            *(f"--constraint={c}" for c in request.hidden_constraints),
            *index_args(request),
            *mode_args(request.mode),
            *([f"--cache-dir={self._cache_dir / 'pip-tools'}"] if self._cache_dir else []),
            f"--output-file={request.output}",
            request.spec,
        ]
        env = {**self._env, "CUSTOM_COMPILE_COMMAND": header}
        return run_compiler(
            argv,
            request,
            sandbox=self._sandbox,
            env=env,
            header=header,
            notes=notes,
            toolchain=(interpreter_prefix(python),),
            writable=cache_mounts(self._cache_dir),
        )

    @staticmethod
    def _interpreter(version: str | None) -> str | None:
        """An interpreter of ``version`` that has pip-tools; the running one by default.
        The real executable, not a shim (pyenv's run ``pyenv exec``, which needs a home and
        settings the sandbox does not show)."""
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        if version is None or version == running:
            return sys.executable
        candidate = shutil.which(f"python{version}")
        if candidate is None:
            return None
        probe = shell.run(
            [candidate, "-c", "import piptools, sys; print(sys.executable)"],
            env=host_basics(os.environ),
            timeout_s=60,
        )
        executable = probe.stdout.strip().splitlines()[-1:] if probe.ok else []
        return executable[0] if executable else None
