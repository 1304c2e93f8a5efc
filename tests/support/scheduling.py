"""How pytest-xdist shares the suite between its workers (``-n 2``, ``--dist=loadfile``).

A test file runs whole on one worker, in its own order, so its module fixtures (a built
image, a registry, a fake GitHub) are made once.

Every worker shares buildah's image store, and buildah 1.28 fails a cached build
(``bud --layers``, as Lockwarden builds) with "layer not known" when another process removes
an image while the build looks for cached layers. So the files that build with buildah
(those that ask for the ``buildah_base`` fixture) form one unit of work, run one after
another on a single worker, and each of their tests holds :data:`STORE_LOCK` from setup to
teardown. The exception is a file in :data:`UNCACHED_BUILDS`: its builds look up no cache,
so it runs beside the others and takes the lock only for its teardown, where it removes its
image. Separate pytest runs on one machine take the same lock.

Docker's daemon orders its own clients, and each worker has a PostgreSQL cluster of its own,
so neither needs this.
"""

from __future__ import annotations

import fcntl
import functools
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest

# pytest-xdist ships no type information.
from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

from tests.support.base_image import cache_dir, locked

BUILDAH_SCOPE = "buildah image store"
BUILDAH_FIXTURE = "buildah_base"
STORE_LOCK = "buildah-store.lock"
TURNSTILE = "buildah-store.turnstile"
# Builds ``deploy/Dockerfile`` once without --layers, and removes that image at the end.
UNCACHED_BUILDS = frozenset({"tests/deploy/test_image.py"})


@functools.cache
def builds_with_buildah(path: Path) -> bool:
    """Whether the test file at ``path`` asks for the buildah base image."""
    try:
        return BUILDAH_FIXTURE in path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def scope_of(rootpath: Path, nodeid: str) -> str:
    """The unit of work of a test: its file, or :data:`BUILDAH_SCOPE`."""
    path = nodeid.split("::", 1)[0]
    if path not in UNCACHED_BUILDS and builds_with_buildah(rootpath / path):
        return BUILDAH_SCOPE
    return path


def store_lock_phase(item: pytest.Item) -> Literal["all", "teardown", None]:
    """When ``item`` holds :data:`STORE_LOCK`: its whole run, its teardown, or never."""
    if not builds_with_buildah(item.path):
        return None
    relative = item.path.relative_to(item.config.rootpath).as_posix()
    return "teardown" if relative in UNCACHED_BUILDS else "all"


@contextmanager
def store_locked(item: pytest.Item, phase: Literal["all", "teardown"]) -> Iterator[None]:
    """Hold :data:`STORE_LOCK` when ``phase`` is when ``item`` needs it.

    ``flock`` wakes waiters in no order, and the buildah worker takes the lock again as soon
    as it lets go: a waiter first holds :data:`TURNSTILE`, which the next test must pass too,
    so it gets the store after the test in progress."""
    if store_lock_phase(item) != phase:
        yield
        return
    cache = cache_dir()
    with locked(cache / TURNSTILE):
        store = (cache / STORE_LOCK).open("a")
        fcntl.flock(store, fcntl.LOCK_EX)
    try:
        yield
    finally:
        store.close()  # and with it the lock


class FileScheduling(LoadFileScheduling):  # type: ignore[misc]  # an untyped base
    """``--dist=loadfile``, with the buildah test files in one unit of work, handed out
    first, then the uncached builds: the longest units start first, so neither is left
    running alone at the end."""

    _first_units_placed = False

    def _split_scope(self, nodeid: str) -> str:
        config: pytest.Config = self.config
        return scope_of(config.rootpath, nodeid)

    def _assign_work_unit(self, node: object) -> None:
        if not self._first_units_placed:
            self._first_units_placed = True
            queue: OrderedDict[str, object] = self.workqueue
            for scope in (*sorted(UNCACHED_BUILDS, reverse=True), BUILDAH_SCOPE):
                if scope in queue:
                    queue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)
