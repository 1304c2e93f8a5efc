"""Scheduled refreshes: spread, time zones, pacing, and the scheduling pass on a real
PostgreSQL (due rows enqueued once, paced per installation, periodic pass never doubled)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import Schedule
from bot.jobs.postgres import SCHEDULER_QUEUE, TICK_TASK_NAME, ProcrastinateQueue
from bot.schedules import DueRepo, Pace, Recent, admit, next_run, stagger_offset
from tests.support.fake_github import FakeGitHub
from tests.support.postgres import PostgresCluster

_databases = itertools.count(1)
MONDAY = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # a Monday, before 05:00 UTC


def test_offsets_are_stable_and_spread_a_thousand_repositories_over_the_window() -> None:
    repos = [f"acme/repo-{i}" for i in range(1000)]
    offsets = [stagger_offset(r, 3600) for r in repos]
    assert offsets == [stagger_offset(r, 3600) for r in repos]
    assert all(timedelta(0) <= o < timedelta(hours=1) for o in offsets)
    per_minute = Counter(int(o.total_seconds() // 60) for o in offsets)
    assert len(per_minute) == 60
    assert max(per_minute.values()) <= 35  # about 17 a minute, never all at once
    assert stagger_offset("acme/x", 0) == timedelta(0)
    assert stagger_offset("ACME/X", 600) == stagger_offset("acme/x", 600)


def test_next_run_follows_cron_in_the_time_zone_plus_the_offset() -> None:
    weekly = Schedule()  # Mondays 05:00 UTC
    assert next_run(weekly, "acme/x", MONDAY, spread_s=0) == datetime(
        2026, 11, 30, 5, 0, tzinfo=UTC
    )
    due = next_run(weekly, "acme/x", MONDAY, spread_s=3600)
    assert due == datetime(2026, 11, 30, 5, 0, tzinfo=UTC) + stagger_offset("acme/x", 3600)
    # after this week's run: next Monday
    later = next_run(weekly, "acme/x", due, spread_s=3600)
    assert later - due == timedelta(days=7)
    # 05:00 in Berlin is 04:00 UTC in winter and 03:00 UTC in summer
    berlin = Schedule(cron="0 5 * * *", timezone="Europe/Berlin")
    assert next_run(berlin, "r", MONDAY - timedelta(hours=2), spread_s=0).hour == 4
    summer = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert next_run(berlin, "r", summer, spread_s=0) == datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def test_admit_paces_each_installation_separately() -> None:
    due = [DueRepo(f"a/{i}", 1, "* * * * *", "UTC", MONDAY) for i in range(5)]
    due += [DueRepo(f"b/{i}", 2, "* * * * *", "UTC", MONDAY) for i in range(2)]
    admitted = admit(due, {}, Pace(per_minute=3, per_hour=10))
    assert [d.repo for d in admitted] == ["a/0", "a/1", "a/2", "b/0", "b/1"]
    # budget already used this minute / this hour
    assert admit(due, {1: Recent(3, 3)}, Pace(3, 10)) == tuple(d for d in due if d.repo[0] == "b")
    assert admit(due, {1: Recent(0, 10), 2: Recent(0, 10)}, Pace(3, 10)) == ()


# -- the scheduling pass on PostgreSQL -------------------------------------------------------


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"schedule_test_{next(_databases)}")


@pytest.fixture
def queue(database_url: str) -> Iterator[ProcrastinateQueue]:
    with ProcrastinateQueue(database_url, spread_s=0, pace=Pace(2, 3)) as migrated:
        migrated.migrate()
        yield migrated


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def refreshes(url: str) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in rows(
            url,
            "SELECT args->>'repo', args->'payload'->>'mode', args->>'delivery_id' "
            "FROM procrastinate_jobs WHERE queue_name = 'lockwarden' ORDER BY id",
        )
    ]


@pytest.mark.slow
def test_due_repositories_are_enqueued_once_paced_and_moved_on(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    weekly = Schedule()
    for name in ("acme/a", "acme/b", "acme/c"):
        queue.upsert_schedule(name, 7, weekly, now=MONDAY)
    queue.upsert_schedule("other/x", 8, weekly, now=MONDAY)
    assert queue.run_schedules(MONDAY) == ()  # nothing due before 05:00

    at_five = MONDAY + timedelta(hours=1, seconds=1)
    first = queue.run_schedules(at_five)
    assert sorted(first) == ["acme/a", "acme/b", "other/x"]  # 2 a minute for installation 7
    assert queue.run_schedules(at_five) == ()  # moved on; acme/c waits for the pace
    assert queue.run_schedules(at_five + timedelta(seconds=30)) == ()
    assert queue.run_schedules(at_five + timedelta(minutes=1)) == ("acme/c",)
    jobs = refreshes(database_url)
    assert [j[0] for j in jobs] == [*first, "acme/c"]
    assert {j[1] for j in jobs} == {"full"}
    assert all(j[2].startswith("schedule:") for j in jobs)
    # next week, and the hourly budget (3) of installation 7 was spent this hour
    (next_due,) = rows(
        database_url, "SELECT next_run_at FROM lockwarden_schedules WHERE repo = 'acme/a'"
    )[0]
    assert next_due - datetime(2026, 11, 30, 5, 0, tzinfo=UTC) == timedelta(days=7)


@pytest.mark.slow
def test_a_changed_schedule_moves_the_next_run_and_forget_removes_it(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    queue.upsert_schedule("acme/a", 7, Schedule(), now=MONDAY)
    queue.upsert_schedule("acme/a", 7, Schedule(), now=MONDAY + timedelta(days=3))
    due = rows(database_url, "SELECT next_run_at FROM lockwarden_schedules")[0][0]
    assert due == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # same schedule: kept
    queue.upsert_schedule("acme/a", 9, Schedule(cron="30 6 * * *"), now=MONDAY)
    due, installation = rows(
        database_url, "SELECT next_run_at, installation_id FROM lockwarden_schedules"
    )[0]
    assert (due, installation) == (datetime(2026, 11, 30, 6, 30, tzinfo=UTC), 9)
    queue.forget_schedule("acme/a")
    assert rows(database_url, "SELECT * FROM lockwarden_schedules") == []


@pytest.mark.slow
def test_the_periodic_pass_is_deferred_once_per_period_across_processes(
    database_url: str,
) -> None:
    """Two scheduler processes (here two queues with their own pools, as two processes
    would have) run for a few seconds with a pass every second: each period's pass is
    deferred once, and the passes run one at a time."""
    with ProcrastinateQueue(database_url) as setup:
        setup.migrate()
    stop = threading.Event()
    queues = [ProcrastinateQueue(database_url, tick_cron="* * * * * *") for _ in range(2)]
    threads = [
        threading.Thread(
            target=q.run_worker,
            args=(None,),
            kwargs={"queues": (SCHEDULER_QUEUE,), "install_signal_handlers": False, "stop": stop},
        )
        for q in queues
    ]
    query = "SELECT args->>'timestamp', status::text FROM procrastinate_jobs WHERE task_name = %s"
    for thread in threads:
        thread.start()
    # Four seconds at least, then on until two periods' passes are in: on a busy machine the
    # schedulers' threads may get no CPU for a while.
    started = time.monotonic()
    while time.monotonic() - started < 4 or (
        len(rows(database_url, query, TICK_TASK_NAME)) < 2 and time.monotonic() - started < 60
    ):
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for q in queues:
        q.close()
    ticks = rows(database_url, query, TICK_TASK_NAME)
    assert len(ticks) >= 2
    per_period = Counter(t[0] for t in ticks)
    assert max(per_period.values()) == 1
    assert {t[1] for t in ticks} <= {"succeeded", "todo", "doing"}


@pytest.mark.slow
def test_lockwarden_refresh_queues_a_refresh_by_hand(database_url: str, fake: FakeGitHub) -> None:
    with ProcrastinateQueue(database_url) as setup:
        setup.migrate()
    installation = fake.create_installation("acme")
    fake.create_repo("acme/svc", files={"README.md": "x\n"}, installation=installation)
    env = {
        "LOCKWARDEN_APP_ID": str(fake.app_id),
        "LOCKWARDEN_PRIVATE_KEY": fake.private_key_pem,
        "LOCKWARDEN_GITHUB_API_URL": fake.api_url,
        "LOCKWARDEN_DATABASE_URL": database_url,
    }
    runner = CliRunner()
    done = runner.invoke(
        main, ["refresh", "acme/svc", "--package", "Beta==2.0", "--env", "serve"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "queued refresh of acme/svc as job" in done.output
    (args,) = rows(
        database_url, "SELECT args FROM procrastinate_jobs WHERE queue_name = 'lockwarden'"
    )[0]
    assert args["installation_id"] == installation.id
    assert args["payload"]["mode"] == "targeted"
    assert args["payload"]["packages"] == ["beta==2.0"]
    assert args["payload"]["environments"] == ["serve"]
    done = runner.invoke(main, ["refresh", "acme/nope"], env=env)
    assert done.exit_code == 2
    assert "not installed" in done.output
    done = runner.invoke(main, ["refresh", "acme/svc", "--package", "beta>=2"], env=env)
    assert done.exit_code == 2
