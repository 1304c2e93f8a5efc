"""The audit as a pull request comment and as terminal text."""

from __future__ import annotations

from dataclasses import replace

from bot.advisories.audit import Audit, EnvironmentAudit
from bot.config import LoadedConfig, RepoConfig
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.report.advisories import markdown_section, render_audit_comment, render_audit_text
from bot.report.terminal import render_summary
from bot.results import (
    Advisory,
    BlockedFix,
    CompileStageResult,
    EnvironmentAdvisories,
    IgnoredAdvisory,
    LockResult,
    RunResult,
    SignalsResult,
)

HOSTILE = Advisory(
    id="GHSA-aaaa-bbbb-cccc",
    package="hcore",
    version="1.0",
    aliases=("CVE-2099-1",),
    fixed_versions=("1.2",),
    summary="ping @octocat\n# heading [x](https://evil.example)",
    link="https://osv.dev/vulnerability/GHSA-aaaa-bbbb-cccc",
)


def test_comment_lists_advisories_ignored_ones_and_notes() -> None:
    ignored = IgnoredAdvisory(HOSTILE, "not reachable", "2999-01-01")
    audit = Audit(
        (
            EnvironmentAudit("serve", "requirements/serve.txt", (HOSTILE,), packages=3),
            EnvironmentAudit("dev", "requirements/dev.txt", (), (ignored,), packages=2),
            EnvironmentAudit("train", "conda-linux-64.lock", note="conda is skipped"),
        ),
        "PyPI (https://pypi.org)",
    )

    comment = render_audit_comment(audit)

    assert comment.startswith("### Advisories of the locked versions\n")
    assert "GHSA-aaaa-bbbb-cccc (CVE-2099-1) in hcore 1.0" in comment
    details = "([details](https://osv.dev/vulnerability/GHSA-aaaa-bbbb-cccc))"
    assert f"(fixed in 1.2) {details}" in comment
    # the service's text cannot mention anyone, start a heading or make a link
    assert "@octocat" not in comment
    assert "\n#" not in comment
    assert "](https://evil" not in comment
    assert "ignored (not reachable, until 2999-01-01)" in comment
    assert "- not audited: conda is skipped" in comment
    assert comment.rstrip().endswith("1 advisory found")
    assert audit.exit_status == 1


def test_unchecked_audit_says_so_in_every_environment() -> None:
    audit = Audit(
        (EnvironmentAudit("serve", "requirements/serve.txt"),),
        "PyPI (http://127.0.0.1:9)",
        notes=("advisories were not checked: PyPI could not be reached",),
        checked=False,
    )

    assert audit.exit_status == 2
    text = render_audit_text(audit)
    assert "not checked (see the note below)" in text
    assert "note: advisories were not checked: PyPI could not be reached" in text
    assert "not checked" in render_audit_comment(audit)


def test_the_raw_markdown_writes_our_arrow_and_escapes_the_service_text() -> None:
    moved = LockResult(
        "serve",
        "requirements/serve.in",
        "requirements/serve.txt",
        "pip-tools",
        "changed",
        diff=LockDiff((PackageChange("hcore", "1.0", "1.2", "upgraded", "minor", direct=True),)),
    )
    left = replace(HOSTILE, id="GHSA-<b>x</b>-@octocat", version="1.2", fixed_versions=("2.0",))
    signals = SignalsResult(
        advisories=(
            EnvironmentAdvisories(
                "serve",
                "requirements/serve.txt",
                fixed=(HOSTILE,),
                left=(left,),
                blocked=(BlockedFix(left, "requirements/serve.in:1", "hcore<2 `x`"),),
                ignored=(IgnoredAdvisory(HOSTILE, "see <script> #12", None),),
            ),
        )
    )
    result = RunResult(
        "acme/svc",
        LoadedConfig(RepoConfig(), source=".github/lockwarden.yml"),
        CompileMode(),
        CompileStageResult((moved,), (), ("serve",)),
        signals=signals,
    )

    body = "\n".join(markdown_section(result))

    assert "- fixes GHSA-aaaa-bbbb-cccc (CVE-2099-1) in hcore 1.0 → 1.2\n" in body
    assert "-&gt;" not in body
    # the service's and the repository's text stays inert
    assert "GHSA-&lt;b&gt;x&lt;/b&gt;-@\u2060octocat" in body
    for live in ("<b>", "<script>", "#12"):
        assert live not in body
    assert "allowed by requirements/serve.in:1: `` hcore<2 `x` ``; widen" in body
    # the terminal keeps the plain arrow
    assert "serve: fixes GHSA-aaaa-bbbb-cccc (CVE-2099-1) in hcore 1.0 -> 1.2" in (
        render_summary(result)
    )
