"""``check_suite.rerequested`` ("Re-run all checks") through the whole receiver: a payload the
fake GitHub builds from a real check run, GitHub's published examples, and both re-run kinds
merged into a refresh already waiting in the durable queue."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import psycopg
import pytest

from bot.github.client import AppCredentials, GitHubApp, TokenScope
from bot.github.ensure import ensure_check_run
from bot.github.scopes import PUBLISH_PULL_REQUEST
from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import InMemoryQueue
from bot.server import messages
from tests.server import REALDATA, client, make_app, post
from tests.support.fake_github import FakeGitHub
from tests.support.postgres import PostgresCluster

REPO = "acme/models"
BRANCH = "lockwarden/refresh"
EXAMPLES = REALDATA / "webhooks" / "check_suite"
_databases = itertools.count(1)


def lockwarden_check_run(fake: FakeGitHub) -> str:
    """A repository whose bot branch has a failed ``lockwarden`` check run, made the way the
    refresh makes it; the branch's head."""
    installation = fake.create_installation("acme")
    fake.create_repo(REPO, files={"requirements.txt": "numpy==1.26.4\n"}, installation=installation)
    head = fake.push_files(REPO, {"requirements.txt": "numpy==2.0.0\n"}, branch=BRANCH)
    app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    with app.installation_client(TokenScope(installation.id, REPO, PUBLISH_PULL_REQUEST)) as gh:
        ensure_check_run(
            gh, REPO, head_sha=head, name="lockwarden", title="t", summary="s", conclusion="failure"
        )
    return head


def test_re_running_all_checks_queues_a_refresh_of_the_branch(fake: FakeGitHub) -> None:
    head = lockwarden_check_run(fake)
    payload = fake.payload("check_suite", "rerequested", repo=REPO, head_sha=head)
    queue = InMemoryQueue()

    answer = post(client(make_app(queue, app_slug=fake.app_slug)), "check_suite", payload)

    assert answer.status_code == 202
    [job] = queue.jobs
    assert answer.json() == {"status": "queued", "jobs": [job.id]}
    request = job.request
    assert (request.kind, request.repo, request.installation_id) == (
        "refresh",
        REPO,
        payload["installation"]["id"],
    )
    assert request.payload == {
        "mode": "minimal",
        "packages": [],
        "environments": [],
        "branch": BRANCH,
        "sha": head,
        "check_run_id": None,
        "trigger": "check_suite.rerequested",
        "yanked": [],
    }


def test_a_suite_whose_branch_moved_on_is_ignored(fake: FakeGitHub) -> None:
    head = lockwarden_check_run(fake)
    fake.push_files(REPO, {"requirements.txt": "numpy==2.0.1\n"}, branch=BRANCH)
    payload = fake.payload("check_suite", "rerequested", repo=REPO, head_sha=head)
    queue = InMemoryQueue()

    answer = post(client(make_app(queue, app_slug=fake.app_slug)), "check_suite", payload)

    assert answer.json() == {"status": "ignored", "reason": messages.CHECK_SUITE_NO_BRANCH}
    assert not queue.jobs


def _example(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "rerequested.payload.json",
            messages.CHECK_SUITE_OTHER_BRANCH.format(branch="changes"),
        ),
        (
            "rerequested.with-organization.payload.json",
            messages.CHECK_SUITE_OTHER_BRANCH.format(branch="changes"),
        ),
        ("requested.payload.json", messages.CHECK_SUITE_REQUESTED),
        ("completed.payload.json", "action 'completed' of event 'check_suite' is not handled"),
    ],
)
def test_githubs_examples_are_answered_with_a_reason(name: str, reason: str) -> None:
    queue = InMemoryQueue()

    answer = post(client(make_app(queue)), "check_suite", _example(name))

    assert answer.status_code == 202
    assert answer.json() == {"status": "ignored", "reason": reason}
    assert not queue.jobs


def test_githubs_example_on_a_lockwarden_branch_is_queued() -> None:
    # GitHub's example suite has an app without a slug: the branch alone decides.
    payload = copy.deepcopy(_example("rerequested.payload.json"))
    payload["check_suite"]["head_branch"] = BRANCH
    queue = InMemoryQueue()

    answer = post(client(make_app(queue)), "check_suite", payload)

    assert answer.json()["status"] == "queued"
    [job] = queue.jobs
    assert (job.request.repo, job.request.installation_id) == ("Codertocat/Hello-World", 957387)
    assert job.request.payload["sha"] == payload["check_suite"]["head_sha"]


# -- both re-run kinds merge into a waiting refresh ------------------------------------------


@pytest.mark.slow
def test_re_runs_merge_into_the_refresh_already_waiting(
    fake: FakeGitHub, postgres_cluster: PostgresCluster
) -> None:
    head = lockwarden_check_run(fake)
    [run] = fake.check_runs(REPO, name="lockwarden")
    url = postgres_cluster.create_database(f"check_suite_test_{next(_databases)}")
    push = fake.payload("push", None, repo=REPO)
    suite = fake.payload("check_suite", "rerequested", repo=REPO, head_sha=head)
    rerun = fake.payload("check_run", "rerequested", repo=REPO, check_run_id=run.id)

    with ProcrastinateQueue(url, timeout_s=2) as queue:
        queue.migrate()
        receiver = client(make_app(queue, app_slug=fake.app_slug))
        answers = [
            post(receiver, event, payload).json()
            for event, payload in (("push", push), ("check_suite", suite), ("check_run", rerun))
        ]

    # The re-runs joined the waiting refresh: answered "coalesced", with its id.
    assert [a["status"] for a in answers] == ["queued", "coalesced", "coalesced"]
    waiting = answers[0]["jobs"]
    assert [a["jobs"] for a in answers] == [waiting] * 3
    with psycopg.connect(url) as conn:
        jobs = conn.execute(
            "SELECT id, status::text, queueing_lock FROM procrastinate_jobs "
            "WHERE queue_name = 'lockwarden'"
        ).fetchall()
        recorded = conn.execute("SELECT DISTINCT job_id FROM lockwarden_deliveries").fetchall()
    assert jobs == [(int(waiting[0]), "todo", f"refresh:{REPO}")]
    assert recorded == [(int(waiting[0]),)]
