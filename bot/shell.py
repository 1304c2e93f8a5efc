"""The one place that starts subprocesses.

Arguments are always lists (never a shell string), output is captured as text, a time
limit is always set, and a timed-out command is killed with its whole process group so no
resolver keeps running in the background.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError

DEFAULT_TIMEOUT_S = 900.0
TERMINATE_GRACE_S = 10.0
INTERRUPT_GRACE_S = 0.5
"""After Ctrl-C a person waits: every child gets this long to stop before SIGKILL."""
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("The above exception", "During handling of")


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
        """The tool's own explanation, for error messages: the last lines of stderr (or
        stdout when stderr is empty). Python tracebacks are cut down to their exception
        lines: pip-compile prints the real message before them, and frames say nothing."""
        text = self.stderr.strip() or self.stdout.strip()
        kept: list[str] = []
        in_traceback = False
        for line in text.splitlines():
            if line == _TRACEBACK:
                in_traceback = True
            elif line.startswith(_CHAINED) or (not line.strip() and kept and not kept[-1]):
                continue
            elif not in_traceback:
                kept.append(line)
            elif line and not line[0].isspace() and not line.startswith(_CHAINED):
                kept.append(line)  # the exception line that ends a traceback
                in_traceback = False
        return "\n".join(kept[-lines:])


class _Running:
    """The process groups this process has started and not yet reaped: what an interrupt
    must stop. Compiles run in worker threads, which a Ctrl-C (delivered to the main
    thread) does not reach; their children, in sessions of their own, would not see it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()

    def add(self, pid: int) -> None:
        with self._lock:
            self._groups.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._groups.discard(pid)

    def stop_all(self, grace_s: float = INTERRUPT_GRACE_S) -> None:
        """SIGTERM every group, SIGKILL what is left after ``grace_s``."""
        with self._lock:
            groups = list(self._groups)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
            deadline = time.monotonic() + grace_s
            while sig == signal.SIGTERM and time.monotonic() < deadline and self._alive(groups):
                time.sleep(0.02)

    @staticmethod
    def _alive(groups: list[int]) -> bool:
        for pid in groups:
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                continue
            return True
        return False


RUNNING = _Running()


def stop_all_children() -> None:
    """Stop every command still running (an interrupt): within ``INTERRUPT_GRACE_S``."""
    RUNNING.stop_all()


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
        if cwd is not None and not Path(cwd).is_dir():
            raise LockwardenError(f"{cwd}: no such directory to run '{args[0]}' in") from exc
        raise ToolNotFoundError(f"'{args[0]}' was not found; is it installed and on PATH?") from exc
    RUNNING.add(proc.pid)
    try:
        stdout, stderr = proc.communicate(input=stdin_text, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        partial = _stop_group(proc)
        raise CommandTimeoutError(
            f"'{' '.join(args[:3])} ...' did not finish within {timeout_s:.0f} s and was stopped",
            detail=partial,
        ) from exc
    except BaseException:  # an interrupt: the command must not outlive this one
        _stop_group(proc, grace_s=INTERRUPT_GRACE_S)
        raise
    finally:
        RUNNING.discard(proc.pid)
    return CommandResult(
        argv=tuple(args),
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        duration_s=time.perf_counter() - started,
    )


def _stop_group(proc: subprocess.Popen[str], grace_s: float = 0.0) -> str:
    """SIGTERM first, so tools that own other processes (buildah stops its container) can
    clean up; SIGKILL for whatever is left after a short grace period. Returns what the
    command printed before it was stopped."""
    first = grace_s or TERMINATE_GRACE_S
    for sig, grace in ((signal.SIGTERM, first), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(proc.pid, sig)
        try:
            stdout, stderr = proc.communicate(timeout=grace)
            return (stdout or "") + (stderr or "")
        except subprocess.TimeoutExpired:
            continue
    return ""  # pragma: no cover - SIGKILL cannot be ignored


@dataclass
class Started:
    """A long-lived process started by ``start``: its pid and its standard output."""

    process: subprocess.Popen[str]

    name: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def readline(self, *, timeout_s: float) -> str:
        """The next line the process prints; raises when none comes in time or it exits."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        line = stdout.readline() if ready else ""
        if not line:
            code = self.process.poll()
            said = f"exited with {code}" if code is not None else f"said nothing in {timeout_s} s"
            raise LockwardenError(f"'{self.name}' {said}")
        return line.rstrip("\n")


@contextlib.contextmanager
def start(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[Started]:
    """Start ``argv`` in a session of its own for the length of a ``with`` block (a helper
    that must outlive one command, such as a namespace holder). Its whole process group is
    killed on exit, whatever happens inside the block, so nothing it started stays behind."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolNotFoundError(f"'{args[0]}' was not found; is it installed and on PATH?") from exc
    RUNNING.add(proc.pid)
    try:
        yield Started(proc, args[0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        RUNNING.discard(proc.pid)
        if proc.stdout is not None:
            proc.stdout.close()
