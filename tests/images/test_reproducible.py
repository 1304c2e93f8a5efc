"""Reproducible layers: SOURCE_DATE_EPOCH declared in every stage of the Dockerfile a builder
gets, and the files that differ between two builds named.

The real builds install a hash-pinned lock with pip from a local index on a Debian Python
base, with a Dockerfile that declares nothing: two builds without cache give the same layers.
A step that writes the date gives different ones, and the report names the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.images import BuildSpec, ImageInfo
from bot.images.buildah import BuildahBuilder
from bot.images.reproducible import (
    declare_build_arg,
    declaring_source_date_epoch,
    differing_paths,
    layer_file_differences,
    oci_layers,
)
from bot.sandbox.egress import EgressPolicy
from tests.support.index_server import PackageIndex

# The package index of these tests listens on 127.0.0.1; builds reach it through the proxy.
LOCAL = EgressPolicy(("127.0.0.1",))
EPOCH = 1700000000

# -- the Dockerfile a builder gets -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM a\nRUN x\n", "FROM a\nARG SOURCE_DATE_EPOCH\nRUN x\n"),
        ("FROM a", "FROM a\nARG SOURCE_DATE_EPOCH\n"),  # no final newline
        (
            "# syntax=docker/dockerfile:1\nARG BASE=a\nFROM ${BASE} AS build\nRUN x\n"
            "FROM \\\n  b\nCOPY --from=build /x /x\n",
            "# syntax=docker/dockerfile:1\nARG BASE=a\nFROM ${BASE} AS build\n"
            "ARG SOURCE_DATE_EPOCH\nRUN x\nFROM \\\n  b\nARG SOURCE_DATE_EPOCH\n"
            "COPY --from=build /x /x\n",
        ),
        (
            "# escape=`\nFROM a `\n  AS b\r\nRUN x\r\n",
            "# escape=`\nFROM a `\n  AS b\r\nARG SOURCE_DATE_EPOCH\nRUN x\r\n",
        ),
        ("RUN x\n", "RUN x\n"),  # no stage: nothing to declare in
    ],
)
def test_declare_build_arg(text: str, expected: str) -> None:
    assert declare_build_arg(text, "SOURCE_DATE_EPOCH") == expected


def test_the_copy_keeps_its_ignore_file_and_leaves_the_original(tmp_path: Path) -> None:
    original = tmp_path / "Dockerfile.serve"
    original.write_text("FROM a\nCOPY . /app\n")
    (tmp_path / "Dockerfile.serve.dockerignore").write_text("secrets/\n")

    with declaring_source_date_epoch(original) as copy:
        assert copy != original
        assert copy.name == "Dockerfile.serve"
        assert copy.read_text() == "FROM a\nARG SOURCE_DATE_EPOCH\nCOPY . /app\n"
        assert copy.with_name("Dockerfile.serve.dockerignore").read_text() == "secrets/\n"
    assert not copy.exists()
    assert original.read_text() == "FROM a\nCOPY . /app\n"


def test_an_unreadable_dockerfile_is_handed_over_as_it_is(tmp_path: Path) -> None:
    binary = tmp_path / "Dockerfile"
    binary.write_bytes(b"FROM a\n\xff\n")

    with declaring_source_date_epoch(binary) as copy:
        assert copy == binary
    with declaring_source_date_epoch(tmp_path / "missing") as copy:
        assert copy == tmp_path / "missing"


# -- comparing layer tarballs ----------------------------------------------------------------


def layer(path: Path, files: dict[str, tuple[bytes, int]], *, compress: bool = False) -> Path:
    """A layer tarball of ``files`` (name -> (content, mtime))."""
    with tarfile.open(path, "w:gz" if compress else "w") as tar:
        for name, (content, mtime) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), mtime, 0o644
            tar.addfile(info, io.BytesIO(content))
    return path


def test_differing_paths(tmp_path: Path) -> None:
    first = layer(
        tmp_path / "a.tar",
        {"same": (b"x", 1), "stamp": (b"12:00", 1), "touched": (b"y", 1), "gone": (b"", 1)},
    )
    second = layer(
        tmp_path / "b.tar.gz",
        {"same": (b"x", 1), "stamp": (b"12:01", 1), "touched": (b"y", 2), "new": (b"", 1)},
        compress=True,
    )

    assert differing_paths(first, second) == [
        "/gone: only in the first build",
        "/new: only in the second build",
        "/stamp: content",
        "/touched: mtime",
    ]
    assert differing_paths(first, first) == []


def test_an_unreadable_layer_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.tar").write_bytes(b"not a tarball")
    good = layer(tmp_path / "good.tar", {"a": (b"", 0)})

    with pytest.raises(LockwardenError, match=r"bad.tar is not a readable layer"):
        differing_paths(tmp_path / "bad.tar", good)


def test_oci_layers_of_a_layout_and_of_a_docker_archive(tmp_path: Path) -> None:
    blobs = tmp_path / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    manifest = json.dumps({"layers": [{"digest": "sha256:l1"}, {"digest": "sha256:l2"}]})
    digest = hashlib.sha256(manifest.encode()).hexdigest()
    (blobs / digest).write_text(manifest)
    (tmp_path / "oci" / "index.json").write_text(
        json.dumps({"manifests": [{"digest": f"sha256:{digest}"}]})
    )
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "manifest.json").write_text(json.dumps([{"Layers": ["blobs/sha256/l1"]}]))

    assert oci_layers(tmp_path / "oci") == (blobs / "l1", blobs / "l2")
    assert oci_layers(saved) == (saved / "blobs" / "sha256" / "l1",)
    with pytest.raises(LockwardenError, match="cannot be read"):
        oci_layers(tmp_path)


# -- real builds -----------------------------------------------------------------------------

PIP_DOCKERFILE = """\
FROM python:3.11-slim-bookworm
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
"""
STAMP_DOCKERFILE = "FROM python:3.11-slim-bookworm\nRUN date +%s%N > /stamp && echo same > /same\n"


@pytest.fixture
def builder(buildah_base: str) -> BuildahBuilder:
    return BuildahBuilder(os.environ, runtime="runc", pull="never", egress=LOCAL)


def build_twice(builder: BuildahBuilder, context: Path) -> tuple[ImageInfo, ImageInfo]:
    """Two builds of ``context`` without cache, each with the fixed timestamp."""
    images = []
    for _ in range(2):
        tag = f"localhost/lockwarden-test/reproducible:{uuid.uuid4().hex[:12]}"
        spec = BuildSpec(
            context, context / "Dockerfile", tag, timestamp=EPOCH, no_cache=True, timeout_s=600
        )
        outcome = builder.build(spec)
        assert outcome.ok, outcome.log_tail
        assert outcome.image is not None
        images.append(outcome.image)
    return images[0], images[1]


@pytest.mark.slow
def test_a_lock_install_builds_the_same_layers_twice(
    builder: BuildahBuilder, package_index: PackageIndex, tmp_path: Path
) -> None:
    lock = [f"--index-url {package_index.url}"]
    for name in ("alpha", "beta"):
        wheel = package_index.publish(name, "1.0")
        lock.append(f"{name}==1.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    (tmp_path / "requirements.txt").write_text("\n".join(lock) + "\n")
    (tmp_path / "Dockerfile").write_text(PIP_DOCKERFILE)

    first, second = build_twice(builder, tmp_path)
    try:
        assert first.layers == second.layers
        assert first.image_id == second.image_id
        assert layer_file_differences(builder, first, second) == ()
    finally:
        builder.remove(first.reference)
        builder.remove(second.reference)
    assert (tmp_path / "Dockerfile").read_text() == PIP_DOCKERFILE


@pytest.mark.slow
def test_a_step_writing_the_date_is_named(builder: BuildahBuilder, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(STAMP_DOCKERFILE)

    first, second = build_twice(builder, tmp_path)
    try:
        assert first.layers[0] == second.layers[0]
        assert first.layers[1] != second.layers[1]
        assert layer_file_differences(builder, first, second) == ("layer 2: /stamp: content",)
    finally:
        builder.remove(first.reference)
        builder.remove(second.reference)


def test_an_image_that_cannot_be_exported_is_one_line(buildah_base: str) -> None:
    real = BuildahBuilder(os.environ, runtime="runc", pull="never")
    missing = f"localhost/lockwarden-test/no-such-image:{uuid.uuid4().hex[:12]}"
    first = ImageInfo(missing, "sha256:" + "a" * 64, 1, ("sha256:1", "sha256:2"))
    second = ImageInfo(missing, "sha256:" + "b" * 64, 1, ("sha256:1", "sha256:3"))

    (line,) = layer_file_differences(real, first, second)

    assert line.startswith(f"the layers' files could not be compared: exporting {missing} failed")
