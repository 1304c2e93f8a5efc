"""The release watch's PostgreSQL tables, created by ``lockwarden migrate``.

* ``lockwarden_watch_repos``: each installed repository's watch policy (``none``,
  ``security`` or ``packages`` with the names it lists), written after every refresh and
  onboarding, dropped when the App is uninstalled.
* ``lockwarden_watch_pins``: what its default branch's locks pin (index, package, version).
* ``lockwarden_watch_releases``: per (index, package) asked, the versions seen and the
  versions seen yanked, so a pass knows what is new.
* ``lockwarden_watch_pending``: refreshes a pass decided on but the pace has not let start
  yet, coalesced per repository (packages and yanks added up).
* ``lockwarden_watch_advisories``: per ``watch: security`` repository, the advisory ids a
  security job was already asked for, so an advisory is acted on once; they go with the
  repository's row.
* ``lockwarden_watch_security_pending``: security jobs a pass decided on but the pace has
  not let start yet, one per repository (packages and reasons added up).

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
from psycopg import sql
from psycopg.types.json import Jsonb

from bot.config import RepoConfig
from bot.watch.pins import RepoPins, repo_pins

log = logging.getLogger(__name__)

WATCH_TABLES = (
    "lockwarden_watch_repos",
    "lockwarden_watch_pins",
    "lockwarden_watch_releases",
    "lockwarden_watch_pending",
    "lockwarden_watch_advisories",
    "lockwarden_watch_security_pending",
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
CREATE TABLE IF NOT EXISTS lockwarden_watch_advisories (
    repo text NOT NULL REFERENCES lockwarden_watch_repos (repo) ON DELETE CASCADE,
    advisory text NOT NULL,
    acted_at timestamptz NOT NULL,
    PRIMARY KEY (repo, advisory)
);
CREATE TABLE IF NOT EXISTS lockwarden_watch_security_pending (
    repo text PRIMARY KEY,
    installation_id bigint NOT NULL,
    packages text[] NOT NULL,
    reasons text[] NOT NULL,
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


@dataclass(frozen=True)
class SecurityPin:
    """One pin of a repository on ``watch: security``."""

    repo: str
    installation_id: int
    package: str
    version: str


@dataclass(frozen=True)
class SecurityPending:
    """A security job waiting for the pace: why, and the packages concerned."""

    repo: str
    installation_id: int
    packages: tuple[str, ...]
    reasons: tuple[str, ...]
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
    conn.execute("DELETE FROM lockwarden_watch_security_pending WHERE repo = %s", (repo,))


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
    _merge_waiting(
        conn,
        "lockwarden_watch_pending",
        "yanked",
        (item.repo, item.installation_id, list(item.packages), Jsonb(item.yanked), item.since),
    )


def _merge_waiting(conn: Connection, table: str, extra: str, row: tuple[Any, ...]) -> None:
    """Insert ``row`` (repo, installation, packages, ``extra``, since) into a table of
    waiting jobs, or merge it into the repository's row: packages as a set, ``extra``
    appended."""
    query = sql.SQL(
        "INSERT INTO {table} (repo, installation_id, packages, {extra}, since) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (repo) DO UPDATE SET "
        "installation_id = EXCLUDED.installation_id, "
        "packages = ARRAY(SELECT DISTINCT unnest({table}.packages || EXCLUDED.packages) "
        "ORDER BY 1), {extra} = {table}.{extra} || EXCLUDED.{extra}"
    ).format(table=sql.Identifier(table), extra=sql.Identifier(extra))
    conn.execute(query, row)


def _waiting(conn: Connection, table: str, extra: str, limit: int) -> list[tuple[Any, ...]]:
    """The rows of a table of waiting jobs, oldest first, locked for this pass."""
    query = sql.SQL(
        "SELECT repo, installation_id, packages, {extra}, since FROM {table} "
        "ORDER BY since, repo LIMIT %s FOR UPDATE SKIP LOCKED"
    ).format(table=sql.Identifier(table), extra=sql.Identifier(extra))
    return conn.execute(query, (limit,)).fetchall()


def pending(conn: Connection, limit: int) -> list[Pending]:
    """The refreshes waiting for the pace, oldest first, locked for this pass."""
    return [
        Pending(
            str(r[0]),
            int(r[1]),
            tuple(r[2]),
            tuple(dict.fromkeys((str(y[0]), str(y[1]), str(y[2])) for y in r[3])),
            r[4],
        )
        for r in _waiting(conn, "lockwarden_watch_pending", "yanked", limit)
    ]


def done(conn: Connection, repo: str) -> None:
    conn.execute("DELETE FROM lockwarden_watch_pending WHERE repo = %s", (repo,))


def security_pins(conn: Connection) -> list[SecurityPin]:
    """Every pin of every repository on ``watch: security``, whatever its index."""
    rows = conn.execute(
        "SELECT p.repo, r.installation_id, p.package, p.version FROM lockwarden_watch_pins p "
        "JOIN lockwarden_watch_repos r ON r.repo = p.repo WHERE r.policy = 'security' "
        "ORDER BY p.repo, p.package, p.version"
    ).fetchall()
    return [SecurityPin(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]


def acted_on(conn: Connection, repos: Iterable[str]) -> dict[str, frozenset[str]]:
    """The advisory ids each of ``repos`` was already asked a security job for."""
    rows = conn.execute(
        "SELECT repo, array_agg(advisory) FROM lockwarden_watch_advisories "
        "WHERE repo = ANY (%s) GROUP BY repo",
        (sorted(set(repos)),),
    ).fetchall()
    return {str(r[0]): frozenset(r[1]) for r in rows}


def remember_acted(conn: Connection, repo: str, advisories: Iterable[str], now: datetime) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO lockwarden_watch_advisories (repo, advisory, acted_at) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(repo, advisory, now) for advisory in advisories],
        )


def add_security_pending(conn: Connection, item: SecurityPending) -> None:
    """Ask for a security job once the pace admits it; one per repository, merged."""
    _merge_waiting(
        conn,
        "lockwarden_watch_security_pending",
        "reasons",
        (item.repo, item.installation_id, list(item.packages), list(item.reasons), item.since),
    )


def security_pending(conn: Connection, limit: int) -> list[SecurityPending]:
    """The security jobs waiting for the pace, oldest first, locked for this pass."""
    return [
        SecurityPending(str(r[0]), int(r[1]), tuple(r[2]), tuple(dict.fromkeys(r[3])), r[4])
        for r in _waiting(conn, "lockwarden_watch_security_pending", "reasons", limit)
    ]


def security_done(conn: Connection, repo: str) -> None:
    conn.execute("DELETE FROM lockwarden_watch_security_pending WHERE repo = %s", (repo,))


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
