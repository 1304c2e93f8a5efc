"""The release watch's PostgreSQL tables, created by ``lockwarden migrate``.

* ``lockwarden_watch_repos``: each installed repository's watch policy (``none``,
  ``security`` or ``packages`` with the names it lists), written after every refresh and
  onboarding, dropped when the App is uninstalled.
* ``lockwarden_watch_pins``: what its default branch's locks pin (index, package, version).
* ``lockwarden_watch_releases``: per (index, package) asked, the versions seen and the
  versions seen yanked, so a pass knows what is new.
* ``lockwarden_watch_pending``: refreshes a pass decided on but the pace has not let start
  yet, coalesced per repository (packages and yanks added up).

Every function takes the caller's connection: a pass records what it saw and queues its jobs
in one transaction, so a pass that fails leaves nothing half done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from bot.config import RepoConfig
from bot.watch.pins import RepoPins, repo_pins

log = logging.getLogger(__name__)

WATCH_TABLES = (
    "lockwarden_watch_repos",
    "lockwarden_watch_pins",
    "lockwarden_watch_releases",
    "lockwarden_watch_pending",
)

WATCH_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS lockwarden_watch_repos (
    repo text PRIMARY KEY,
    installation_id bigint NOT NULL,
    policy text NOT NULL CHECK (policy IN ('none', 'security', 'packages')),
    watched text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lockwarden_watch_pins (
    repo text NOT NULL REFERENCES lockwarden_watch_repos (repo) ON DELETE CASCADE,
    index_url text NOT NULL,
    package text NOT NULL,
    version text NOT NULL,
    PRIMARY KEY (repo, index_url, package, version)
);
CREATE INDEX IF NOT EXISTS lockwarden_watch_pins_package
    ON lockwarden_watch_pins (index_url, package);
CREATE TABLE IF NOT EXISTS lockwarden_watch_releases (
    index_url text NOT NULL,
    package text NOT NULL,
    versions text[] NOT NULL,
    yanked text[] NOT NULL DEFAULT '{}',
    checked_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (index_url, package)
);
CREATE TABLE IF NOT EXISTS lockwarden_watch_pending (
    repo text PRIMARY KEY,
    installation_id bigint NOT NULL,
    packages text[] NOT NULL,
    yanked jsonb NOT NULL DEFAULT '[]',
    since timestamptz NOT NULL
);
"""

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class Seen:
    """What an earlier pass saw of one (index, package)."""

    versions: frozenset[str]
    yanked: frozenset[str]


@dataclass(frozen=True)
class Locker:
    """A repository that locks a package at a version."""

    repo: str
    installation_id: int
    policy: str
    watches: bool
    """It lists the package under ``watch:``."""
    version: str


@dataclass(frozen=True)
class Pending:
    repo: str
    installation_id: int
    packages: tuple[str, ...]
    yanked: tuple[tuple[str, str, str], ...]
    since: datetime


def record(conn: Connection, pins: RepoPins) -> None:
    """Replace the repository's policy and pins with ``pins``."""
    conn.execute(
        "INSERT INTO lockwarden_watch_repos (repo, installation_id, policy, watched) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (repo) DO UPDATE SET "
        "installation_id = EXCLUDED.installation_id, policy = EXCLUDED.policy, "
        "watched = EXCLUDED.watched, updated_at = now()",
        (pins.repo, pins.installation_id, pins.policy, list(pins.watched)),
    )
    conn.execute("DELETE FROM lockwarden_watch_pins WHERE repo = %s", (pins.repo,))
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO lockwarden_watch_pins (repo, index_url, package, version) "
            "VALUES (%s, %s, %s, %s)",
            [(pins.repo, p.index_url, p.package, p.version) for p in pins.pins],
        )


def forget(conn: Connection, repo: str) -> None:
    """Drop everything kept about ``repo`` (its pins go with its row)."""
    conn.execute("DELETE FROM lockwarden_watch_repos WHERE repo = %s", (repo,))
    conn.execute("DELETE FROM lockwarden_watch_pending WHERE repo = %s", (repo,))


def asked(conn: Connection) -> list[tuple[str, str]]:
    """Each distinct (index, package) to ask about: locked by a repository that watches it
    by name, or by one that watches for security."""
    rows = conn.execute(
        "SELECT DISTINCT p.index_url, p.package FROM lockwarden_watch_pins p "
        "JOIN lockwarden_watch_repos r ON r.repo = p.repo "
        "WHERE r.policy = 'security' "
        "OR (r.policy = 'packages' AND p.package = ANY (r.watched)) "
        "ORDER BY 1, 2"
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def seen(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Seen]:
    """What earlier passes saw of ``keys`` (those asked before)."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT r.index_url, r.package, r.versions, r.yanked FROM lockwarden_watch_releases r "
        "JOIN unnest(%s::text[], %s::text[]) AS k (index_url, package) "
        "ON k.index_url = r.index_url AND k.package = r.package",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(r[0], r[1]): Seen(frozenset(r[2]), frozenset(r[3])) for r in rows}


def save_seen(
    conn: Connection,
    key: tuple[str, str],
    versions: Iterable[str],
    yanked: Iterable[str],
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO lockwarden_watch_releases "
        "(index_url, package, versions, yanked, checked_at, changed_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (index_url, package) DO UPDATE SET "
        "versions = EXCLUDED.versions, yanked = EXCLUDED.yanked, "
        "checked_at = EXCLUDED.checked_at, changed_at = EXCLUDED.changed_at",
        (key[0], key[1], sorted(versions), sorted(yanked), now, now),
    )


def lockers(conn: Connection, index_url: str, package: str) -> list[Locker]:
    """Every installed repository that locks ``package`` from ``index_url``."""
    rows = conn.execute(
        "SELECT r.repo, r.installation_id, r.policy, "
        "r.policy = 'packages' AND p.package = ANY (r.watched), p.version "
        "FROM lockwarden_watch_pins p JOIN lockwarden_watch_repos r ON r.repo = p.repo "
        "WHERE p.index_url = %s AND p.package = %s ORDER BY r.repo, p.version",
        (index_url, package),
    ).fetchall()
    return [Locker(str(r[0]), int(r[1]), str(r[2]), bool(r[3]), str(r[4])) for r in rows]


def add_pending(conn: Connection, item: Pending) -> None:
    """Queue a refresh for the pace to admit; one per repository, packages and yanks merged
    into one already waiting."""
    conn.execute(
        "INSERT INTO lockwarden_watch_pending (repo, installation_id, packages, yanked, since) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (repo) DO UPDATE SET "
        "installation_id = EXCLUDED.installation_id, "
        "packages = ARRAY(SELECT DISTINCT unnest(lockwarden_watch_pending.packages "
        "|| EXCLUDED.packages) ORDER BY 1), "
        "yanked = lockwarden_watch_pending.yanked || EXCLUDED.yanked",
        (item.repo, item.installation_id, list(item.packages), Jsonb(item.yanked), item.since),
    )


def pending(conn: Connection, limit: int) -> list[Pending]:
    """The refreshes waiting for the pace, oldest first, locked for this pass."""
    rows = conn.execute(
        "SELECT repo, installation_id, packages, yanked, since FROM lockwarden_watch_pending "
        "ORDER BY since, repo LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [
        Pending(
            str(r[0]),
            int(r[1]),
            tuple(r[2]),
            tuple(dict.fromkeys((str(y[0]), str(y[1]), str(y[2])) for y in r[3])),
            r[4],
        )
        for r in rows
    ]


def done(conn: Connection, repo: str) -> None:
    conn.execute("DELETE FROM lockwarden_watch_pending WHERE repo = %s", (repo,))


class Transactions(Protocol):
    """A database that hands out a connection inside one transaction (``ProcrastinateQueue``)."""

    def transaction(self) -> contextlib.AbstractContextManager[Connection]: ...


class WatchBook:
    """Where the workers record what each repository locks, after every refresh and
    onboarding, and forget it when the App is uninstalled. A database error is logged, not
    raised: the refresh it follows has already published its pull request."""

    def __init__(self, db: Transactions) -> None:
        self._db = db

    def record(self, root: Path, repo: str, installation_id: int, config: RepoConfig) -> None:
        """Record the policy and pins of the checkout at ``root`` (the default branch)."""
        pins = repo_pins(root, repo, installation_id, config)
        try:
            with self._db.transaction() as conn:
                record(conn, pins)
        except psycopg.Error:
            log.warning("release watch: could not record the pins of %s", repo, exc_info=True)

    def forget(self, repo: str) -> None:
        """Drop the repository's rows. Raises on a database error (the job is retried)."""
        with self._db.transaction() as conn:
            forget(conn, repo)
