"""Errors with a stable code and a message that says what to do next.

Every boundary (subprocess, file system, YAML, network) wraps what it catches in one of
these, so callers handle a single family and users read one kind of message.
"""

from __future__ import annotations


class LockwardenError(Exception):
    """Base error. ``code`` is stable (logs, JSON); ``user_message`` is for people."""

    code = "lockwarden"

    def __init__(self, user_message: str, *, detail: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail

    def __str__(self) -> str:
        if self.detail:
            return f"{self.user_message}\n{self.detail}"
        return self.user_message


class ConfigError(LockwardenError):
    """The repository configuration is invalid; names the file, line and field."""

    code = "config"

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = f"{path}:{line}" if line is not None else path
        what = f" (field '{field}')" if field else ""
        super().__init__(f"{where}{what}: {message}")
        self.path = path
        self.line = line
        self.field = field


class LockfileParseError(LockwardenError):
    """A requirements or lock file could not be read; names the file and line."""

    code = "lockfile-parse"

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


class ConstraintCycleError(LockwardenError):
    """Environments constrain each other in a cycle, so no compile order exists."""

    code = "constraint-cycle"


class CompileError(LockwardenError):
    """A resolver failed; ``detail`` quotes the resolver's own output."""

    code = "compile"


class ToolNotFoundError(LockwardenError):
    """A required executable (pip-compile, uv, ...) is not installed."""

    code = "tool-not-found"


class CommandTimeoutError(LockwardenError):
    """A subprocess ran past its time limit and was killed."""

    code = "timeout"
