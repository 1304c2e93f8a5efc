"""What a builder process may see, how a command's exit is read, CPU quotas, output tails."""

from __future__ import annotations

import pytest

from bot.images.containers import builder_environment, classify_exit, cpu_quota, tail_lines

SECRETS = (
    "LOCKWARDEN_WEBHOOK_SECRET",
    "LOCKWARDEN_APP_PRIVATE_KEY",
    "LOCKWARDEN_CACHE_DIR",
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GH_TOKEN",
    "NPM_TOKEN",
    "HF_TOKEN",
    "github_token",
    "WEBHOOK_SECRET",
    "CLIENT_SECRET",
    "DB_PASSWORD",
    "PGPASSWORD",
    "SSH_PRIVATE_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DATABASE_URL",
)
KEPT = (
    "PATH",
    "HOME",
    "LANG",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "CONTAINERS_STORAGE_CONF",
    "BUILDAH_ISOLATION",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
)


def test_builder_environment_strips_credentials() -> None:
    env = {name: f"value-of-{name}" for name in (*SECRETS, *KEPT)}

    cleaned = builder_environment(env)

    assert cleaned == {name: f"value-of-{name}" for name in KEPT}


@pytest.mark.parametrize("name", SECRETS)
def test_each_credential_is_stripped(name: str) -> None:
    assert builder_environment({name: "x", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_builder_environment_is_a_copy() -> None:
    env = {"PATH": "/bin", "HOME": "/root"}
    cleaned = builder_environment(env)
    cleaned["PATH"] = "/changed"
    assert env["PATH"] == "/bin"
    assert builder_environment({}) == {}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, "passed"),
        (1, "failed"),
        (2, "errored"),  # pytest: interrupted
        (3, "errored"),  # pytest: internal error
        (4, "errored"),  # pytest: usage error
        (5, "errored"),  # pytest: no tests collected
        (126, "errored"),  # not executable
        (127, "errored"),  # command not found
        (137, "errored"),  # SIGKILL: out of memory
        (-9, "errored"),
    ],
)
def test_classify_exit(code: int, status: str) -> None:
    assert classify_exit(code) == status


@pytest.mark.parametrize(
    ("cpus", "period", "quota"),
    [
        (1.0, 100_000, 100_000),
        (0.5, 100_000, 50_000),
        (2.5, 100_000, 250_000),
        (64, 100_000, 6_400_000),
        (0.001, 100_000, 1000),  # never below the kernel's minimum
        (0.0, 100_000, 1000),
        (1.0, 50_000, 50_000),
    ],
)
def test_cpu_quota(cpus: float, period: int, quota: int) -> None:
    assert cpu_quota(cpus, period) == quota


def test_cpu_quota_default_period() -> None:
    assert cpu_quota(1.5) == 150_000


@pytest.mark.parametrize(
    ("text", "lines", "tail"),
    [
        ("a\nb\nc\n", 2, "b\nc"),
        ("a\nb\nc", 5, "a\nb\nc"),
        ("a\nb\nc\n\n\n", 1, "c"),  # trailing blank lines are not lines of output
        ("only\n", 1, "only"),
        ("", 10, ""),
        ("\n\n", 3, ""),
        ("a\r\nb\r\n", 1, "b"),
        ("  indented\n    kept\n", 2, "  indented\n    kept"),
    ],
)
def test_tail_lines(text: str, lines: int, tail: str) -> None:
    assert tail_lines(text, lines) == tail


def test_tail_lines_of_long_output() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    tail = tail_lines(text, 200)
    assert tail.splitlines() == [f"line {i}" for i in range(800, 1000)]
