"""``watch: security`` on a real PostgreSQL, the local advisory service and the local index: a
fixable advisory or a new release queues the repository's security job, once, within the
pace, and every (package, version) is looked up once for all repositories."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.advisories.service import ServiceConfig
from bot.jobs.payloads import SecurityPayload
from bot.schedules import Pace
from bot.watch.store import WatchBook
from bot.watch.tick import ReleaseWatch
from tests.support.advisory_service import AdvisoryService, vulnerability
from tests.support.index_server import unused_local_url
from tests.watch.conftest import LOCAL, World, rows

pytestmark = pytest.mark.slow

ADVISORY = "GHSA-be7a-0000-0001"
BETA = "/pypi/beta/1.0.0/json"


def vuln(fixed_in: list[str]) -> dict[str, Any]:
    return vulnerability(ADVISORY, fixed_in, "beta evaluates templates from requests")


def advised(world: World, url: str, pace: Pace = Pace(10, 80)) -> World:  # noqa: B008
    """``world`` with a watch that looks advisories up at ``url``."""
    service = ServiceConfig("pypi", url, world.tmp_path / "advisory-cache", 5.0, 2)
    watch = ReleaseWatch(cache_dir=None, policy=LOCAL, pace=pace, advisories=service)
    return replace(world, watch=watch)


@pytest.fixture
def secure(world: World, advisory_service: AdvisoryService) -> Iterator[World]:
    made = advised(world, advisory_service.url)
    try:
        yield made
    finally:
        made.watch.close()


def security_jobs(world: World) -> list[tuple[str, SecurityPayload]]:
    return [(j.repo, SecurityPayload.of(j)) for j in world.queued() if j.kind == "security"]


def test_a_new_fixable_advisory_queues_one_security_job_and_only_once(
    secure: World, advisory_service: AdvisoryService
) -> None:
    secure.record("acme/secure", {"beta": "1.0.0", "gamma": "1.0.0"}, "security")
    secure.record("acme/watcher", {"beta": "1.0.0"}, "[beta]")  # not on watch: security
    first = secure.run()
    assert (first.security_enqueued, secure.queued()) == ((), [])

    advisory_service.publish("beta", "1.0.0", [vuln(["1.0.1"])])
    second = secure.run()

    assert second.security_enqueued == ("acme/secure",)
    ((repo, payload),) = security_jobs(secure)
    assert repo == "acme/secure"
    assert payload.packages == ("beta",)
    assert f"advisory {ADVISORY} affects beta 1.0.0 (fixed in 1.0.1)" in payload.reason
    # told once: the next pass looks it up again (a conditional request) and queues nothing
    third = secure.run()
    assert (third.security_enqueued, third.security_waiting) == ((), ())
    assert len(secure.queued()) == 1
    assert advisory_service.count(status=304, conditional=True) >= 1


def test_two_repositories_locking_one_version_each_get_a_job_from_one_lookup(
    secure: World, advisory_service: AdvisoryService
) -> None:
    advisory_service.publish("beta", "1.0.0", [vuln(["1.0.1"])])
    secure.record("acme/a", {"beta": "1.0.0"}, "security")
    secure.record("other/b", {"beta": "1.0.0", "gamma": "1.0.0"}, "security", installation_id=8)

    result = secure.run()

    assert result.security_enqueued == ("acme/a", "other/b")
    assert sorted(repo for repo, _ in security_jobs(secure)) == ["acme/a", "other/b"]
    assert [r.path for r in advisory_service.requests].count(BETA) == 1


def test_an_advisory_without_a_fix_waits_until_one_is_published(
    secure: World, advisory_service: AdvisoryService
) -> None:
    advisory_service.publish("beta", "1.0.0", [vuln([])])
    secure.record("acme/secure", {"beta": "1.0.0"}, "security")

    assert secure.run().security_enqueued == ()  # nothing the security job could do

    advisory_service.publish("beta", "1.0.0", [vuln(["1.0.1"])])
    assert secure.run().security_enqueued == ("acme/secure",)


def test_new_releases_queue_the_security_job_once_per_repository(world: World) -> None:
    # advisories off: a release alone asks the security job to look
    world.record("acme/secure", {"beta": "1.0.0", "gamma": "1.0.0"}, "security")
    world.run()
    world.index.publish("beta", "1.1.0")
    world.index.publish("gamma", "1.0.1")

    result = world.run()

    assert (result.enqueued, result.security_enqueued) == ((), ("acme/secure",))
    ((_, payload),) = security_jobs(world)
    assert payload.packages == ("beta", "gamma")
    assert "beta 1.1.0 released (locked: 1.0.0)" in payload.reason
    assert result.advisory_notes == ()


def test_security_jobs_start_within_the_pace(
    world: World, advisory_service: AdvisoryService
) -> None:
    paced = advised(world, advisory_service.url, Pace(1, 10))
    advisory_service.publish("beta", "1.0.0", [vuln(["1.0.1"])])
    for name in ("acme/a", "acme/b"):
        world.record(name, {"beta": "1.0.0"}, "security")
    start = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)

    first = paced.run(start)
    assert (first.security_enqueued, first.security_waiting) == (("acme/a",), ("acme/b",))
    second = paced.run(start + timedelta(minutes=1))
    assert (second.security_enqueued, second.security_waiting) == (("acme/b",), ())
    assert sorted(repo for repo, _ in security_jobs(world)) == ["acme/a", "acme/b"]
    paced.watch.close()


def test_forgetting_a_repository_drops_the_advisories_it_was_told_about(
    secure: World, advisory_service: AdvisoryService
) -> None:
    advisory_service.publish("beta", "1.0.0", [vuln(["1.0.1"])])
    secure.record("acme/gone", {"beta": "1.0.0"}, "security")
    secure.run()
    query = "SELECT count(*) FROM lockwarden_watch_advisories WHERE repo = %s"
    assert rows(secure.database_url, query, "acme/gone") == [(1,)]

    WatchBook(secure.queue).forget("acme/gone")

    assert rows(secure.database_url, query, "acme/gone") == [(0,)]


def test_an_unreachable_advisory_service_is_a_note_and_nothing_is_remembered(
    world: World, tmp_path: Path
) -> None:
    down = advised(world, unused_local_url())
    world.record("acme/secure", {"beta": "1.0.0"}, "security")

    result = down.run()

    assert result.security_enqueued == ()
    (note,) = result.advisory_notes
    assert "could not be reached" in note
    assert rows(world.database_url, "SELECT count(*) FROM lockwarden_watch_advisories") == [(0,)]
    down.watch.close()
