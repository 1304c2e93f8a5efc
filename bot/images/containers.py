"""Conventions shared by the builders: what a builder process may see, and how a command's
exit is read."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bot.errors import CommandTimeoutError
from bot.images import BuildOutcome, BuildSpec, ImageInfo, TestStatus
from bot.images.os_packages import missing_pin_error
from bot.images.reproducible import SOURCE_DATE_EPOCH, declaring_source_date_epoch
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


def build_arguments(spec: BuildSpec) -> dict[str, str]:
    """The build arguments of ``spec``; with a fixed timestamp, ``SOURCE_DATE_EPOCH`` too
    (unless set), which :func:`build_dockerfile` makes every stage's ``RUN`` steps see."""
    args = dict(spec.build_args)
    if spec.timestamp is not None:
        args.setdefault(SOURCE_DATE_EPOCH, str(spec.timestamp))
    return args


@contextmanager
def build_dockerfile(spec: BuildSpec) -> Iterator[Path]:
    """The Dockerfile to hand the builder: with a fixed timestamp, a copy whose stages
    declare ``SOURCE_DATE_EPOCH`` (tools in ``RUN`` steps, pip's bytecode compiler among
    them, then write the same bytes every build); otherwise the spec's own."""
    if spec.timestamp is None:
        yield spec.dockerfile
        return
    with declaring_source_date_epoch(spec.dockerfile) as dockerfile:
        yield dockerfile


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
    timeout is a value carrying the builder's own last lines. A pinned OS package the mirror
    dropped is named as the reason: the builder's last line only says the step failed."""
    try:
        result = build()
    except CommandTimeoutError as exc:
        return BuildOutcome(
            False, None, timeout_s, error=exc.user_message, log_tail=tail_lines(exc.detail, 60)
        )
    if not result.ok:
        output = result.stdout + "\n" + result.stderr
        error, pins = error_of(output), missing_pin_error(output)
        return BuildOutcome(
            False,
            None,
            result.duration_s,
            error=f"{error}: {pins}" if pins else error,
            log_tail=tail_lines(result.stdout + result.stderr, 60),
        )
    image = inspect(tag)
    if image is None:  # pragma: no cover - the builder reported success without an image
        return BuildOutcome(False, None, result.duration_s, error="the image was not found")
    return BuildOutcome(True, image, result.duration_s, log_tail=tail_lines(result.stdout, 60))
