"""The command handlers' refusals and edge cases, on one world (each step's reply checked,
and nothing pushed where nothing may change)."""

from __future__ import annotations

import pytest

from bot.jobs.branches import REFRESH_BRANCH
from bot.jobs.queue import JobRequest
from tests.commands.conftest import REPO, World

pytestmark = pytest.mark.slow


def test_replies_for_commands_that_cannot_run(world: World) -> None:
    fake = world.fake
    before = fake.branches(REPO)
    pushes = len(fake.pushes)

    def reply(command: str, **kwargs: object) -> str:
        world.comment(command, **kwargs)  # type: ignore[arg-type]
        return world.reply_to(command.splitlines()[0])

    assert "`beta` has no pin written by Lockwarden" in reply("/lockwarden unpin beta")
    assert "has no rule in `.github/lockwarden-ignore.txt`" in reply("/lockwarden unignore beta")
    assert "needs package names" in reply("/lockwarden rollback --env serve")
    assert "`delta` is in none of" in reply("/lockwarden explain delta")
    assert "`delta` is in none of" in reply("/lockwarden pin delta")
    assert "unknown environment `nope`" in reply("/lockwarden refresh --env nope")
    assert "`delta` is not changed by this pull request" in reply("/lockwarden rollback delta")

    # the first command fails: the next one is not run, and says so
    world.comment("/lockwarden unpin beta\n/lockwarden help")
    assert "not run: an earlier command in this comment failed" in world.reply_to(
        "/lockwarden help"
    )
    # one invalid line: none run
    world.comment("/lockwarden help\n/lockwarden pin")
    assert "another command in this comment is invalid" in world.reply_to("/lockwarden help")

    # the App's slug works as a prefix; the bot's own comments are ignored
    world.comment(f"@{fake.app_slug} help")
    assert "/lockwarden pin" in world.reply_to(f"@{fake.app_slug} help")
    job = JobRequest(
        "command",
        REPO,
        world.installation.id,
        "by-bot",
        {
            "comment_id": 1,
            "issue_number": world.pull.number,
            "body": "/lockwarden rollback",
            "author": fake.bot_login,
            "author_type": "Bot",
        },
    )
    assert world.bot.runner.run(job).action == "skipped"
    no_command = JobRequest(
        "command",
        REPO,
        world.installation.id,
        "prose",
        {"comment_id": 1, "issue_number": world.pull.number, "body": "LGTM", "author": "alice"},
    )
    assert world.bot.runner.run(no_command).action == "skipped"

    assert fake.branches(REPO) == before
    assert len(fake.pushes) == pushes


def test_commands_on_other_pull_requests_and_on_a_branch_a_person_took_over(
    world: World,
) -> None:
    fake = world.fake
    fake.create_branch(REPO, "feature")
    fake.push_files(REPO, {"app.py": "print(1)\n"}, branch="feature")
    human = fake.open_pull(REPO, head="feature", title="A feature")
    world.comment("/lockwarden pin beta==1.1.0", number=human.number)
    assert "is not Lockwarden's" in world.replies(human.number)[-1]

    # pin a bare name: the version the pull request locks now
    world.comment("/lockwarden pin beta --env serve")
    assert "beta==2.0.0  # pinned by @alice" in world.file("requirements/serve.in")

    # a person pushes to the bot branch: commands stop rewriting it
    fake.push_files(REPO, {"notes.txt": "mine\n"}, branch=REFRESH_BRANCH)
    head = fake.branches(REPO)[REFRESH_BRANCH]
    world.comment("/lockwarden unpin beta")
    assert "no longer rewrites it" in world.reply_to("/lockwarden unpin beta")
    assert fake.branches(REPO)[REFRESH_BRANCH] == head

    # closed: refused
    fake.close_pull(REPO, world.pull.number)
    world.comment("/lockwarden rebase")
    assert "this pull request is closed" in world.reply_to("/lockwarden rebase")


def test_edits_that_conflict_with_the_default_branch(world: World) -> None:
    fake = world.fake
    world.comment("/lockwarden pin beta==1.1.0")
    # a person changes the same spec line on the default branch
    fake.push_files(REPO, {"requirements/serve.in": f"--index-url {world.index.url}\nbeta<3\n"})
    head = fake.branches(REPO)[REFRESH_BRANCH]
    world.comment("/lockwarden rebase")
    reply = world.reply_to("/lockwarden rebase")
    assert "conflict with the default branch" in reply
    assert fake.branches(REPO)[REFRESH_BRANCH] == head

    # a refresh (a push) keeps the person's change, drops the edit and says so
    world.bot.run_all(world.bot.deliver("push", fake.payload("push", repo=REPO)))
    assert "pinned by" not in world.file("requirements/serve.in")
    assert "beta<3" in world.file("requirements/serve.in")
    body = fake.pull(REPO, world.pull.number).body or ""
    assert "were dropped" in body


def test_a_pin_in_one_environment_leaves_the_others_as_the_pull_request_has_them(
    world: World,
) -> None:
    serve = world.file("requirements/serve.txt")
    world.comment("/lockwarden pin gamma==1.0.0 --env train")
    assert "gamma==1.0.0  # pinned by @alice" in world.file("requirements/train.in")
    assert "gamma==1.0.0" in world.file("requirements/train.txt")
    assert "beta==2.0.0" in world.file("requirements/train.txt")
    assert world.file("requirements/serve.txt") == serve
    reply = world.reply_to("/lockwarden pin gamma==1.0.0 --env train")
    assert "| `train` | `gamma` | 1.1.0 | 1.0.0 |" in reply
    assert "`serve`" not in reply.split("| environment |")[-1]
