"""The audit as a pull request comment and as terminal text."""

from __future__ import annotations

from bot.advisories.audit import Audit, EnvironmentAudit
from bot.report.advisories import render_audit_comment, render_audit_text
from bot.results import Advisory, IgnoredAdvisory

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
