"""What the package indexes say about a run's locks: pins their index has yanked, and the
newer releases a release-age quarantine kept out of a full refresh.

Each package is looked up once per run on the environment's index (then its extra indexes,
when the first has no such project), a few at a time. A lookup that fails becomes a note
naming the index and the package; nothing here fails a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.formats import format_for
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode
from bot.results import CompileStageResult, HeldBack, LockResult, SignalsResult, YankedPin
from bot.sandbox.egress import EgressPolicy
from bot.settings import Settings
from bot.upstream.index import IndexLookupError, ProjectPage, SimpleIndex
from bot.upstream.quarantine import QUARANTINE_BACKENDS, not_applied_note, release_age

PYPI_SIMPLE = "https://pypi.org/simple"
CONDA_NOT_CHECKED = (
    "yanked releases are not checked for conda locks (conda channels have no yank "
    "marker); check the channel's notices yourself"
)


@dataclass(frozen=True)
class UpstreamOptions:
    """Whether and how the indexes are asked (from ``Settings`` and the run's sandbox)."""

    enabled: bool = False
    policy: EgressPolicy = field(default_factory=EgressPolicy)
    cache_dir: Path | None = None
    timeout_s: float = 20.0
    max_parallel: int = 4
    now: datetime | None = None
    """The time the quarantine is measured from (None: the lookup's)."""


def upstream_options(settings: Settings, policy: EgressPolicy) -> UpstreamOptions:
    """The lookups the operator's settings allow, through the run's egress policy; page
    copies are kept with the release watch's (the same client and format)."""
    return UpstreamOptions(
        enabled=settings.upstream_lookups, policy=policy, cache_dir=settings.watch_cache_dir
    )


@dataclass(frozen=True)
class _Pinned:
    env: EnvironmentConfig
    lock_path: str
    pins: dict[str, str]
    indexes: tuple[str, ...]
    age: timedelta | None
    """The quarantine that applied to this environment's compile (None: none)."""


def upstream_signals(
    config: RepoConfig,
    compiled: CompileStageResult,
    mode: CompileMode,
    options: UpstreamOptions,
) -> SignalsResult:
    """Yanked pins and held-back releases in the run's locks: the new ones, the old ones
    where a compile failed. Notes say what was not applied or could not be checked."""
    envs = {e.name: e for e in config.environments}
    notes: list[str] = []
    pinned: list[_Pinned] = []
    for result in compiled.results:
        env = envs.get(result.name)
        if env is None:
            continue
        age = release_age(env.min_release_age, config.min_release_age)
        if age is not None and mode.kind == "full" and env.backend not in QUARANTINE_BACKENDS:
            notes.append(not_applied_note(env.name, env.backend, age))
        if not options.enabled:
            continue
        if env.backend == "conda":
            notes.append(f"{env.name}: {CONDA_NOT_CHECKED}")
            continue
        lock = _lock_of(env, result)
        if lock is not None:
            held_age = age if mode.kind == "full" and env.backend in QUARANTINE_BACKENDS else None
            pinned.append(
                _Pinned(env, result.lock, lock.versions(), _indexes(env, config, lock), held_age)
            )
    if not pinned:
        return SignalsResult(notes=tuple(notes))
    pages, lookup_notes = _look_up(pinned, options)
    now = options.now or datetime.now(UTC)
    yanked = tuple(y for p in pinned for y in _yanked(p, pages))
    held = tuple(h for p in pinned for h in _held_back(p, pages, now))
    return SignalsResult(yanked=yanked, held_back=held, notes=(*notes, *lookup_notes))


def _lock_of(env: EnvironmentConfig, result: LockResult) -> Lockfile | None:
    text = result.new_text if result.status != "failed" else result.old_text
    if text is None:
        return None
    try:
        return format_for(env.backend).parse_lock(text, env.lock_path)
    except (LockwardenError, ValueError):
        return None  # the compile stage reports an unreadable lock


def _indexes(env: EnvironmentConfig, config: RepoConfig, lock: Lockfile) -> tuple[str, ...]:
    """Where the environment's packages come from, as its compile saw it."""
    main = env.index_url or config.index_url or lock.index.index_url or PYPI_SIMPLE
    extras = (*config.extra_index_urls, *env.extra_index_urls, *lock.index.extra_index_urls)
    return tuple(dict.fromkeys((main, *extras)))


_Key = tuple[tuple[str, ...], str]  # (indexes, package)


def _look_up(
    pinned: list[_Pinned], options: UpstreamOptions
) -> tuple[dict[_Key, ProjectPage], list[str]]:
    """Every (indexes, package) once, a few at a time; failures become notes."""
    wanted = list(dict.fromkeys((p.indexes, name) for p in pinned for name in p.pins))
    urls = dict.fromkeys(url for indexes, _ in wanted for url in indexes)
    clients = {
        url: SimpleIndex(
            url, cache_dir=options.cache_dir, policy=options.policy, timeout_s=options.timeout_s
        )
        for url in urls
    }
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(options.max_parallel, len(wanted)))) as pool:
            found = list(pool.map(lambda key: _page(clients, key), wanted))
    finally:
        for client in clients.values():
            client.close()
    pages = {
        key: page for key, page in zip(wanted, found, strict=True) if isinstance(page, ProjectPage)
    }
    notes = [f"not checked upstream: {page}" for page in found if isinstance(page, str)]
    return pages, notes


def _page(clients: dict[str, SimpleIndex], key: _Key) -> ProjectPage | str:
    indexes, name = key
    error: IndexLookupError | None = None
    for url in indexes:
        try:
            return clients[url].project(name)
        except IndexLookupError as exc:
            if not exc.missing:
                return exc.user_message
            error = error or exc
    assert error is not None
    return error.user_message


def _yanked(pinned: _Pinned, pages: dict[_Key, ProjectPage]) -> Iterable[YankedPin]:
    for name, version in pinned.pins.items():
        page = pages.get((pinned.indexes, name))
        reason = page.yanked(version) if page is not None else None
        if reason is not None:
            yield YankedPin(pinned.env.name, pinned.lock_path, name, version, reason)


def _held_back(
    pinned: _Pinned, pages: dict[_Key, ProjectPage], now: datetime
) -> Iterable[HeldBack]:
    """Per package, the newest release newer than the locked one that the quarantine kept
    out (pre-releases only when the lock already has one, yanked ones never)."""
    if pinned.age is None:
        return
    cutoff = now - pinned.age
    for name, locked in pinned.pins.items():
        page = pages.get((pinned.indexes, name))
        current = _version(locked)
        if page is None or current is None:
            continue
        for text in reversed(page.versions()):
            candidate = Version(text)
            uploaded = page.uploaded(text)
            if candidate <= current:
                break
            if candidate.is_prerelease and not current.is_prerelease:
                continue
            if uploaded is not None and uploaded > cutoff and page.yanked(text) is None:
                yield HeldBack(pinned.env.name, name, locked, text, uploaded, uploaded + pinned.age)
                break


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
