"""What a run keeps of the images it builds: per environment, its newest "after" image.

That image is named ``<name>:after`` besides its content tag (``<name>:<key>``): its layers
are the cache of the next lock-only rebuild, and once the lock is merged it is the next run's
"before" image (found through ``bot.images.digest.ImageCache``). The image the ``after`` name
pointed to before loses its content tags and, left without a name, is removed by id.
Everything else the run built (the reproducibility rebuild, the "before" image once compared)
is removed when the run ends, whatever the outcome: a long-running worker would otherwise
fill its disk, and every cached build step gets slower as the store grows.

Nothing is removed by pattern or forcibly: only names this run made (or the ``after`` name's
previous image), and an image a container still uses stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bot.images import Builder, ImageInfo

KEPT_TAG = "after"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """One image a run built, with its earlier stages' images (see ``BuildOutcome.stages``)."""

    image: ImageInfo
    stages: tuple[str, ...] = ()


@dataclass
class RunImages:
    """The images one run built: the "after" image to keep per image name, the others to
    remove when the run ends (:meth:`close`). Without a builder it does nothing."""

    builder: Builder | None
    kept: dict[str, Built] = field(default_factory=dict)
    made: list[Built] = field(default_factory=list)

    def keep(self, name: str, image: ImageInfo, stages: tuple[str, ...] = ()) -> None:
        """``image`` is the newest "after" image of ``name`` (``localhost/lockwarden/x``)."""
        self.kept[name] = Built(image, stages)

    def made_for_now(self, image: ImageInfo, stages: tuple[str, ...] = ()) -> None:
        """``image`` serves this run only: removed at the end unless it is a kept one."""
        self.made.append(Built(image, stages))

    def discard(self, image: ImageInfo) -> None:
        """Remove ``image`` now (it served its purpose); its stages go at :meth:`close`."""
        if self.builder is not None:
            self.builder.remove(image.reference)

    def close(self) -> None:
        """Name each kept image ``<name>:after`` (and its stages ``<name>:after-stage-<n>``),
        dropping the images those names had; then remove the others this run made."""
        builder = self.builder
        if builder is None:
            return
        kept: set[str] = set()
        for name, built in self.kept.items():
            kept |= keep_newest(builder, name, built)
        names = {built.image.reference for built in self.kept.values()}
        for built in self.made:
            if built.image.reference not in names:
                # Of an image also kept (the same content), only this name goes.
                builder.untag(built.image.reference)
            for stage in built.stages:
                if not any(_same_id(stage, k) for k in kept) and builder.names(stage) == ():
                    builder.untag(stage)  # nameless: only by id; stays while a container uses it
        self.kept, self.made = {}, []


@contextmanager
def run_images(builder: Builder | None) -> Iterator[RunImages]:
    """The images of the block's builds, tidied (:meth:`RunImages.close`) however it ends:
    a failure, a timeout or an interrupt."""
    images = RunImages(builder)
    try:
        yield images
    finally:
        images.close()


def keep_newest(builder: Builder, name: str, built: Built) -> set[str]:
    """Point ``<name>:after`` at the image and ``<name>:after-stage-<n>`` at its stages; the
    images these names pointed at lose the names under ``name`` (content tags of earlier
    runs) and, left nameless, are removed by id. The ids now kept."""
    targets = [(KEPT_TAG, built.image.reference)]
    targets += [(f"{KEPT_TAG}-stage-{n}", stage) for n, stage in enumerate(built.stages, 1)]
    kept: set[str] = set()
    for tag, reference in targets:
        kept |= _move(builder, name, f"{name}:{tag}", reference)
    # Stages of an earlier Dockerfile that had more of them.
    for n in range(len(built.stages) + 1, len(built.stages) + 9):
        stale = builder.inspect(f"{name}:{KEPT_TAG}-stage-{n}")
        if stale is None:
            break
        builder.untag(f"{name}:{KEPT_TAG}-stage-{n}")
        _drop(builder, name, stale.image_id)
    return kept


def _move(builder: Builder, name: str, kept: str, reference: str) -> set[str]:
    """Name ``reference`` ``kept``, then drop the image ``kept`` named before."""
    previous = builder.inspect(kept)
    if not builder.tag(reference, kept):
        log.warning("could not name %s %s: it stays under its own name", reference, kept)
        return set()
    current = builder.inspect(kept)
    if current is None:  # pragma: no cover - removed by another process just now
        return set()
    if previous is not None and previous.image_id != current.image_id:
        _drop(builder, name, previous.image_id)
    return {current.image_id}


def _drop(builder: Builder, name: str, image_id: str) -> None:
    """Remove the names under ``name`` of the image ``image_id``, then the image by id if
    no name is left (a container still using it keeps it)."""
    for other in builder.names(image_id) or ():
        if other.startswith(f"{name}:"):
            builder.untag(other)
    if builder.names(image_id) == ():  # None: the store could not say; keep it
        builder.untag(image_id)


def _same_id(short: str, full: str) -> bool:
    return full.removeprefix("sha256:").startswith(short.removeprefix("sha256:"))
