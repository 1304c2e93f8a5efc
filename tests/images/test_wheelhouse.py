"""A multi-stage wheelhouse image with buildah: wheels fetched by hash in a stage of their own
and installed offline in the next, the final stage's settings before the copy of the venv.

Two builds without cache give the same layers, and a rebuild after a lock-only change keeps
every layer but the venv's (the base, the settings and the source).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.images import BuildSpec, ImageInfo
from bot.images.buildah import BuildahBuilder
from bot.images.reproducible import layer_file_differences
from bot.sandbox.egress import EgressPolicy
from tests.support.index_server import PackageIndex

pytestmark = pytest.mark.slow

EPOCH = 1700000000
DOCKERFILE = """\
FROM python:3.11-slim-bookworm AS wheels
ARG PIP_INDEX_URL
RUN python -m venv /opt/fetch
COPY requirements.txt /tmp/requirements.txt
RUN /opt/fetch/bin/pip download --no-cache-dir --require-hashes --no-deps --dest /wheels \\
    -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv
COPY --from=wheels /wheels /wheels
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \\
    --require-hashes --no-deps -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY app/ app/
"""


class Project:
    """The build context: Dockerfile, a hash-pinned lock of wheels on the index, ``app/``."""

    def __init__(self, root: Path, index: PackageIndex) -> None:
        self.root, self.index = root, index
        (root / "Dockerfile").write_text(DOCKERFILE)
        (root / "app").mkdir()
        (root / "app" / "main.py").write_text("import alpha, beta\n")

    def lock(self, **versions: str) -> None:
        lines = []
        for name, version in sorted(versions.items()):
            digest = hashlib.sha256(self.index.publish(name, version).read_bytes()).hexdigest()
            lines.append(f"{name}=={version} --hash=sha256:{digest}")
        (self.root / "requirements.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def builder(buildah_base: str) -> BuildahBuilder:
    # The index listens on 127.0.0.1: the builds reach it through the proxy, as a mirror.
    return BuildahBuilder(
        os.environ, runtime="runc", pull="never", egress=EgressPolicy(("127.0.0.1",))
    )


@pytest.fixture
def project(tmp_path: Path, package_index: PackageIndex) -> Project:
    project = Project(tmp_path, package_index)
    project.lock(alpha="1.0", beta="1.0")
    return project


@pytest.fixture
def built(builder: BuildahBuilder) -> Iterator[list[ImageInfo]]:
    """The images the test built; removed afterwards."""
    images: list[ImageInfo] = []
    yield images
    for image in images:
        builder.remove(image.reference)


def build(
    builder: BuildahBuilder, project: Project, built: list[ImageInfo], *, no_cache: bool
) -> ImageInfo:
    spec = BuildSpec(
        project.root,
        project.root / "Dockerfile",
        f"localhost/lockwarden-test/wheelhouse:{uuid.uuid4().hex[:12]}",
        build_args={"PIP_INDEX_URL": project.index.url},
        timestamp=EPOCH,
        no_cache=no_cache,
        timeout_s=600,
    )
    outcome = builder.build(spec)
    assert outcome.ok, outcome.log_tail
    assert outcome.image is not None
    built.append(outcome.image)
    return outcome.image


def test_a_wheelhouse_image_builds_the_same_layers_twice(
    builder: BuildahBuilder, project: Project, built: list[ImageInfo]
) -> None:
    first = build(builder, project, built, no_cache=True)
    second = build(builder, project, built, no_cache=True)

    assert first.layers == second.layers
    assert first.image_id == second.image_id
    assert layer_file_differences(builder, first, second) == ()
    assert (project.root / "Dockerfile").read_text() == DOCKERFILE


def test_a_lock_only_change_keeps_every_layer_but_the_venvs(
    builder: BuildahBuilder, project: Project, built: list[ImageInfo]
) -> None:
    before = build(builder, project, built, no_cache=False)
    project.lock(alpha="1.0", beta="1.1")

    after = build(builder, project, built, no_cache=False)

    # Base and settings, then the venv, then the source: only the venv's layer is new.
    assert len(after.layers) == len(before.layers)
    assert after.layers[:-2] == before.layers[:-2]
    assert after.layers[-2] != before.layers[-2]
    assert after.layers[-1] == before.layers[-1]
    assert after.image_id != before.image_id
