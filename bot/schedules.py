"""Scheduled refreshes: when each repository is due, spread out and paced.

Each repository's ``schedule`` (cron and time zone, from its config; weekly by default) is
kept in ``lockwarden_schedules`` with the next time it is due. One periodic task (a
Procrastinate periodic job, deferred once per minute across all processes and run one at a
time) takes the due rows and enqueues one full refresh for each, within a pace per
installation, and moves each row to its next time.

* **Spread.** A repository's runs are shifted by a fixed offset within ``spread_s`` derived
  from its name, so a thousand repositories on the default Monday-05:00 schedule start over
  an hour, not in one minute; the offset never changes, so a repository is refreshed at the
  same time every week.
* **Pace.** GitHub limits content creation (about 80 requests a minute and 500 an hour); a
  refresh makes a handful (the pull request, its check run, labels, reviewers, a comment).
  At most ``per_minute`` and ``per_hour`` scheduled refreshes start per installation; the
  rest stay due and go at the next tick.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.config import Schedule


@dataclass(frozen=True)
class Pace:
    per_minute: int = 10
    per_hour: int = 80


@dataclass(frozen=True)
class DueRepo:
    repo: str
    installation_id: int
    cron: str
    timezone: str
    due_at: datetime


@dataclass(frozen=True)
class Recent:
    """Scheduled refreshes an installation started in the last minute and hour."""

    last_minute: int = 0
    last_hour: int = 0


def stagger_offset(repo: str, spread_s: int) -> timedelta:
    """A fixed offset in ``[0, spread_s)`` for ``repo`` (stable across processes and runs)."""
    if spread_s <= 0:
        return timedelta(0)
    digest = hashlib.sha256(repo.lower().encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % spread_s)


def next_run(schedule: Schedule, repo: str, after: datetime, *, spread_s: int) -> datetime:
    """The first time after ``after`` that ``repo`` is due: the cron's next fire time in the
    schedule's time zone, plus the repository's offset. Returned in UTC."""
    offset = stagger_offset(repo, spread_s)
    zone = ZoneInfo(schedule.timezone)
    start = (after - offset).astimezone(zone)
    fire: datetime = croniter(schedule.cron, start).get_next(datetime)
    return (fire + offset).astimezone(UTC)


def admit(due: Iterable[DueRepo], recent: Mapping[int, Recent], pace: Pace) -> tuple[DueRepo, ...]:
    """The due repositories that may start now, oldest first, within each installation's
    pace; the others wait for a later tick."""
    started: dict[int, Recent] = dict(recent)
    out = []
    for row in sorted(due, key=lambda r: (r.due_at, r.repo)):
        now = started.get(row.installation_id, Recent())
        if now.last_minute >= pace.per_minute or now.last_hour >= pace.per_hour:
            continue
        started[row.installation_id] = Recent(now.last_minute + 1, now.last_hour + 1)
        out.append(row)
    return tuple(out)
