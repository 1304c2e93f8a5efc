"""The one place that starts subprocesses.

Arguments are always lists (never a shell string), output is captured as text, a time
limit is always set, and a timed-out command is killed with its whole process group so no
resolver keeps running in the background.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import CommandTimeoutError, ToolNotFoundError

DEFAULT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def output_tail(self, lines: int = 40) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stdin_text: str | None = None,
) -> CommandResult:
    """Run ``argv`` and return its result; a non-zero exit is a value, not an exception."""
    args = [str(a) for a in argv]
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolNotFoundError(f"'{args[0]}' was not found; is it installed and on PATH?") from exc
    try:
        stdout, stderr = proc.communicate(input=stdin_text, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        proc.communicate()
        raise CommandTimeoutError(
            f"'{' '.join(args[:3])} ...' did not finish within {timeout_s:.0f} s and was stopped"
        ) from exc
    return CommandResult(
        argv=tuple(args),
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        duration_s=time.perf_counter() - started,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
