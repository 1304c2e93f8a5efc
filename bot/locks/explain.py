"""Why a package is in a lock: the chains of ``# via`` annotations up to the spec."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.locks.lockfile import Lockfile

# Paths looked at before giving up on more chains: a bound on dense, deep annotation graphs.
_MAX_PATHS = 10_000


@dataclass(frozen=True)
class Chain:
    steps: tuple[str, ...]
    """The package first, then what required each step, ending where the lock's annotation
    ends: a spec or constraint origin as written (``-r requirements/serve.in``), or a package
    when the annotations go no further."""


def _package_name(source: str) -> str | None:
    """The canonical name a ``via`` source refers to; None for origins (``-r file``,
    ``-c file``, ``project (pyproject.toml)``)."""
    if source.startswith("-"):
        return None
    try:
        return canonicalize_name(Requirement(source).name)
    except InvalidRequirement:
        return None


def dependency_chains(lock: Lockfile, package: str, *, limit: int = 5) -> tuple[Chain, ...]:
    """Up to ``limit`` chains from ``package`` to what asked for it, shortest first.

    () when the package is not in the lock; a chain of the package alone when the lock has
    no annotations for it (``--no-annotate``).
    """
    vias: dict[str, list[str]] = {}
    for entry in lock.requirements:
        # uv may list a package once per marker: their sources add up.
        sources = vias.setdefault(entry.name, [])
        sources.extend(s for s in entry.via if s not in sources)
    start = canonicalize_name(package)
    if start not in vias or limit <= 0:
        return ()
    chains: list[Chain] = []
    queue: deque[tuple[str, ...]] = deque([(start,)])
    explored = 0
    while queue and explored < _MAX_PATHS:
        path = queue.popleft()
        explored += 1
        if len(chains) >= limit and len(path) >= sorted(len(c.steps) for c in chains)[limit - 1]:
            # Paths come by length, and a path ends in chains at least as long as itself:
            # none left can beat the ``limit`` shortest found.
            break
        extended = False
        for source in vias[path[-1]]:
            name = _package_name(source)
            if name is None or name not in vias:
                # An origin, or a package this lock does not list: the chain ends here.
                _add(chains, Chain((*path, source if name is None else name)))
                extended = True
            elif name not in path:  # no cycles
                queue.append((*path, name))
                extended = True
        if not extended:
            # No annotations, or only ones that loop back: the chain stops at this package.
            _add(chains, Chain(path))
    chains.sort(key=lambda chain: len(chain.steps))  # stable: the lock's order within a length
    return tuple(chains[:limit])


def _add(chains: list[Chain], chain: Chain) -> None:
    # ``Scikit-Learn`` and ``scikit-learn`` in one annotation lead to the same chain.
    if chain not in chains:
        chains.append(chain)


def render_chain(chain: Chain) -> str:
    """``numpy ← scikit-learn ← -r requirements/serve.in``."""
    return " ← ".join(chain.steps)
