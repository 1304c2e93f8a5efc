"""What a repository's locks pin, as the release watch records it: (index, package, version).

Read from the default branch's locks after each refresh. The index is the one the lock or
the config names (the first of them; an extra index is not told apart), PyPI otherwise.
Conda locks name channels, not package indexes, and are left out, as are index URLs that
carry credentials (they are never stored) or that are not http(s).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bot.config import WATCH_SECURITY, EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.formats import parse_any_lock
from bot.paths import read_text_inside
from bot.upstream.index import PYPI_SIMPLE

log = logging.getLogger(__name__)

MAX_PINS = 5000
"""Pins recorded per repository at most: a lock larger than any real one is not a reason
to fill the database."""
MAX_LOCK_BYTES = 8 * 1024 * 1024

Policy = Literal["none", "security", "packages"]


@dataclass(frozen=True)
class Pin:
    index_url: str
    """The index's simple root, without a trailing slash."""
    package: str
    """Canonical name."""
    version: str


@dataclass(frozen=True)
class RepoPins:
    """One repository's watch policy and what its locks pin."""

    repo: str
    installation_id: int
    policy: Policy
    watched: tuple[str, ...]
    """Canonical names of the watched packages (``packages`` policy only)."""
    pins: tuple[Pin, ...]


def watch_policy(config: RepoConfig) -> tuple[Policy, tuple[str, ...]]:
    """The config's ``watch:`` as a policy and the canonical names it lists."""
    from packaging.utils import canonicalize_name

    if config.watch == WATCH_SECURITY:
        return "security", ()
    names = tuple(dict.fromkeys(canonicalize_name(n) for n in config.watch))
    return ("packages" if names else "none"), names


def repo_pins(root: Path, repo: str, installation_id: int, config: RepoConfig) -> RepoPins:
    """The policy and pins of the checkout at ``root`` (its default branch)."""
    policy, watched = watch_policy(config)
    pins: dict[Pin, None] = {}
    for env in config.environments:
        for pin in _env_pins(root, config, env):
            pins.setdefault(pin)
    return RepoPins(repo, installation_id, policy, watched, tuple(pins)[:MAX_PINS])


def _env_pins(root: Path, config: RepoConfig, env: EnvironmentConfig) -> list[Pin]:
    out: list[Pin] = []
    for path in env.lock_paths:
        try:
            text = read_text_inside(root, path, source=path, max_bytes=MAX_LOCK_BYTES)
            lock = parse_any_lock(text, path)
        except FileNotFoundError:
            continue  # not locked yet
        except LockwardenError as exc:
            log.info("release watch: %s left out: %s", path, exc)
            continue
        if lock.flavour == "conda":
            continue
        index = _index_url(lock.index.index_url or env.index_url or config.index_url)
        if index is None:
            continue
        out += [Pin(index, name, version) for name, version in lock.versions().items()]
    return out


def _index_url(url: str | None) -> str | None:
    """The index's root as stored; None for one that must not be stored or asked."""
    if url is None:
        return PYPI_SIMPLE
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or "$" in url:
        return None  # credentials (or a placeholder for them) never go into the database
    return url.rstrip("/")
