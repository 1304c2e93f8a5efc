"""Conventions shared by the builders: what a builder process may see, and how a command's
exit is read."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from bot.errors import CommandTimeoutError
from bot.images import BuildOutcome, ImageInfo, TestStatus
from bot.shell import CommandResult

# The bot's own credentials must never reach a builder (and through it a build or a test
# container): the repository's code is untrusted.
_SECRET = re.compile(
    r"^(LOCKWARDEN_.*|GITHUB_.*|GH_.*|.*TOKEN.*|.*SECRET.*|.*PASSWORD.*|.*PRIVATE_KEY.*|"
    r"AWS_.*|GOOGLE_APPLICATION_CREDENTIALS|AZURE_.*|PGPASSWORD|DATABASE_URL)$",
    re.IGNORECASE,
)


def builder_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not _SECRET.match(k)}


def classify_exit(code: int) -> TestStatus:
    """0 passed; 1 failed (pytest: tests failed); anything else is an error running them:
    2-4 pytest usage/internal errors, 5 no tests collected, 126/127 command not runnable,
    137 killed (out of memory)."""
    if code == 0:
        return "passed"
    if code == 1:
        return "failed"
    return "errored"


def cpu_quota(cpus: float, period: int = 100_000) -> int:
    return max(1000, int(cpus * period))


def tail_lines(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_build(
    build: Callable[[], CommandResult],
    tag: str,
    *,
    timeout_s: float,
    inspect: Callable[[str], ImageInfo | None],
    error_of: Callable[[str], str],
) -> BuildOutcome:
    """Run a builder's build command and turn its exit into a BuildOutcome: a failure or a
    timeout is a value carrying the builder's own last lines."""
    try:
        result = build()
    except CommandTimeoutError as exc:
        return BuildOutcome(
            False, None, timeout_s, error=exc.user_message, log_tail=tail_lines(exc.detail, 60)
        )
    if not result.ok:
        return BuildOutcome(
            False,
            None,
            result.duration_s,
            error=error_of(result.stdout + "\n" + result.stderr),
            log_tail=tail_lines(result.stdout + result.stderr, 60),
        )
    image = inspect(tag)
    if image is None:  # pragma: no cover - the builder reported success without an image
        return BuildOutcome(False, None, result.duration_s, error="the image was not found")
    return BuildOutcome(True, image, result.duration_s, log_tail=tail_lines(result.stdout, 60))
