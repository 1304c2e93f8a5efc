"""hadolint's generic rules next to Lockwarden's: run for real, and its failures as values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import shell
from bot.errors import CommandTimeoutError
from bot.images.dockerfile import hadolint as hadolint_module
from bot.images.dockerfile.checks import check_dockerfile
from bot.shell import CommandResult
from tests.images.dockerfile.test_checks import EXAMPLE, check, located

# --------------------------------------------------------------------------- hadolint


def test_hadolint_really_runs(tmp_path: Path) -> None:
    findings = check(
        tmp_path,
        """\
        FROM python:latest
        MAINTAINER someone@example.com
        RUN apt-get install -y curl
        """,
        hadolint=True,
    )
    hadolint = {(f.rule, f.line) for f in findings if f.source == "hadolint"}
    assert {("DL3007", 1), ("DL4000", 2)} <= hadolint
    # hadolint's pin rule duplicates LW005: reported once, by Lockwarden
    assert ("LW005", 3) in located(findings)
    assert not any(f.rule == "DL3008" for f in findings)
    dl3007 = next(f for f in findings if f.rule == "DL3007")
    assert (dl3007.file, dl3007.severity) == ("envs/serve/Dockerfile", "warning")


def test_hadolint_ignores_configuration_lying_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3007]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    findings = check(tmp_path, "FROM python:latest\n", hadolint=True)
    assert [f.rule for f in findings] == ["DL3007"]


def test_hadolint_heredoc_limitation_is_not_an_error(tmp_path: Path) -> None:
    findings = check(
        tmp_path,
        """\
        FROM python:3.11-slim
        RUN <<EOF
        apt-get install -y curl
        EOF
        USER 10001
        """,
        hadolint=True,
    )
    assert located(findings) == [("LW005", 2), ("LW000", 5)]
    assert findings[1].severity == "info"
    assert "heredoc" in findings[1].message


@pytest.mark.parametrize("env", ["serve", "train", "dev"])
def test_example_dockerfiles_follow_every_practice(env: str) -> None:
    findings = check_dockerfile(
        EXAMPLE / f"Dockerfile.{env}",
        display_path=f"Dockerfile.{env}",
        lock_path=f"requirements/{env}.txt",
        lock_has_hashes=True,
        run_hadolint=False,
    )
    assert findings == ()


@pytest.mark.parametrize("env", ["serve", "train", "dev"])
def test_example_dockerfiles_are_clean_for_hadolint_too(env: str) -> None:
    findings = check_dockerfile(
        EXAMPLE / f"Dockerfile.{env}",
        display_path=f"Dockerfile.{env}",
        lock_path=f"requirements/{env}.txt",
        lock_has_hashes=True,
    )
    assert findings == ()


def test_hadolint_missing_is_an_info_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hadolint_module, "find_hadolint", lambda: None)
    findings = check(tmp_path, "FROM python:3.11-slim\nRUN apk add tini\n", hadolint=True)
    assert located(findings) == [("LW000", 1), ("LW005", 2)]
    assert findings[0].severity == "info"
    assert "not installed" in findings[0].message


def fake_hadolint(monkeypatch: pytest.MonkeyPatch, stdout: str, returncode: int = 0) -> None:
    def run(argv: list[str], **_: object) -> CommandResult:
        return CommandResult(tuple(argv), returncode, stdout, "", 0.1)

    monkeypatch.setattr(hadolint_module, "find_hadolint", lambda: "/usr/bin/hadolint")
    monkeypatch.setattr(shell, "run", run)


def test_hadolint_parse_error_maps_to_lw100(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = {"code": "DL1000", "level": "error", "line": 2, "message": "unexpected 'x'\nmore"}
    fake_hadolint(monkeypatch, json.dumps([error]))
    (finding,) = check(tmp_path, "FROM python:3.11-slim\nUSER 10001\n", hadolint=True)
    assert (finding.rule, finding.severity, finding.line, finding.source) == (
        "LW100",
        "error",
        2,
        "hadolint",
    )
    assert finding.message == "hadolint cannot parse line 2: unexpected 'x'"


def test_hadolint_failure_is_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hadolint(monkeypatch, "segmentation fault", returncode=139)
    (finding,) = check(tmp_path, "FROM python:3.11-slim\n", hadolint=True)
    assert (finding.rule, finding.severity) == ("LW000", "info")
    assert "segmentation fault" in finding.message


def test_hadolint_timeout_is_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(argv: list[str], **_: object) -> CommandResult:
        raise CommandTimeoutError("'hadolint ...' did not finish within 60 s", detail="partial")

    monkeypatch.setattr(hadolint_module, "find_hadolint", lambda: "/usr/bin/hadolint")
    monkeypatch.setattr(shell, "run", run)
    (finding,) = check(tmp_path, "FROM python:3.11-slim\n", hadolint=True)
    assert (finding.rule, finding.severity) == ("LW000", "info")
    assert finding.message.endswith("did not finish within 60 s")
