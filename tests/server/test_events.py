"""The payload models against GitHub's real payloads, and the 400 that names a missing field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.queue import InMemoryQueue
from bot.server.events import (
    MODELS,
    CheckRunEvent,
    InstallationEvent,
    IssueCommentEvent,
    PayloadError,
    PushCommit,
    PushEvent,
    parse,
)
from tests.server import REALDATA, client, headers, make_app, post

REAL_PAYLOADS = sorted(REALDATA.glob("webhooks*/**/*.json")) if REALDATA.is_dir() else []


def _event_of(path: Path) -> str:
    """The folder names the event: ``webhooks/push/x.json``, ``webhooks-extra/issue_comment/``."""
    return path.parent.name


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


def _real(relative: str) -> dict[str, Any]:
    path = REALDATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return _load(path)


needs_realdata = pytest.mark.skipif(not REAL_PAYLOADS, reason=f"no payloads under {REALDATA}")


@needs_realdata
def test_the_real_payloads_are_all_there() -> None:
    events = {_event_of(path) for path in REAL_PAYLOADS}
    assert set(MODELS) <= events
    assert len(REAL_PAYLOADS) >= 50


@needs_realdata
def test_every_real_payload_is_signed_posted_and_answered_2xx() -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue))
    answers: dict[str, Any] = {}
    for path in REAL_PAYLOADS:
        response = test_client.post(
            "/webhook",
            content=path.read_bytes(),
            headers=headers(_event_of(path), path.read_bytes()),
        )
        assert 200 <= response.status_code < 300, (path, response.json())
        answers[str(path.relative_to(REALDATA))] = response.json()
    # The known outcomes: the examples that ask for work, and a few that must not.
    assert answers["webhooks/installation/created.payload.json"]["status"] == "queued"
    assert answers["webhooks/installation_repositories/added.payload.json"]["status"] == "queued"
    assert answers["webhooks/push/with-new-branch.payload.json"]["reason"] == (
        "no spec, lock, Dockerfile or Lockwarden config file changed"
    )
    assert answers["webhooks/push/payload.json"] == {"status": "ignored", "reason": "a tag push"}
    assert answers["webhooks/ping/payload.json"] == {"status": "pong"}
    kinds = sorted((job.request.kind, job.request.repo) for job in queue.jobs)
    assert kinds == [
        ("forget", "octocat/Hello-World"),  # installation.deleted
        ("forget", "octocat/Hello-World"),  # installation_repositories.removed
        ("onboard", "Codertocat/Hello-World"),  # installation.created
        ("onboard", "Codertocat/Hello-World"),  # installation.created (with requester)
        ("onboard", "Codertocat/Space"),  # installation_repositories.added
    ]


@needs_realdata
@pytest.mark.parametrize(
    "path",
    [p for p in REAL_PAYLOADS if _event_of(p) in MODELS],
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}",
)
def test_every_real_payload_parses_into_its_model(path: Path) -> None:
    model = MODELS[_event_of(path)]
    parsed = parse(model, _load(path))
    assert isinstance(parsed, model)


def test_real_payload_shapes_the_handlers_depend_on() -> None:
    # An older installation without app_slug (githubkit's full models reject it).
    created = parse(InstallationEvent, _real("webhooks/installation/created.payload.json"))
    assert created.installation.app_slug is None
    assert [r.full_name for r in created.repositories or []] == ["Codertocat/Hello-World"]
    # A pull request comment: the issue carries a pull_request object.
    comment = parse(
        IssueCommentEvent,
        _real(
            "webhooks-extra/issue_comment/"
            "openshift-pipelines__pipelines-as-code__test__fixtures__issue_comment-retest.json"
        ),
    )
    assert comment.issue.is_pull_request
    # Repository timestamps are numbers in push payloads; they are simply not read.
    push = parse(PushEvent, _real("webhooks/push/with-new-branch.payload.json"))
    assert push.repository.default_branch == "master"
    assert push.commits is not None
    assert push.commits[0].paths() == {"README.md"}
    rerun = parse(CheckRunEvent, _real("webhooks/check_run/rerequested.payload.json"))
    assert rerun.check_run.check_suite is not None
    assert rerun.check_run.check_suite.head_branch == "master"


# -- a payload missing what a handler needs --------------------------------------------------

PUSH = {
    "ref": "refs/heads/main",
    "after": "b" * 40,
    "commits": [{"id": "b" * 40, "added": ["requirements.txt"], "modified": [], "removed": []}],
    "repository": {"full_name": "acme/ml", "default_branch": "main"},
    "installation": {"id": 1},
    "sender": {"login": "alice", "type": "User"},
}
COMMENT = {
    "action": "created",
    "issue": {"number": 3},
    "comment": {"id": 9, "body": "/lockwarden help", "user": {"login": "alice", "type": "User"}},
    "repository": {"full_name": "acme/ml", "default_branch": "main"},
    "installation": {"id": 1},
}
ADDED = {
    "action": "added",
    "installation": {"id": 1},
    "repositories_added": [{"full_name": "acme/ml"}, {"full_name": "acme/web"}],
}
CLOSED = {
    "action": "closed",
    "pull_request": {
        "number": 5,
        "merged": True,
        "head": {"ref": "lockwarden/refresh", "repo": {"full_name": "acme/ml"}},
        "base": {"ref": "main", "repo": {"full_name": "acme/ml"}},
    },
    "repository": {"full_name": "acme/ml"},
    "installation": {"id": 1},
}
RERUN = {
    "action": "rerequested",
    "check_run": {"id": 4, "name": "lockwarden", "check_suite": {"head_branch": "main"}},
    "repository": {"full_name": "acme/ml"},
    "installation": {"id": 1},
}

SUITE_RERUN = {
    "action": "rerequested",
    "check_suite": {"id": 5, "head_branch": "lockwarden/refresh", "head_sha": "c" * 40},
    "repository": {"full_name": "acme/ml"},
    "installation": {"id": 1},
}


def _without(payload: dict[str, Any], dotted: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(payload)
    node: Any = trimmed
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[last]
    return trimmed


def _with(payload: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    node: Any = changed
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("push", _without(PUSH, "repository.full_name"), "repository.full_name"),
        ("push", _without(PUSH, "repository.default_branch"), "repository.default_branch"),
        ("push", _without(PUSH, "repository"), "repository"),
        ("push", _without(PUSH, "ref"), "ref"),
        ("push", _with(PUSH, "commits", "many"), "commits"),
        ("push", _with(PUSH, "repository.full_name", "no-slash"), "repository.full_name"),
        ("issue_comment", _without(COMMENT, "comment.user"), "comment.user"),
        ("issue_comment", _without(COMMENT, "issue.number"), "issue.number"),
        ("issue_comment", _with(COMMENT, "comment.id", "nine"), "comment.id"),
        (
            "installation_repositories",
            _without(ADDED, "repositories_added.1.full_name"),
            "repositories_added[1].full_name",
        ),
        ("installation_repositories", _without(ADDED, "installation"), "installation"),
        (
            "installation",
            _with(ADDED, "action", "created") | {"installation": {}},
            "installation.id",
        ),
        ("pull_request", _without(CLOSED, "pull_request.head.ref"), "pull_request.head.ref"),
        ("check_run", _without(RERUN, "check_run.name"), "check_run.name"),
        ("check_suite", _without(SUITE_RERUN, "check_suite"), "check_suite"),
        ("check_suite", _with(SUITE_RERUN, "check_suite.app", "ci"), "check_suite.app"),
    ],
)
def test_a_missing_or_invalid_field_is_a_400_naming_it(
    event: str, payload: dict[str, Any], field: str
) -> None:
    queue = InMemoryQueue()
    response = post(client(make_app(queue)), event, payload)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid"
    assert answer["field"] == field
    assert answer["detail"].startswith(f"{field}: ")
    assert not queue.jobs


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("push", PUSH),
        ("issue_comment", COMMENT),
        ("installation_repositories", ADDED),
        ("check_suite", SUITE_RERUN),
    ],
)
def test_the_complete_minimal_payloads_are_queued(event: str, payload: dict[str, Any]) -> None:
    assert post(client(make_app()), event, payload).json()["status"] == "queued"


def test_payload_error_carries_the_field() -> None:
    with pytest.raises(PayloadError) as caught:
        parse(PushEvent, {"ref": "refs/heads/main"})
    assert caught.value.field == "repository"
    assert caught.value.code == "webhook-payload"
    assert str(caught.value) == "repository: Field required"


@pytest.mark.parametrize(
    ("commit", "paths"),
    [
        ({"added": ["a"], "modified": ["b"], "removed": ["c"]}, {"a", "b", "c"}),
        ({"added": ["a"]}, {"a"}),
        ({"id": "x"}, None),
        ({}, None),
    ],
)
def test_commit_paths(commit: dict[str, Any], paths: set[str] | None) -> None:
    assert PushCommit.model_validate(commit).paths() == paths
