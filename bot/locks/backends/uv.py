"""uv backend: ``uv pip compile``, with the same contract as the pip-tools backend."""

from __future__ import annotations

from collections.abc import Mapping

from bot.errors import ToolNotFoundError
from bot.locks.backends import (
    CompileOutcome,
    CompileRequest,
    index_args,
    merge_args,
    mode_args,
    run_compiler,
)
from bot.locks.options import Tool, canonical_command, replay_options


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
    name: Tool = "uv"

    def __init__(self, env: Mapping[str, str], uv_bin: str) -> None:
        self._env = dict(env)
        self._uv = uv_bin

    def compile(self, request: CompileRequest) -> CompileOutcome:
        replayed = replay_options(request.existing, self.name)
        python = request.python_version or replayed.python_version
        args = merge_args(replayed.args, request.extra_args)
        constraints = tuple(merge_args(replayed.constraints, request.constraints))
        recorded_args = (*args, f"--python-version={python}") if python else tuple(args)
        header = replayed.custom_command or canonical_command(
            self.name, recorded_args, constraints, request.lock, request.spec
        )
        argv = [
            self._uv,
            "pip",
            "compile",
            "--quiet",
            "--no-progress",
            *args,
            *(f"--constraint={c}" for c in constraints),
            # Not in ``header``: Lockwarden's own exclusions are no part of the recorded command.
            *(f"--constraint={c}" for c in request.hidden_constraints),
            *index_args(request),
            *mode_args(request.mode),
            *([f"--python-version={python}"] if python else []),
            f"--custom-compile-command={header}",
            f"--output-file={request.output}",
            request.spec,
        ]
        return run_compiler(argv, request, env=self._env, header=header, notes=replayed.notes)
