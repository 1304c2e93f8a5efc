"""Advisory commands end to end: ``/lockwarden ignore <advisory>`` and ``unignore`` commit the
rule to the pull request's branch and say what they recorded; ``/lockwarden audit`` answers
with the advisories of the branch's locks from the local advisory service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.jobs.branches import REFRESH_BRANCH
from bot.locks.ignore import IGNORE_FILE
from tests.commands.conftest import REPO, World
from tests.support.advisory_service import AdvisoryService
from tests.support.fake_github import FakeGitHub
from tests.support.index_server import PackageIndex

pytestmark = pytest.mark.slow

GHSA = "GHSA-b2b2-beta-0002"


def vulnerability(ident: str, fixed: str, *aliases: str) -> dict[str, Any]:
    """One vulnerability in PyPI's JSON API shape."""
    return {
        "id": ident,
        "aliases": list(aliases),
        "summary": f"beta mishandles input ({ident})",
        "details": "A crafted request crashes the parser.",
        "fixed_in": [fixed],
        "link": f"https://osv.dev/vulnerability/{ident}",
        "source": "osv",
        "withdrawn": None,
    }


@pytest.fixture
def audited(
    advisory_service: AdvisoryService, fake: FakeGitHub, index: PackageIndex, tmp_path: Path
) -> World:
    """The commands' world with the local advisory service answering: beta 2.0.0 (the pull
    request's) has an advisory; beta 1.0.0 (the default branch's) has another."""
    advisory_service.publish("beta", "2.0.0", [vulnerability(GHSA, "2.0.1", "CVE-2099-2000")])
    advisory_service.publish("beta", "1.0.0", [vulnerability("PYSEC-2099-10", "1.1.0")])
    return World(fake, index, tmp_path)


def ignore_file(world: World) -> str | None:
    try:
        return world.file(IGNORE_FILE)
    except FileNotFoundError:
        return None


def test_ignore_records_the_rule_on_the_branch_and_audit_reports_it(
    audited: World, advisory_service: AdvisoryService
) -> None:
    world = audited
    serve = world.file("requirements/serve.txt")
    number = world.pull.number

    # audit on the pull request: its branch's locks, not the default branch's
    comment = world.comment("/lockwarden audit")
    reply = world.reply_to("/lockwarden audit")
    assert f"`{REFRESH_BRANCH}` (this pull request's branch)" in reply
    assert GHSA in reply
    assert "CVE-2099-2000" in reply
    assert "2.0.0" in reply
    assert "2.0.1" in reply
    assert f"https://osv.dev/vulnerability/{GHSA}" in reply
    assert "PYSEC-2099-10" not in reply
    assert world.reactions(comment) == ["eyes", "rocket"]

    # the rule is committed to the branch, with who, where, why and until when
    comment = world.comment(f"/lockwarden ignore {GHSA.lower()} --until 2099-01-31 -- no fix yet")
    rules = world.file(IGNORE_FILE)
    line = f"{GHSA}  # until 2099-01-31, ignored by @alice in #{number}: no fix yet"
    assert line in rules.splitlines()
    reply = world.replies()[-1]
    assert f"🚀 done: `ignore {GHSA} --until 2099-01-31`." in reply
    assert f"`{GHSA}` is reported as ignored" in reply
    assert "no fix yet" in reply
    assert "It expires after 2099-01-31" in reply
    assert world.reactions(comment) == ["eyes", "rocket"]
    # an advisory rule keeps nothing out of a compile: the locks are as they were
    assert world.file("requirements/serve.txt") == serve
    assert "lockwarden-ignore" not in world.file("requirements/train.txt")

    # audit now lists it apart, as ignored, with the reason and the expiry
    world.comment("/lockwarden audit --env serve")
    reply = world.reply_to("/lockwarden audit --env serve")
    assert "ignored" in reply
    assert "no fix yet" in reply
    assert "2099-01-31" in reply
    assert "**train**" not in reply

    # unignore removes the rule again
    world.comment(f"/lockwarden unignore {GHSA}")
    assert GHSA not in (ignore_file(world) or "")
    assert "reports list it as open again" in world.replies()[-1]
    # and says so when there is nothing to remove
    comment = world.comment(f"/lockwarden unignore {GHSA}")
    assert f"`{GHSA}` has no rule in `.github/lockwarden-ignore.txt`" in world.replies()[-1]
    assert world.reactions(comment)[-1] == "confused"

    # no advisory left: audit says so
    advisory_service.publish("beta", "2.0.0", [])
    world.comment("/lockwarden audit --env train")
    assert "No published advisory affects the locked versions." in world.replies()[-1]


def test_refusals_write_nothing(audited: World) -> None:
    world = audited
    before = world.fake.branches(REPO)
    pushes = len(world.fake.pushes)

    # an expiry in the past
    comment = world.comment(f"/lockwarden ignore {GHSA} --until 2020-01-31 -- old news")
    reply = world.replies()[-1]
    assert "the expiry 2020-01-31 is in the past" in reply
    assert "--until" in reply
    assert world.reactions(comment) == ["eyes", "confused"]

    # hostile ids and reasons: refused before anything runs, quoted inertly
    hostile = [
        ("/lockwarden ignore 'GHSA-abcd-1234-wxyz;rm -rf /' -- x", "is not an advisory id"),
        ("/lockwarden ignore 'CVE-2024-1234$(id)' -- x", "is not an advisory id"),
        (
            "/lockwarden ignore 'GHSA-abcd-1234-wxyz](https://evil.example)' -- x",
            "is not an advisory id",
        ),
        ("/lockwarden ignore 'PYSEC-2024-1<img src=x>' -- x", "is not an advisory id"),
        (f"/lockwarden ignore {GHSA} -- " + "a" * 500, "the limit is 200"),
        (f"/lockwarden ignore {GHSA} -- " + "a" * 5_000, "the limit is 1,000"),
        (f"/lockwarden ignore {GHSA}", "needs a reason"),
    ]
    for attempt, fragment in hostile:
        comment = world.comment(attempt)
        # what follows the quoted command: the value comes back only inside a code span
        answer = world.replies()[-1].split("\n\n@alice ", 1)[1]
        assert fragment in answer, (attempt, answer)
        assert "not run" in answer
        assert "<img" not in answer.replace("`PYSEC-2024-1<img src=x>`", "")
        assert "](https://evil" not in answer.replace(
            "`GHSA-abcd-1234-wxyz](https://evil.example)`", ""
        )
        assert len(answer) < 1_000
        assert world.reactions(comment) == ["confused"]

    # the same permission rule as every command
    world.comment(f"/lockwarden ignore {GHSA} -- x", user="bob")
    assert "write, maintain or admin permission" in world.replies()[-1]

    assert world.fake.branches(REPO) == before
    assert len(world.fake.pushes) == pushes
    assert ignore_file(world) is None


def test_audit_on_an_issue_reads_the_default_branch_and_a_down_service_is_a_note(
    fake: FakeGitHub, index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on the discard port: the service cannot be reached.
    monkeypatch.setenv("LOCKWARDEN_ADVISORY_SERVICE", "pypi")
    monkeypatch.setenv("LOCKWARDEN_ADVISORY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LOCKWARDEN_ADVISORY_CACHE_DIR", str(tmp_path / "advisory-cache"))
    world = World(fake, index, tmp_path)
    issue = fake.create_issue(REPO, "are we affected?")
    comment = world.comment("/lockwarden audit", number=issue.number)
    reply = world.replies(issue.number)[-1]
    assert "the default branch `main`" in reply
    assert "not checked" in reply
    assert "127.0.0.1:9" in reply
    assert world.reactions(comment) == ["eyes", "rocket"]
