"""Conventions shared by the builders: what a builder process may see, and how a command's
exit is read."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.images import TestStatus

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
