"""Queueing security jobs, in memory and in the durable queue: one waits per repository,
later requests join it, and the same request twice adds nothing."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import InMemoryQueue, JobId, JobQueue
from bot.jobs.security import enqueue_security
from tests.support.postgres import PostgresCluster


def enqueue_four(queue: JobQueue) -> list[str | None]:
    """A refresh's request, the watch's (joins it), the refresh's again, another repo's."""
    first = enqueue_security(queue, "acme/one", 7, delivery_id="d1", reason="a refresh")
    joined = enqueue_security(
        queue, "acme/one", 7, delivery_id="w1", reason="a release", packages=["wirelib"]
    )
    repeat = enqueue_security(queue, "acme/one", 7, delivery_id="d1", reason="a refresh")
    other = enqueue_security(queue, "acme/two", 7, delivery_id="d1", reason="a refresh")
    assert isinstance(joined, JobId)
    assert joined.joined
    assert joined == first
    assert repeat is None
    assert other is not None
    assert other != first
    return [first, joined, repeat, other]


def test_in_memory_a_waiting_security_job_is_joined_until_it_starts() -> None:
    queue = InMemoryQueue()

    enqueue_four(queue)

    assert [(q.request.kind, q.request.repo) for q in queue.jobs] == [
        ("security", "acme/one"),
        ("security", "acme/two"),
    ]
    first = queue.pop()
    assert first is not None
    later = enqueue_security(queue, "acme/one", 7, delivery_id="d2", reason="a refresh")
    assert later is not None
    assert not getattr(later, "joined", False)
    assert later != first.id


@pytest.fixture
def durable(postgres_cluster: PostgresCluster) -> Iterator[tuple[ProcrastinateQueue, str]]:
    url = postgres_cluster.create_database("security_queue_test")
    with ProcrastinateQueue(url, timeout_s=2, retry_exponential_wait=0) as migrated:
        migrated.migrate()
        yield migrated, url


@pytest.mark.slow
def test_in_postgresql_a_security_job_carries_its_own_queueing_lock(
    durable: tuple[ProcrastinateQueue, str],
) -> None:
    queue, url = durable

    enqueue_four(queue)

    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "SELECT lock, queueing_lock, args->>'kind' FROM procrastinate_jobs "
            "WHERE queue_name = 'lockwarden' ORDER BY id"
        ).fetchall()
    assert stored == [
        ("acme/one", "security:acme/one", "security"),
        ("acme/two", "security:acme/two", "security"),
    ]
