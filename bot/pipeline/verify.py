"""Verify: in each built image, the lock installs as locked and the repository's tests pass.

The repository's code is untrusted: containers run with the network off (unless the config
turns it on, and then on a private network whose only way out is the egress proxy), memory,
CPU, process and time limits, only the environment variables named here, and only the lock
mounted read-only. No credential of the bot is ever passed in.
"""

from __future__ import annotations

from pathlib import Path

from bot.config import RepoConfig
from bot.images import Builder, Mount, RunOutcome, RunSpec, TestStatus
from bot.progress import Progress, ProgressEvent, no_progress
from bot.results import CheckResult, ImageResult, TestResult

LOCK_MOUNT = "/tmp/lockwarden/requirements.txt"  # noqa: S108 - a path inside the container
# Only checks that every locked version is already installed: no index, no changes.
INSTALL_CHECK = (
    "python", "-m", "pip", "install", "--dry-run", "--no-index", "--require-hashes",
    "--no-deps", "--disable-pip-version-check", "--no-input", "-r", LOCK_MOUNT,
)  # fmt: skip
PIP_CHECK = ("python", "-m", "pip", "check", "--disable-pip-version-check")
CHECK_TIMEOUT_S = 300.0


def verify_images(
    root: Path,
    config: RepoConfig,
    images: tuple[ImageResult, ...],
    builder: Builder | None,
    *,
    run_tests: bool,
    progress: Progress = no_progress,
) -> tuple[TestResult, ...]:
    """Each built image's checks and tests; its testing and tested (or failed, or skipped)
    go to ``progress``."""
    envs = {env.name: env for env in config.environments}
    results = []
    for image in images:
        env = envs[image.name]
        if builder is None or image.status != "built" or image.after is None:
            results.append(TestResult(image.name, "skipped", reason="no image was built"))
            progress(_tested_event(results[-1]))
            continue
        progress(ProgressEvent(image.name, "test", "running"))
        reference = image.after.reference
        installed = env.installed_lock
        install = (
            _check(builder, reference, INSTALL_CHECK, (Mount(root / installed, LOCK_MOUNT),))
            if installed is not None
            else CheckResult("skipped")
        )
        # Where conda installs the lock, pip's view of the packages is no check of it.
        pip_check = (
            _check(builder, reference, PIP_CHECK, ())
            if env.format.installs_with_pip
            else CheckResult("skipped")
        )
        if not run_tests:
            tests = TestResult(image.name, "skipped", reason="turned off with --no-test")
        elif not env.test_command:
            tests = TestResult(image.name, "skipped", reason="no test_command configured")
        else:
            outcome = builder.run(
                RunSpec(
                    image=reference,
                    command=env.test_command,
                    network=env.test_network,
                    memory=env.test_memory,
                    cpus=env.test_cpus,
                    timeout_s=env.test_timeout_s,
                )
            )
            tests = TestResult(image.name, outcome.status, outcome.duration_s, outcome.log_tail)
        results.append(
            TestResult(
                tests.name,
                tests.status,
                tests.duration_s,
                tests.log_tail,
                tests.reason,
                install_check=install,
                pip_check=pip_check,
            )
        )
        progress(_tested_event(results[-1]))
    return tuple(results)


def _tested_event(test: TestResult) -> ProgressEvent:
    """How an image's checks and tests ended: the first that did not pass, else ``passed``
    or why the tests did not run."""
    checks = (
        ("tests", test.status),
        ("install check", test.install_check.status),
        ("pip check", test.pip_check.status),
    )
    bad = next((f"{what} {status}" for what, status in checks if status not in OK), None)
    if bad is not None:
        return ProgressEvent(test.name, "test", "failed", test.duration_s, bad)
    if test.status == "passed":
        return ProgressEvent(test.name, "test", "done", test.duration_s, "passed")
    return ProgressEvent(test.name, "test", "skipped", None, test.reason or "")


OK = ("passed", "skipped")


def _check(
    builder: Builder, reference: str, command: tuple[str, ...], mounts: tuple[Mount, ...]
) -> CheckResult:
    outcome: RunOutcome = builder.run(
        RunSpec(image=reference, command=command, mounts=mounts, timeout_s=CHECK_TIMEOUT_S)
    )
    status: TestStatus = outcome.status if outcome.status in ("passed", "failed") else "errored"
    return CheckResult(status, outcome.log_tail)
