"""What a run keeps of its images: the newest "after" image per name, nothing else it made.

A builder whose images live in a dict (``tests.pipeline.test_build_units.FakeBuilder``)
stands for the store; the real stores are counted in ``tests/pipeline/test_build.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.images import BuildSpec
from bot.images.retention import KEPT_TAG, run_images
from tests.pipeline.test_build_units import FakeBuilder

NAME = "localhost/lockwarden/acme-serve"
HERE = Path(__file__)


def built(fake: FakeBuilder, tag: str) -> None:
    """An image built as ``NAME:tag`` (the same content for ``tag`` and ``tag-rebuild``)."""
    fake.build(BuildSpec(context=HERE.parent, dockerfile=HERE, tag=f"{NAME}:{tag}"))


def test_the_newest_after_image_replaces_the_one_before() -> None:
    fake = FakeBuilder()
    built(fake, "1111111111111111")
    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:1111111111111111"])
    first = fake.images[f"{NAME}:{KEPT_TAG}"]

    built(fake, "2222222222222222")
    built(fake, "3333333333333333")  # the "before" image of this run
    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:2222222222222222"])
        images.made_for_now(fake.images[f"{NAME}:3333333333333333"])

    assert sorted(fake.images) == [f"{NAME}:2222222222222222", f"{NAME}:{KEPT_TAG}"]
    assert fake.images[f"{NAME}:{KEPT_TAG}"].image_id != first.image_id
    assert first.image_id not in {i.image_id for i in fake.images.values()}


def test_an_image_named_elsewhere_keeps_that_name() -> None:
    fake = FakeBuilder()
    built(fake, "1111111111111111")
    fake.tag(f"{NAME}:1111111111111111", "localhost/someone/else:1")
    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:1111111111111111"])
    built(fake, "2222222222222222")

    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:2222222222222222"])

    assert "localhost/someone/else:1" in fake.images  # only names under NAME are this run's
    assert f"{NAME}:1111111111111111" not in fake.images


def test_an_interrupted_run_still_tidies_up() -> None:
    fake = FakeBuilder()
    built(fake, "1111111111111111")
    built(fake, "1111111111111111-rebuild")

    def interrupted() -> None:
        with run_images(fake) as images:
            images.keep(NAME, fake.images[f"{NAME}:1111111111111111"])
            images.made_for_now(fake.images[f"{NAME}:1111111111111111-rebuild"])
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()

    assert sorted(fake.images) == [f"{NAME}:1111111111111111", f"{NAME}:{KEPT_TAG}"]


class _UnreadableStore(FakeBuilder):
    """A store whose listing fails (buildah: another build changed it while it was read)."""

    def names(self, reference: str) -> tuple[str, ...] | None:
        return None


def test_an_image_whose_names_cannot_be_read_is_kept() -> None:
    fake = _UnreadableStore()
    built(fake, "1111111111111111")
    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:1111111111111111"])
    first = fake.images[f"{NAME}:{KEPT_TAG}"]
    fake.tag(f"{NAME}:{KEPT_TAG}", "localhost/someone/else:1")
    built(fake, "2222222222222222")

    with run_images(fake) as images:
        images.keep(NAME, fake.images[f"{NAME}:2222222222222222"])

    # Nothing is removed by id on a guess: the image another name holds stays.
    assert fake.images["localhost/someone/else:1"].image_id == first.image_id
