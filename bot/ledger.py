"""The ledger: git trailers on every bot commit, read back from ``git log``.

No database: each lock refresh commit records which environments it locked (and the hash of
each lock), the image digests built from them and the test outcomes. A ledger commit that
is reachable from the default branch and whose tests all passed is a *known-good* set, the
state a rollback can return to.

    Lockwarden-Mode: full
    Lockwarden-Env: serve requirements/serve.txt sha256:5f1c...
    Lockwarden-Digest-serve: sha256:0a1b...
    Lockwarden-Tests: serve=passed, dev=passed
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import LockwardenError
from bot.git import read_log

PREFIX = "Lockwarden-"
MODE = "Lockwarden-Mode"
ENV = "Lockwarden-Env"
DIGEST = "Lockwarden-Digest-"
TESTS = "Lockwarden-Tests"
_FIELD = "\x1f"
_RECORD = "\x1e"
PASSING = frozenset({"passed", "skipped"})


@dataclass(frozen=True)
class EnvRecord:
    """One environment of a ledger commit: its ``Lockwarden-Env`` line, digest and tests."""

    name: str
    lock: str
    lock_sha256: str
    digest: str | None = None
    tests: str | None = None

    @property
    def passed(self) -> bool:
        """Its tests passed (or none were configured)."""
        return self.tests is None or self.tests in PASSING


@dataclass(frozen=True)
class LedgerEntry:
    commit: str
    date: str
    subject: str
    mode: str | None
    environments: tuple[EnvRecord, ...]

    @property
    def known_good(self) -> bool:
        """Every environment's tests passed (or none were configured)."""
        return bool(self.environments) and all(env.passed for env in self.environments)


@dataclass(frozen=True)
class LockRecord:
    """What a refresh commits for one environment; input to :func:`trailers`."""

    name: str
    lock: str
    text: str
    digest: str | None = None
    tests: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    """Every file the environment's refresh commits (path, text): the lock, its other
    platforms' locks, its export."""


def lock_sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def trailers(mode: str, locks: Sequence[LockRecord]) -> list[tuple[str, str]]:
    """The trailers of a refresh commit, in a stable order."""
    out = [(MODE, mode)]
    out += [(ENV, f"{r.name} {r.lock} {lock_sha256(r.text)}") for r in locks]
    out += [(f"{DIGEST}{r.name}", r.digest) for r in locks if r.digest]
    tested = [f"{r.name}={r.tests}" for r in locks if r.tests]
    if tested:
        out.append((TESTS, ", ".join(tested)))
    return out


def commit_message(subject: str, body: str, trailer_lines: Sequence[tuple[str, str]]) -> str:
    """``subject``, a blank line, ``body``, a blank line, then the trailers (git's format)."""
    for key, value in trailer_lines:
        if "\n" in value or "\n" in key:
            raise LockwardenError(f"trailer {key!r} cannot span lines")
    parts = [subject.strip()]
    if body.strip():
        parts.append(body.strip())
    parts.append("\n".join(f"{key}: {value}" for key, value in trailer_lines))
    return "\n\n".join(parts) + "\n"


def read_ledger(root: Path, ref: str = "HEAD", *, limit: int = 500) -> list[LedgerEntry]:
    """Ledger entries reachable from ``ref`` (any git revision), newest first; none in a
    repository with no commits yet. Raises :class:`bot.git.GitError` outside a repository
    or for a revision that names no commit."""
    fmt = _FIELD.join(("%H", "%cI", "%s", "%(trailers:unfold,only)")) + _RECORD
    log = read_log(root, ref, fmt, limit=limit)
    entries = []
    for record in (log or "").split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        commit, date, subject, raw = [*record.split(_FIELD), "", "", "", ""][:4]
        entry = parse_trailers(commit, date, subject, raw)
        if entry is not None:
            entries.append(entry)
    return entries


def known_good_sets(root: Path, ref: str = "HEAD") -> list[LedgerEntry]:
    """The known-good ledger entries reachable from ``ref``, newest first."""
    return [entry for entry in read_ledger(root, ref) if entry.known_good]


def parse_trailers(commit: str, date: str, subject: str, raw: str) -> LedgerEntry | None:
    """A ledger entry from one commit's trailer block; None when it carries no ledger."""
    values: dict[str, list[str]] = {}
    for line in raw.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith(PREFIX):
            values.setdefault(key.strip(), []).append(value.strip())
    if ENV not in values:
        return None
    tests = _pairs(values.get(TESTS, []))
    envs = []
    for env_line in values[ENV]:
        parts = env_line.split()
        if len(parts) != 3:
            continue
        name, lock, digest = parts
        envs.append(
            EnvRecord(
                name=name,
                lock=lock,
                lock_sha256=digest,
                digest=_first(values, f"{DIGEST}{name}"),
                tests=tests.get(name),
            )
        )
    return LedgerEntry(
        commit=commit,
        date=date,
        subject=subject,
        mode=_first(values, MODE),
        environments=tuple(envs),
    )


def _first(values: Mapping[str, list[str]], key: str) -> str | None:
    found = values.get(key)
    return found[0] if found else None


def _pairs(lines: Sequence[str]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        for item in line.split(","):
            name, sep, status = item.strip().partition("=")
            if sep:
                out[name] = status
    return out
