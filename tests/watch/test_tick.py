"""The release watch's pass on a real PostgreSQL and a local index: who gets a refresh for a
new release or a yank, coalescing, conditional requests, the pace, and forgetting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.jobs.payloads import RefreshPayload, Yank
from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.sandbox.egress import EgressPolicy
from bot.schedules import Pace
from bot.watch.store import WATCH_TABLES, WatchBook
from bot.watch.tick import ReleaseWatch
from tests.watch.conftest import LOCAL, World, rows

pytestmark = pytest.mark.slow


def test_a_new_release_refreshes_only_the_repositories_watching_it(world: World) -> None:
    pins = {"beta": "1.0.0", "gamma": "1.0.0"}
    world.record("acme/watcher", pins, "[beta]")
    world.record("acme/quiet", pins, None)
    world.record("acme/secure", pins, "security")
    world.record("acme/other", pins, "[gamma]")

    first = world.run()  # the first look only learns what exists
    assert (first.asked, first.enqueued, world.queued()) == (2, (), [])

    world.index.publish("beta", "1.1.0")
    second = world.run()
    assert second.enqueued == ("acme/watcher",)
    security, job = world.queued()  # the security job is queued first
    assert (job.repo, job.payload["trigger"]) == ("acme/watcher", "watch")
    assert RefreshPayload.of(job) == RefreshPayload(mode="targeted", packages=("beta",))
    # watch: security is not refreshed for a release; its security job looks instead
    assert [(s.repo, s.package, s.locked, s.versions) for s in second.security] == [
        ("acme/secure", "beta", "1.0.0", ("1.1.0",))
    ]
    assert (security.kind, security.repo) == ("security", "acme/secure")


def test_a_pass_with_nothing_new_makes_only_conditional_requests(world: World) -> None:
    world.record("acme/a", {"beta": "1.0.0", "gamma": "1.0.0"}, "[beta, gamma]")
    world.record("acme/b", {"beta": "1.0.0"}, "[beta]")
    world.run()
    before = world.index.not_modified

    again = world.run()

    assert (again.asked, again.requests, again.not_modified) == (2, 2, 2)  # once per package
    assert world.index.not_modified - before == 2
    assert again.enqueued == ()
    assert world.queued() == []


def test_several_moved_packages_give_one_refresh_per_repository(world: World) -> None:
    pins = {"beta": "1.0.0", "gamma": "1.0.0", "delta": "1.0.0"}
    world.record("acme/a", pins, "[beta, gamma, delta]")
    world.run()
    world.index.publish("beta", "2.0.0")
    world.index.publish("gamma", "1.0.1")
    world.index.publish("delta", "1.1.0rc1")  # a pre-release is no reason for a stable lock

    world.run()

    (job,) = world.queued()
    assert RefreshPayload.of(job).packages == ("beta", "gamma")


def test_a_yanked_pin_refreshes_every_repository_locking_it_with_the_reason(world: World) -> None:
    world.index.publish("beta", "1.1.0")
    world.record("acme/watcher", {"beta": "1.1.0"}, "[beta]")
    world.record("acme/quiet", {"beta": "1.1.0"}, None)
    world.record("acme/older", {"beta": "1.0.0"}, None)
    world.run()

    world.index.mark_yanked("beta", "1.1.0", "broken wheel, use 1.0.0")
    result = world.run()

    assert sorted(result.enqueued) == ["acme/quiet", "acme/watcher"]
    for job in world.queued():
        assert RefreshPayload.of(job) == RefreshPayload(
            mode="targeted",
            packages=("beta",),
            yanked=(Yank("beta", "1.1.0", "broken wheel, use 1.0.0"),),
        )
    # a yank is acted on once
    assert world.run().enqueued == ()


def test_refreshes_start_within_the_pace_and_the_rest_wait(world: World) -> None:
    paced = replace(world, watch=ReleaseWatch(cache_dir=None, policy=LOCAL, pace=Pace(1, 2)))
    for name in ("acme/a", "acme/b", "acme/c"):
        world.record(name, {"beta": "1.0.0"}, "[beta]")
    world.record("other/d", {"beta": "1.0.0"}, "[beta]", installation_id=8)
    start = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    paced.run(start)
    world.index.publish("beta", "1.1.0")

    first = paced.run(start + timedelta(minutes=10))
    assert first.enqueued == ("acme/a", "other/d")  # one per installation this minute
    assert first.waiting == ("acme/b", "acme/c")
    second = paced.run(start + timedelta(minutes=20))
    assert (second.enqueued, second.waiting) == (("acme/b",), ("acme/c",))
    third = paced.run(start + timedelta(minutes=30))
    assert (third.enqueued, third.waiting) == ((), ("acme/c",))  # the hour's budget is spent
    later = paced.run(start + timedelta(minutes=80))
    assert later.enqueued == ("acme/c",)
    assert sorted(j.repo for j in world.queued()) == ["acme/a", "acme/b", "acme/c", "other/d"]
    paced.watch.close()


def test_forgetting_a_repository_drops_its_rows(world: World) -> None:
    world.record("acme/gone", {"beta": "1.0.0"}, "[beta]")
    world.record("acme/kept", {"gamma": "1.0.0"}, "[gamma]")
    world.run()

    WatchBook(world.queue).forget("acme/gone")

    left = rows(
        world.database_url,
        "SELECT (SELECT count(*) FROM lockwarden_watch_repos WHERE repo = %s), "
        "(SELECT count(*) FROM lockwarden_watch_pins WHERE repo = %s)",
        "acme/gone",
        "acme/gone",
    )
    assert left == [(0, 0)]
    assert world.run().asked == 1  # only gamma is still watched
    world.index.publish("beta", "1.1.0")
    assert world.run().enqueued == ()


def test_an_unreachable_or_refused_index_is_reported_not_raised(world: World) -> None:
    world.record("acme/a", {"beta": "1.0.0"}, "[beta]")
    strict = ReleaseWatch(cache_dir=None, policy=EgressPolicy(()))  # 127.0.0.1 not allowed

    result = strict.run(world.queue)

    assert result.enqueued == ()
    assert result.requests == 0
    (failure,) = result.failed
    assert "beta" in failure
    assert "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS" in failure
    strict.close()


def test_migrate_creates_the_watch_tables(queue: ProcrastinateQueue, database_url: str) -> None:
    assert queue.missing_schema() == ()
    names = {r[0] for r in rows(database_url, "SELECT tablename FROM pg_tables")}
    assert set(WATCH_TABLES) <= names
    with queue.transaction() as conn:
        conn.execute("DROP TABLE lockwarden_watch_pending")
    assert queue.missing_schema() == ("lockwarden_watch_pending",)
    queue.migrate()
    assert queue.missing_schema() == ()


def test_a_refresh_already_waiting_does_not_swallow_the_watched_one(world: World) -> None:
    world.record("acme/a", {"beta": "1.0.0"}, "[beta]")
    world.run()
    pushed = JobRequest("refresh", "acme/a", 7, "push-1", {"mode": "minimal"})
    world.queue.enqueue(pushed)
    world.index.publish("beta", "1.1.0")

    held = world.run()

    assert (held.enqueued, held.waiting) == ((), ("acme/a",))
    assert [RefreshPayload.of(j).mode for j in world.queued()] == ["minimal"]
    # the push's refresh starts: the watched one is queued at the next pass
    rows(
        world.database_url,
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'delivery_id' = 'push-1' "
        "RETURNING id",
    )
    assert world.run().enqueued == ("acme/a",)
    (job,) = world.queued()
    assert RefreshPayload.of(job).packages == ("beta",)
