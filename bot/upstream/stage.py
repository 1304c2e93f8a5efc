"""What the package indexes say about a run's locks: pins their index has yanked, and what
the release-age quarantine did (``bot.upstream.held``).

Each package is looked up once per run on the environment's index (then its extra indexes,
when the first has no such project), however many environments lock it, a few at a time.
A lookup that fails becomes a note naming the index and the package; nothing here fails a
run.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.advisories.blocked import spec_requirements
from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.formats import lock_or_none, read_spec
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode
from bot.results import CompileStageResult, LockResult, SignalsResult, YankedPin
from bot.sandbox.egress import EgressPolicy
from bot.settings import Settings
from bot.upstream.held import (
    Found,
    PinnedEnv,
    indexes_without_times,
    no_upload_times_note,
    quarantine_signals,
)
from bot.upstream.index import PYPI_SIMPLE, IndexLookupError, ProjectPage, SimpleIndex
from bot.upstream.quarantine import not_applied_note, release_age

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
    max_parallel: int = 8
    fresh_for_s: float = 0.0
    """A cached page younger than this is used without asking the index again."""
    now: datetime | None = None
    """The time the quarantine is measured from (None: the lookup's)."""


def upstream_options(
    settings: Settings, policy: EgressPolicy, *, reuse_recent: bool = False
) -> UpstreamOptions:
    """The lookups the operator's settings allow, through the run's egress policy; page
    copies are kept with the release watch's (the same client and format). ``reuse_recent``:
    a page younger than LOCKWARDEN_UPSTREAM_FRESH_S is taken without asking."""
    return UpstreamOptions(
        enabled=settings.upstream_lookups,
        policy=policy,
        cache_dir=settings.watch_cache_dir,
        fresh_for_s=settings.upstream_fresh_s if reuse_recent else 0.0,
    )


def upstream_signals(
    config: RepoConfig,
    compiled: CompileStageResult,
    mode: CompileMode,
    options: UpstreamOptions,
    *,
    root: Path | None = None,
) -> SignalsResult:
    """Yanked pins and held-back releases in the run's locks: the new ones, the old ones
    where a compile failed. ``root``: the tree with the specs (None: held-back releases are
    not checked against them). Notes say what was not applied or could not be checked."""
    envs = {e.name: e for e in config.environments}
    notes: list[str] = []
    pinned: list[PinnedEnv] = []
    for result in compiled.results:
        env = envs.get(result.name)
        if env is None:
            continue
        age = release_age(env.min_release_age, config.min_release_age)
        fmt = env.format
        held = age is not None and mode.kind == "full" and fmt.holds_back_by_upload_time
        if age is not None and mode.kind == "full" and not held:
            notes.append(not_applied_note(env.name, env.backend, age))
        if not options.enabled:
            if held:  # the resolver's own words are all there is to go on
                bare = indexes_without_times(result, _indexes(env, config, None))
                notes += [no_upload_times_note(env.name, env.backend, url) for url in bare]
            continue
        if not fmt.pypi_releases:
            notes.append(f"{env.name}: {CONDA_NOT_CHECKED}")
            continue
        found = _pinned(env, result, config, mode, (age, held), root)
        if found is not None:
            pinned.append(found)
    if not pinned:
        return SignalsResult(notes=tuple(notes))
    pages, lookup_notes = _look_up(pinned, options)
    now = options.now or datetime.now(UTC)
    yanked = tuple(y for p in pinned for y in _yanked(p, pages))
    quarantine = [quarantine_signals(p, _env_pages(p, pages), now) for p in pinned]
    return SignalsResult(
        yanked=yanked,
        held_back=tuple(h for q in quarantine for h in q.held_back),
        quarantine_passed=tuple(line for q in quarantine for line in q.quarantine_passed),
        notes=(*notes, *lookup_notes, *(n for q in quarantine for n in q.notes)),
    )


def _pinned(
    env: EnvironmentConfig,
    result: LockResult,
    config: RepoConfig,
    mode: CompileMode,
    quarantine: tuple[timedelta | None, bool],
    root: Path | None,
) -> PinnedEnv | None:
    """What the checks need to know of one environment (None: no readable lock).
    ``quarantine``: its ``min_release_age`` and whether the compile was held to it."""
    age, held = quarantine
    failed = result.status == "failed"
    lock = _lock_of(env, result.old_text if failed else result.new_text)
    before = _lock_of(env, result.old_text) if mode.kind == "targeted" else None
    if lock is None and not (held and failed):
        return None
    requirements = spec_requirements(root, env.backend, env.spec) if root and held else {}
    return PinnedEnv(
        env=env,
        result=result,
        pins=lock.versions() if lock is not None else {},
        indexes=_indexes(env, config, lock),
        age=age,
        held=held,
        before=before.versions() if before is not None else None,
        requirements=requirements,
        direct=_direct(root, env) if root and held and failed else frozenset(),
    )


def _direct(root: Path, env: EnvironmentConfig) -> frozenset[str]:
    try:
        return read_spec(root, env.backend, env.spec).direct_names
    except (LockwardenError, OSError, ValueError):
        return frozenset()  # the compile reports an unreadable spec


def _lock_of(env: EnvironmentConfig, text: str | None) -> Lockfile | None:
    return lock_or_none(env.backend, text, env.lock_path)


def _indexes(env: EnvironmentConfig, config: RepoConfig, lock: Lockfile | None) -> tuple[str, ...]:
    """Where the environment's packages come from, as its compile saw it."""
    in_lock = lock.index.index_url if lock is not None else None
    main = env.index_url or config.index_url or in_lock or PYPI_SIMPLE
    extras = (*config.extra_index_urls, *env.extra_index_urls)
    extras += lock.index.extra_index_urls if lock is not None else ()
    return tuple(dict.fromkeys((main, *extras)))


_Key = tuple[tuple[str, ...], str]  # (indexes, package)


def _look_up(
    pinned: list[PinnedEnv], options: UpstreamOptions
) -> tuple[dict[_Key, Found], list[str]]:
    """Every package's page, each (index, package) asked once per run whichever
    environments share it, a few at a time; failures become notes."""
    wanted = list(dict.fromkeys((p.indexes, name) for p in pinned for name in p.wanted()))
    urls = dict.fromkeys(url for indexes, _ in wanted for url in indexes)
    clients = {
        url: SimpleIndex(
            url,
            cache_dir=options.cache_dir,
            policy=options.policy,
            timeout_s=options.timeout_s,
            fresh_for_s=options.fresh_for_s,
        )
        for url in urls
    }
    workers = max(1, min(options.max_parallel, len(wanted)))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return _in_rounds(wanted, clients, pool)
    finally:
        for client in clients.values():
            client.close()


def _in_rounds(
    wanted: list[_Key], clients: dict[str, SimpleIndex], pool: ThreadPoolExecutor
) -> tuple[dict[_Key, Found], list[str]]:
    """Round n asks each package's n-th index, for those the earlier ones do not have."""
    found: dict[_Key, Found] = {}
    first_error: dict[_Key, str] = {}
    notes: list[str] = []
    pending, depth = wanted, 0
    while pending:
        asks = list(dict.fromkeys((indexes[depth], name) for indexes, name in pending))
        answers = dict(zip(asks, pool.map(lambda ask: _ask(clients, *ask), asks), strict=True))
        later: list[_Key] = []
        for key in pending:
            url = key[0][depth]
            answer = answers[(url, key[1])]
            if isinstance(answer, ProjectPage):
                found[key] = (url, answer)
            elif answer.missing and depth + 1 < len(key[0]):
                first_error.setdefault(key, answer.user_message)
                later.append(key)
            else:
                message = answer.user_message
                if answer.missing:  # no index has it: the first one's answer says so
                    message = first_error.get(key, message)
                notes.append(f"not checked upstream: {message}")
        pending, depth = later, depth + 1
    return found, list(dict.fromkeys(notes))


def _ask(clients: dict[str, SimpleIndex], url: str, name: str) -> ProjectPage | IndexLookupError:
    try:
        return clients[url].project(name)
    except IndexLookupError as exc:
        return exc


def _env_pages(pinned: PinnedEnv, pages: dict[_Key, Found]) -> dict[str, Found]:
    return {
        name: pages[(pinned.indexes, name)]
        for name in pinned.wanted()
        if (pinned.indexes, name) in pages
    }


def _yanked(pinned: PinnedEnv, pages: dict[_Key, Found]) -> Iterable[YankedPin]:
    for name, version in pinned.pins.items():
        found = pages.get((pinned.indexes, name))
        reason = found[1].yanked(version) if found is not None else None
        if reason is not None:
            yield YankedPin(pinned.env.name, pinned.result.lock, name, version, reason)
