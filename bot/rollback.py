"""Rollback: the locks of an earlier, known state, ready to be restored.

The target is any git revision (a sha, branch, tag, ``HEAD~1``, ``main^``...) or
``known-good``: the newest ledger entry on the default branch whose tests all passed and
whose locks differ from the current ones.
Every environment's lock is read at that commit; the images built from those locks are
named by the ledger's digest trailers, so the reply and the pull request can say which
digests to redeploy. Nothing here talks to GitHub: the CLI restores into a working tree,
the App opens a pull request from the same target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import RepoConfig
from bot.errors import LockwardenError
from bot.git import read_file_at, resolve_revision
from bot.ledger import LedgerEntry, known_good_sets, read_ledger
from bot.paths import read_text_if_present

KNOWN_GOOD = "known-good"
_MAX_REVISION = 200


@dataclass(frozen=True)
class RollbackTarget:
    to: str
    """What was asked for: ``known-good`` or the ref as given."""
    sha: str
    entry: LedgerEntry | None
    """The ledger entry of that commit, when it is one."""
    locks: Mapping[str, str] = field(default_factory=dict)
    """Lock path -> its text at the target, for every environment that had a lock there."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """Environment -> the image digest the ledger recorded for those locks."""
    missing: tuple[str, ...] = ()
    """Environments with no lock at the target (left as they are)."""
    dockerfiles: Mapping[str, str] = field(default_factory=dict)
    """Dockerfile path -> the current Dockerfile with the target's base-image digests and OS
    package pins put back (only those that differ)."""


def check_ref(ref: str) -> str:
    """A revision a person typed, refused only when git could take it for something else
    (an option) or it could not be one (empty, blank or control characters, too long);
    whether it names a commit is git's to say (:func:`bot.git.resolve_revision`)."""
    if ref == KNOWN_GOOD:
        return ref
    if (
        not ref
        or ref.startswith("-")
        or len(ref) > _MAX_REVISION
        or any(c.isspace() or not c.isprintable() for c in ref)
    ):
        raise LockwardenError(
            f"{ref[:80]!r} is not a git revision: give a commit sha, a branch, a tag, a "
            f"revision such as HEAD~1, or '{KNOWN_GOOD}'"
        )
    return ref


def resolve_rollback(
    root: Path,
    to: str,
    config: RepoConfig,
    *,
    resolve_ref: Callable[[str], str | None],
) -> RollbackTarget:
    """The locks to restore. ``root`` is a checkout of the default branch with its history;
    ``resolve_ref`` turns a ref into a commit sha here (fetching it if needed) or None."""
    check_ref(to)
    current = {
        path: read_text_if_present(root, path, source=path)
        for env in config.environments
        for path in env.lock_paths
    }
    if to == KNOWN_GOOD:
        good = known_good_sets(root)
        if not good:
            raise LockwardenError(
                "the ledger has no known-good set yet: merge a Lockwarden pull request whose "
                "tests pass first, or give a commit, branch or tag"
            )
        for entry in good:
            target = _target(root, to, entry.commit, entry, config)
            if target.dockerfiles or any(
                current.get(path) != text for path, text in target.locks.items()
            ):
                return target
        raise LockwardenError(
            f"the locks already match every known-good set (newest: {good[0].commit[:12]}); "
            "nothing to roll back"
        )
    sha = resolve_ref(to)
    if sha is None:
        raise LockwardenError(
            f"{to!r} names no commit in this repository: check it with git rev-parse "
            f"--verify '{to}^{{commit}}' (fetch it first if it is on a remote), or give a "
            f"commit sha, a branch, a tag or '{KNOWN_GOOD}'"
        )
    at = read_ledger(root, sha, limit=1)
    target = _target(root, to, sha, at[0] if at and at[0].commit == sha else None, config)
    if not target.locks:
        raise LockwardenError(
            f"{to} ({sha[:12]}) has none of the locks of this repository's environments"
        )
    return target


def _target(
    root: Path, to: str, sha: str, entry: LedgerEntry | None, config: RepoConfig
) -> RollbackTarget:
    locks: dict[str, str] = {}
    missing = []
    for env in config.environments:
        text = read_file_at(root, sha, env.lock_path)
        if text is None:
            missing.append(env.name)
            continue
        locks[env.lock_path] = text
        # The environment's other files (per-platform locks, the Poetry export) go back with it.
        for path in env.lock_paths[1:]:
            other = read_file_at(root, sha, path)
            if other is not None:
                locks[path] = other
    return RollbackTarget(
        to=to,
        sha=sha,
        entry=entry,
        locks=locks,
        digests=_digests(root, sha, [e.name for e in config.environments]),
        missing=tuple(missing),
        dockerfiles=_restored_dockerfiles(root, sha, config),
    )


def _restored_dockerfiles(root: Path, sha: str, config: RepoConfig) -> dict[str, str]:
    """Each Dockerfile with the image pins it had at ``sha``, where they differ now."""
    from bot.pipeline.image_pins import restore_pins

    out: dict[str, str] = {}
    for path in dict.fromkeys(e.dockerfile for e in config.environments if e.dockerfile):
        old = read_file_at(root, sha, path)
        now = read_text_if_present(root, path, source=path)
        if old is None or now is None:
            continue
        restored = restore_pins(now, old, path)
        if restored != now:
            out[path] = restored
    return out


def _digests(root: Path, sha: str, names: list[str]) -> dict[str, str]:
    """For each environment, the digest of the newest ledger entry at or before ``sha`` that
    built it: the image of exactly those locks."""
    out: dict[str, str] = {}
    for entry in read_ledger(root, sha):
        for env in entry.environments:
            if env.name in names and env.name not in out and env.digest:
                out[env.name] = env.digest
        if len(out) == len(names):
            break
    return out


def local_ref(root: Path) -> Callable[[str], str | None]:
    """Resolve any revision in a local checkout (``rev-parse --verify REV^{commit}``), for
    the CLI."""
    return lambda ref: resolve_revision(root, ref)
