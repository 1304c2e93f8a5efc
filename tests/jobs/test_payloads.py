"""Job payloads: the JSON the queue stored becomes one typed value per kind, or an error
that names the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.jobs.payloads import (
    CleanupPayload,
    CommandPayload,
    JobPayload,
    JobPayloadError,
    RefreshPayload,
    RepositoryPayload,
)
from bot.jobs.queue import InMemoryQueue, JobKind, JobRequest


def request(kind: JobKind, payload: dict[str, Any]) -> JobRequest:
    return JobRequest(kind, "acme/app", 7, "delivery-1", payload)


def stored(kind: JobKind, payload: dict[str, Any]) -> JobRequest:
    """The request as a worker takes it off a queue: through JSON, as PostgreSQL keeps it."""
    queue = InMemoryQueue()
    queue.enqueue(request(kind, payload))
    job = queue.pop()
    assert job is not None
    return job.request


def test_a_refresh_payload_as_the_webhook_stores_it() -> None:
    job = stored(
        "refresh",
        {"mode": "minimal", "branch": "main", "sha": "a" * 40, "check_run_id": 3, "trigger": "x"},
    )

    assert RefreshPayload.of(job) == RefreshPayload(
        mode="minimal", branch="main", sha="a" * 40, check_run_id=3
    )


def test_a_refresh_payload_as_the_cli_stores_it() -> None:
    job = stored(
        "refresh",
        {"mode": "targeted", "packages": ["numpy==2.0.0"], "environments": ["gpu"]},
    )

    assert RefreshPayload.of(job) == RefreshPayload("targeted", ("numpy==2.0.0",), ("gpu",))


def test_a_refresh_without_a_mode_is_minimal() -> None:
    assert RefreshPayload.of(stored("refresh", {"trigger": "push"})) == RefreshPayload()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"mode": "sideways"}, "'mode'"),
        ({"mode": 3}, "'mode'"),
        ({"packages": "numpy"}, "'packages'"),
        ({"environments": ["gpu", 1]}, "'environments'"),
    ],
)
def test_a_bad_refresh_field_is_named(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(JobPayloadError) as raised:
        RefreshPayload.of(stored("refresh", payload))

    message = raised.value.user_message
    assert field in message
    assert "refresh job for acme/app (delivery delivery-1)" in message
    assert "queue it again" in message


def test_a_cleanup_payload_of_a_merged_pull_request() -> None:
    job = stored(
        "cleanup",
        {
            "branch": "lockwarden/refresh",
            "number": 12,
            "merged": True,
            "head_sha": "b" * 40,
            "base": "main",
            "merge_commit_sha": "c" * 40,
        },
    )

    assert CleanupPayload.of(job) == CleanupPayload(
        branch="lockwarden/refresh",
        number=12,
        merged=True,
        head_sha="b" * 40,
        merge_commit_sha="c" * 40,
        base="main",
    )


def test_a_closed_pull_request_has_no_merge_commit() -> None:
    job = stored("cleanup", {"branch": "lockwarden/refresh", "number": 3, "merged": False})

    assert CleanupPayload.of(job).merge_commit_sha is None


def test_a_flag_is_not_a_number() -> None:
    with pytest.raises(JobPayloadError, match="'number' is not a int: True"):
        CleanupPayload.of(stored("cleanup", {"number": True}))


def test_a_command_payload_as_the_webhook_stores_it() -> None:
    payload = {
        "comment_id": 99,
        "body": "@lockwarden pin numpy==2.0.0",
        "author": "alice",
        "author_type": "User",
        "author_association": "MEMBER",
        "issue_number": 5,
        "is_pull_request": True,
        "command_key": "k" * 64,
        "trigger": "issue_comment.created",
    }

    parsed = CommandPayload.of(stored("command", payload))

    assert parsed == CommandPayload(
        comment_id=99,
        issue_number=5,
        body="@lockwarden pin numpy==2.0.0",
        author="alice",
        author_type="User",
        is_pull_request=True,
        author_association="MEMBER",
        command_key="k" * 64,
    )


def test_a_command_without_its_comment_is_refused() -> None:
    with pytest.raises(JobPayloadError, match="'comment_id' is missing"):
        CommandPayload.of(stored("command", {"issue_number": 5}))


def test_parsing_leaves_the_stored_form_as_it_was() -> None:
    payload = {"mode": "full", "trigger": "schedule"}
    job = stored("refresh", payload)

    RefreshPayload.of(job)

    assert json.loads(json.dumps(dict(job.payload))) == payload


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("refresh", RefreshPayload("targeted", ("numpy==2.0.0",), ("gpu",), "main", "a" * 40, 3)),
        ("refresh", RefreshPayload(mode="full")),
        ("cleanup", CleanupPayload("lockwarden/refresh", 4, True, "b" * 40, "c" * 40, "main")),
        ("cleanup", CleanupPayload("lockwarden/rollback", 5)),
        ("command", CommandPayload(1, 2, "/lockwarden help", "bob", "User", True, "OWNER", "k")),
        ("onboard", RepositoryPayload()),
        ("forget", RepositoryPayload()),
    ],
)
def test_what_a_producer_stores_reads_back_the_same(kind: JobKind, payload: JobPayload) -> None:
    job = stored(kind, {**payload.to_json(), "trigger": "test"})

    assert type(payload).of(job) == payload
