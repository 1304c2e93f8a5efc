"""The signals stage, after compile: what advisory services and indexes say about the locks.

For each compiled environment, the advisories of its lock before the run (the workspace's)
and after it (the new lock; the old one where the compile failed or changed nothing) are
compared: which the run fixes, which it leaves and which it introduces, which no version
the spec allows can fix (with the spec line that rules the fixes out), and which the ignore
file sets aside. Every (package, version) of every lock is looked up once per run.

``collect_signals`` merges these with the upstream index's signals (yanked versions, versions
a release-age quarantine held back) into the run's one ``SignalsResult``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from bot.advisories.audit import (
    CONDA_SKIPPED,
    advisories_of,
    lookup_notes,
    pinned_packages,
    split_ignored,
)
from bot.advisories.blocked import blocked_fixes, environment_requirements
from bot.advisories.service import Lookup, ServiceConfig, lookup_advisories
from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.formats import lock_or_none
from bot.locks.ignore import AdvisoryIgnore, read_advisory_ignores
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode
from bot.results import (
    Advisory,
    CompileStageResult,
    EnvironmentAdvisories,
    LockResult,
    SignalsResult,
)
from bot.upstream.stage import UpstreamOptions, upstream_signals


@dataclass(frozen=True)
class _Locks:
    """One environment's lock before and after the run (None: none, or unreadable)."""

    env: EnvironmentConfig
    result: LockResult
    before: Lockfile | None
    after: Lockfile | None


def collect_signals(
    root: Path,
    config: RepoConfig,
    compiled: CompileStageResult,
    service: ServiceConfig,
    *,
    today: date | None = None,
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass, safe as a default
    upstream_options: UpstreamOptions | None = None,
) -> SignalsResult:
    """Every signal about the run's locks. ``root``: the tree with the new locks and the
    specs (the staging tree); the old locks come from the compile results."""
    advisories = advisory_signals(root, config, compiled, service, today=today)
    # The upstream index's signals (yanked pins, quarantined releases).
    upstream = upstream_signals(
        config, compiled, mode, upstream_options or UpstreamOptions(), root=root
    )
    return merge_signals(advisories, upstream)


def merge_signals(*parts: SignalsResult) -> SignalsResult:
    """One result from the parts each source filled (their fields never overlap in kind)."""
    return SignalsResult(
        advisories=tuple(a for p in parts for a in p.advisories),
        yanked=tuple(y for p in parts for y in p.yanked),
        held_back=tuple(h for p in parts for h in p.held_back),
        quarantine_passed=tuple(q for p in parts for q in p.quarantine_passed),
        notes=tuple(n for p in parts for n in p.notes),
    )


def compiled_environments(
    config: RepoConfig, compiled: CompileStageResult
) -> list[tuple[EnvironmentConfig, LockResult]]:
    """Each compiled environment's config and result, in compile order."""
    envs = {e.name: e for e in config.environments}
    return [(envs[r.name], r) for r in compiled.results if r.name in envs]


def advisory_signals(
    root: Path,
    config: RepoConfig,
    compiled: CompileStageResult,
    service: ServiceConfig,
    *,
    today: date | None = None,
) -> SignalsResult:
    """The advisories fixed, left and introduced by the run in each compiled environment.
    An unreachable service leaves ``advisories`` empty with a note; it never raises for it."""
    locks: list[_Locks] = []
    notes: list[str] = []
    for env, result in compiled_environments(config, compiled):
        if not env.format.pypi_releases:
            notes.append(f"{env.name}: {CONDA_SKIPPED}")
            continue
        locks.append(_read_locks(env, result))
    if not locks:
        return SignalsResult(notes=tuple(notes))
    packages = [
        p for lk in locks for lock in (lk.before, lk.after) if lock for p in pinned_packages(lock)
    ]
    lookup = lookup_advisories(packages, service)
    notes.extend(lookup_notes(lookup))
    if not lookup.checked:
        return SignalsResult(notes=tuple(notes))
    ignores = _ignores(root, notes)
    day = today or date.today()
    environments = tuple(_compare(root, config, lk, lookup, ignores, day) for lk in locks)
    return SignalsResult(advisories=environments, notes=tuple(notes))


def _read_locks(env: EnvironmentConfig, result: LockResult) -> _Locks:
    after_text = result.new_text if result.status != "failed" else None
    return _Locks(
        env,
        result,
        _parse(env, result.old_text),
        _parse(env, after_text if after_text is not None else result.old_text),
    )


def _parse(env: EnvironmentConfig, text: str | None) -> Lockfile | None:
    return lock_or_none(env.backend, text, env.lock_path)


def _ignores(root: Path, notes: list[str]) -> tuple[AdvisoryIgnore, ...]:
    try:
        return read_advisory_ignores(root)
    except LockwardenError as exc:
        notes.append(f"the advisory ignore rules were not applied: {exc}")
        return ()


def _compare(
    root: Path,
    config: RepoConfig,
    locks: _Locks,
    lookup: Lookup,
    ignores: Sequence[AdvisoryIgnore],
    today: date,
) -> EnvironmentAdvisories:
    before, _ = split_ignored(
        advisories_of(locks.before, lookup) if locks.before else (), ignores, today
    )
    after, ignored = split_ignored(
        advisories_of(locks.after, lookup) if locks.after else (), ignores, today
    )
    before_keys = {_key(a) for a in before}
    after_keys = {_key(a) for a in after}
    left = tuple(a for a in after if _key(a) in before_keys)
    introduced = tuple(a for a in after if _key(a) not in before_keys)
    requirements = environment_requirements(root, config, locks.env)
    return EnvironmentAdvisories(
        environment=locks.env.name,
        lock=locks.result.lock,
        fixed=tuple(a for a in before if _key(a) not in after_keys),
        left=left,
        introduced=introduced,
        blocked=blocked_fixes((*left, *introduced), requirements),
        ignored=ignored,
    )


def _key(advisory: Advisory) -> tuple[str, str]:
    """The same advisory of the same package, whatever version it affects."""
    return (advisory.package, advisory.id)


def describe_signals(
    signals: SignalsResult, environment: str
) -> tuple[Literal["done", "skipped"], str]:
    """The progress state and detail of one environment's signals step: ``skipped`` with the
    reason when advisories were not checked, else what was found (``1 fixed, 2 left``)."""
    found = next((a for a in signals.advisories if a.environment == environment), None)
    if found is None:
        return "skipped", "advisories not checked"
    counts = [
        (len(found.fixed), "fixed"),
        (len(found.left), "left"),
        (len(found.introduced), "introduced"),
        (len(found.ignored), "ignored"),
    ]
    detail = ", ".join(f"{n} {what}" for n, what in counts if n)
    return "done", detail or "no advisories"
