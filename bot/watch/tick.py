"""One pass of the upstream release watch.

Every ``watch_interval_min`` minutes (a Procrastinate periodic task, run once across all
processes) the pass asks each index once about each distinct package that an installed
repository watches (by name, or by ``watch: security``), with a conditional request: an
unchanged page costs a 304 and nothing else. A page that changed is compared with what the
previous pass saw:

* a new version newer than a repository's locked one queues a targeted refresh of that
  package for each repository that lists it under ``watch:``;
* a locked version now yanked queues a targeted refresh of that package for every
  repository that locks it, whatever its ``watch:``, with the index's reason for the pull
  request to quote;
* repositories on ``watch: security`` are not refreshed for releases: a new release of a
  package one locks (:func:`on_new_releases`), or a fixable advisory of one of its pins that
  it was not told about before, queues its ``security`` job (``bot.watch.security``).

A repository gets one refresh and one security job per pass at most, however many of its
packages moved, and both start within the pace scheduled refreshes use (the same
per-installation budget); the ones the pace holds back wait in ``lockwarden_watch_pending``
and ``lockwarden_watch_security_pending`` for a later pass.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
from packaging.version import InvalidVersion, Version

from bot.advisories.audit import lookup_notes
from bot.advisories.service import ServiceConfig, service_config
from bot.jobs.payloads import RefreshPayload, Yank
from bot.jobs.queue import JobId, JobRequest
from bot.jobs.security import enqueue_security
from bot.sandbox.egress import EgressPolicy
from bot.schedules import DueRepo, Pace, Recent, admit
from bot.settings import Settings
from bot.upstream.index import IndexLookupError, ProjectPage, SimpleIndex, normalize_version
from bot.watch import store
from bot.watch.security import NewRelease, SecurityDecision, decide, lookup_pins
from bot.watch.store import Connection, Locker, Pending, Seen

log = logging.getLogger(__name__)

PASS_BATCH = 1000
"""Waiting refreshes looked at per pass; the rest wait for the next one."""


class WatchDatabase(Protocol):
    """Where the watch keeps its tables and queues its jobs (``ProcrastinateQueue``)."""

    def transaction(self) -> contextlib.AbstractContextManager[Connection]: ...

    def enqueue_in(self, conn: Connection, request: JobRequest) -> str | None: ...

    def recent_runs(
        self, conn: Connection, installations: Iterable[int], moment: datetime
    ) -> Mapping[int, Recent]:
        """Paced refreshes each installation started in the last minute and hour."""
        ...

    def count_run(
        self, conn: Connection, installation_id: int, repo: str, moment: datetime
    ) -> None: ...


@dataclass(frozen=True)
class Change:
    """What one project page says that the previous pass did not know."""

    index_url: str
    package: str
    page: ProjectPage
    new: tuple[str, ...]
    """Versions not seen before (none on the first look), oldest first, yanked ones left out."""
    yanked: dict[str, str]
    """Versions yanked since the previous look -> the index's reason ("" without one)."""


@dataclass(frozen=True)
class PassResult:
    asked: int = 0
    requests: int = 0
    not_modified: int = 0
    failed: tuple[str, ...] = ()
    """``index package: reason`` for each page that could not be read."""
    enqueued: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    """Repositories with a refresh the pace holds back for a later pass."""
    security: tuple[NewRelease, ...] = ()
    """Repositories on ``watch: security`` that lock a package with new releases."""
    security_enqueued: tuple[str, ...] = ()
    """Repositories whose security job this pass queued."""
    security_waiting: tuple[str, ...] = ()
    advisory_notes: tuple[str, ...] = ()
    """Why advisories were not checked, or which pins the service does not know."""


class _Waiting(Protocol):
    """A job waiting for the pace (``Pending``, ``SecurityPending``)."""

    @property
    def repo(self) -> str: ...
    @property
    def installation_id(self) -> int: ...
    @property
    def since(self) -> datetime: ...


W = TypeVar("W", bound=_Waiting)


@dataclass(frozen=True)
class _InTransaction:
    """The pass's transaction as a job queue: a job is queued with the pass's rows or not
    at all."""

    db: WatchDatabase
    conn: Connection

    def enqueue(self, request: JobRequest) -> str | None:
        return self.db.enqueue_in(self.conn, request)


@dataclass
class _Decided:
    installation_id: int
    packages: dict[str, None] = field(default_factory=dict)
    yanked: list[tuple[str, str, str]] = field(default_factory=list)


class ReleaseWatch:
    """The pass, with one index client per index kept between passes (their copies of the
    pages are what the conditional requests revalidate)."""

    def __init__(
        self,
        *,
        cache_dir: Path | None,
        policy: EgressPolicy,
        pace: Pace | None = None,
        client: httpx.Client | None = None,
        max_parallel: int = 8,
        timeout_s: float = 20,
        advisories: ServiceConfig | None = None,
    ) -> None:
        """``advisories``: the service ``watch: security`` repositories' pins are looked up
        in (None: none is, and only new releases queue their security jobs)."""
        self._advisories = advisories
        self._cache_dir = cache_dir
        self._policy = policy
        self._pace = pace or Pace()
        self._client = client
        self._max_parallel = max_parallel
        self._timeout_s = timeout_s
        self._indexes: dict[str, SimpleIndex] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()

    def index(self, url: str) -> SimpleIndex:
        with self._lock:
            if url not in self._indexes:
                self._indexes[url] = SimpleIndex(
                    url,
                    cache_dir=self._cache_dir,
                    policy=self._policy,
                    client=self._client,
                    timeout_s=self._timeout_s,
                )
            return self._indexes[url]

    def counters(self) -> tuple[int, int]:
        """(requests, 304s) made so far by every index client."""
        with self._lock:
            indexes = list(self._indexes.values())
        return sum(i.requests for i in indexes), sum(i.not_modified for i in indexes)

    def run(self, db: WatchDatabase, now: datetime | None = None) -> PassResult:
        """One pass: ask, decide, then record and queue in one transaction."""
        moment = now or datetime.now(UTC)
        before = self.counters()
        with db.transaction() as conn:
            keys = store.asked(conn)
            seen = store.seen(conn, keys)
            pins = store.security_pins(conn)
        pages, failed = self._ask(keys)
        lookup = lookup_pins(pins, self._advisories)
        changes = [_change(key, page, seen.get(key)) for key, page in pages]
        with db.transaction() as conn:
            security = self._decide(conn, changes, moment)
            for change in changes:
                store.save_seen(
                    conn,
                    (change.index_url, change.package),
                    change.page.versions(),
                    _yanked_versions(change.page),
                    moment,
                )
            acted = store.acted_on(conn, {pin.repo for pin in pins})
            _want_security(conn, decide(pins, lookup, acted, security, moment), moment)
            secured, held = self._start_security(db, conn, moment)
            enqueued, waiting = self._start(db, conn, moment)
        requests, not_modified = self.counters()
        result = PassResult(
            asked=len(keys),
            requests=requests - before[0],
            not_modified=not_modified - before[1],
            failed=failed,
            enqueued=enqueued,
            waiting=waiting,
            security=security,
            security_enqueued=secured,
            security_waiting=held,
            advisory_notes=lookup_notes(lookup) if self._advisories is not None else (),
        )
        _log_pass(result)
        return result

    def _ask(
        self, keys: Sequence[tuple[str, str]]
    ) -> tuple[list[tuple[tuple[str, str], ProjectPage]], tuple[str, ...]]:
        """The pages that changed since the client's copy, and the lookups that failed."""

        def one(key: tuple[str, str]) -> ProjectPage | str | None:
            try:
                return self.index(key[0]).refresh(key[1])
            except IndexLookupError as exc:
                return f"{key[0]} {key[1]}: {exc}"

        with ThreadPoolExecutor(max_workers=self._max_parallel) as pool:
            answers = list(pool.map(one, keys))
        pages = [(k, a) for k, a in zip(keys, answers, strict=True) if isinstance(a, ProjectPage)]
        return pages, tuple(a for a in answers if isinstance(a, str))

    def _decide(
        self, conn: Connection, changes: Sequence[Change], moment: datetime
    ) -> tuple[NewRelease, ...]:
        """Queue (as pending) the refreshes the changes call for; the security-watching
        repositories that lock a package with new releases."""
        decided: dict[str, _Decided] = {}
        security: list[NewRelease] = []
        for change in changes:
            if not change.new and not change.yanked:
                continue
            found = store.lockers(conn, change.index_url, change.package)
            security += on_new_releases(change, found)
            for locker, yank in _refreshes(change, found):
                entry = decided.setdefault(locker.repo, _Decided(locker.installation_id))
                entry.packages.setdefault(change.package)
                if yank is not None:
                    entry.yanked.append(yank)
        for repo, entry in decided.items():
            store.add_pending(
                conn,
                Pending(
                    repo, entry.installation_id, tuple(entry.packages), tuple(entry.yanked), moment
                ),
            )
        return tuple(security)

    def _start(
        self, db: WatchDatabase, conn: Connection, moment: datetime
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Queue the waiting refreshes the pace admits; (started, still waiting)."""
        waiting = {p.repo: p for p in store.pending(conn, PASS_BATCH)}
        started = []
        for item in self._admitted(db, conn, waiting, moment):
            job_id = db.enqueue_in(conn, refresh_request(item, moment))
            if isinstance(job_id, JobId) and job_id.joined:
                # Merged into a refresh that waits already, which would not carry these
                # packages or the yank to quote: ours goes once that one has started.
                continue
            db.count_run(conn, item.installation_id, item.repo, moment)
            store.done(conn, item.repo)
            started.append(waiting.pop(item.repo).repo)
        return tuple(started), tuple(sorted(waiting))

    def _start_security(
        self, db: WatchDatabase, conn: Connection, moment: datetime
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Queue the waiting security jobs the pace admits; (started, still waiting)."""
        waiting = {p.repo: p for p in store.security_pending(conn, PASS_BATCH)}
        started = []
        for item in self._admitted(db, conn, waiting, moment):
            job_id = enqueue_security(
                _InTransaction(db, conn),
                item.repo,
                item.installation_id,
                delivery_id=f"watch-security:{item.repo}:{moment.isoformat()}",
                reason="release watch: " + "; ".join(item.reasons),
                packages=item.packages,
            )
            # Joined to a security job that waits already: that one audits every lock when
            # it runs, so it covers these reasons too, and no second run is charged.
            if not (isinstance(job_id, JobId) and job_id.joined):
                db.count_run(conn, item.installation_id, item.repo, moment)
            store.security_done(conn, item.repo)
            started.append(waiting.pop(item.repo).repo)
        return tuple(started), tuple(sorted(waiting))

    def _admitted(
        self, db: WatchDatabase, conn: Connection, waiting: Mapping[str, W], moment: datetime
    ) -> list[W]:
        """Those of ``waiting`` (by repository) the pace lets start now, oldest first."""
        if not waiting:
            return []
        due = [DueRepo(p.repo, p.installation_id, "", "", p.since) for p in waiting.values()]
        recent = db.recent_runs(conn, {p.installation_id for p in waiting.values()}, moment)
        return [waiting[row.repo] for row in admit(due, recent, self._pace)]


def _want_security(conn: Connection, decision: SecurityDecision, moment: datetime) -> None:
    """Record the security jobs ``decision`` asks for, and the advisories they are about."""
    for repo, advisories in decision.acted.items():
        store.remember_acted(conn, repo, advisories, moment)
    for item in decision.wanted:
        store.add_security_pending(conn, item)


def refresh_request(item: Pending, moment: datetime) -> JobRequest:
    """The targeted refresh of a repository's moved packages."""
    payload = RefreshPayload(
        mode="targeted",
        packages=item.packages,
        yanked=tuple(Yank(*y) for y in item.yanked),
    )
    return JobRequest(
        kind="refresh",
        repo=item.repo,
        installation_id=item.installation_id,
        delivery_id=f"watch:{item.repo}:{moment.isoformat()}",
        payload={**payload.to_json(), "trigger": "watch"},
    )


def on_new_releases(change: Change, lockers: Sequence[Locker]) -> tuple[NewRelease, ...]:
    """The repositories on ``watch: security`` that lock ``change``'s package at a version
    older than one of its new releases: not refreshed for the release itself, but the
    security job may find it fixes an advisory of theirs."""
    return tuple(
        NewRelease(
            locker.repo,
            locker.installation_id,
            change.index_url,
            change.package,
            locker.version,
            newer,
        )
        for locker in lockers
        if locker.policy == "security" and (newer := _newer(change.new, locker.version))
    )


def _refreshes(
    change: Change, lockers: Sequence[Locker]
) -> Iterable[tuple[Locker, tuple[str, str, str] | None]]:
    """(repository, the yank it quotes) for each refresh ``change`` calls for."""
    for locker in lockers:
        locked = normalize_version(locker.version)
        if locked in change.yanked:
            yield locker, (change.package, locker.version, change.yanked[locked])
        elif locker.watches and _newer(change.new, locker.version):
            yield locker, None


def _newer(versions: Iterable[str], locked: str) -> tuple[str, ...]:
    """The ``versions`` newer than ``locked``; pre-releases only for a pre-release lock."""
    try:
        pinned = Version(locked)
    except InvalidVersion:
        return ()  # a version no resolver orders: nothing is "newer"
    out = []
    for raw in versions:
        with contextlib.suppress(InvalidVersion):
            version = Version(raw)
            if version > pinned and (not version.is_prerelease or pinned.is_prerelease):
                out.append(raw)
    return tuple(out)


def _change(key: tuple[str, str], page: ProjectPage, before: Seen | None) -> Change:
    yanked = {v: page.yanked(v) for v in page.versions()}
    now_yanked = {v: reason for v, reason in yanked.items() if reason is not None}
    known = before.versions if before is not None else frozenset(page.versions())
    new = tuple(v for v in page.versions() if v not in known and v not in now_yanked)
    was_yanked = before.yanked if before is not None else frozenset()
    fresh = {v: r for v, r in now_yanked.items() if v not in was_yanked}
    return Change(key[0], key[1], page, new, fresh)


def _yanked_versions(page: ProjectPage) -> list[str]:
    return [v for v in page.versions() if page.yanked(v) is not None]


def _log_pass(result: PassResult) -> None:
    log.info(
        "release watch: %d packages asked, %d requests, %d unchanged (304), %d failed, "
        "refreshes queued: %s; waiting for the pace: %s",
        result.asked,
        result.requests,
        result.not_modified,
        len(result.failed),
        ", ".join(result.enqueued) or "none",
        ", ".join(result.waiting) or "none",
    )
    for failure in result.failed[:20]:
        log.warning("release watch: %s", failure)
    for item in result.security:
        log.info(
            "release watch: %s (watch: security) locks %s %s; new: %s",
            item.repo,
            item.package,
            item.locked,
            ", ".join(item.versions),
        )
    if result.security_enqueued or result.security_waiting:
        log.info(
            "release watch: security jobs queued: %s; waiting for the pace: %s",
            ", ".join(result.security_enqueued) or "none",
            ", ".join(result.security_waiting) or "none",
        )
    for note in result.advisory_notes:
        log.warning("release watch: %s", note)


def release_watch(settings: Settings, pace: Pace) -> ReleaseWatch:
    """The watch a worker or receiver runs, from the settings: its page copies in
    ``watch_cache_dir``, indexes reached within the operator's egress allowances, advisories
    from the operator's advisory service."""
    advisories = service_config(settings)
    return ReleaseWatch(
        cache_dir=settings.watch_cache_dir,
        policy=EgressPolicy(settings.allowed_private_hosts),
        pace=pace,
        advisories=advisories if advisories.service != "off" else None,
    )
