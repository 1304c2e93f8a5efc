"""Content keys of image inputs, and the cache of images built from them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from bot.images import ImageInfo
from bot.images.digest import ImageCache, input_key

DOCKERFILE = """\
FROM python:3.11-slim-bookworm
COPY requirements/serve.txt /tmp/requirements.txt
RUN pip install --require-hashes -r /tmp/requirements.txt
COPY app/ /app/
"""


def make_context(root: Path) -> Path:
    (root / "requirements").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "requirements" / "serve.txt").write_text("beta==1.0.1 --hash=sha256:aaaa\n")
    (root / "app" / "main.py").write_text("print('hello')\n")
    (root / "app" / "run.sh").write_text("#!/bin/sh\nexec python /app/main.py\n")
    return root


def key(
    context: Path,
    *,
    dockerfile: Path | None = None,
    build_args: dict[str, str] | None = None,
    builder: str = "buildah",
    timestamp: int | None = 0,
) -> str:
    return input_key(
        context,
        dockerfile or context / "Dockerfile",
        build_args if build_args is not None else {"SOURCE_DATE_EPOCH": "0"},
        builder,
        timestamp,
    )


@pytest.fixture
def context(tmp_path: Path) -> Path:
    return make_context(tmp_path / "repo")


def test_key_is_a_stable_sha256(context: Path) -> None:
    first = key(context)
    assert len(first) == 64
    assert int(first, 16) >= 0
    assert key(context) == first


def edit(relative: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return apply


def chmod(relative: str, mode: int) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / relative).chmod(mode)

    return apply


def remove(relative: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / relative).unlink()

    return apply


def rename(relative: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / relative).rename(root / new)

    return apply


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(edit("Dockerfile", DOCKERFILE + "USER nobody\n"), id="dockerfile"),
        pytest.param(edit("requirements/serve.txt", "beta==1.0.2 --hash=sha256:bbbb\n"), id="lock"),
        pytest.param(edit("app/main.py", "print('hello!')\n"), id="source"),
        pytest.param(edit("app/main.py", "print('hello')\n\n"), id="one-byte"),
        pytest.param(edit("app/new.py", ""), id="new-empty-file"),
        pytest.param(edit("docs/deep/nested/README.md", "x"), id="new-nested-file"),
        pytest.param(chmod("app/run.sh", 0o755), id="file-mode"),
        pytest.param(remove("app/main.py"), id="file-removed"),
        pytest.param(rename("app/main.py", "app/main2.py"), id="file-renamed"),
        pytest.param(edit(".dockerignore", "*.md\n"), id="dockerignore"),
        pytest.param(edit(".gitignore", "*.pyc\n"), id="dotfile"),
    ],
)
def test_key_changes_with_the_context(context: Path, change: Callable[[Path], None]) -> None:
    before = key(context)
    change(context)
    assert key(context) != before


def test_key_changes_with_a_dockerfile_outside_the_context(tmp_path: Path) -> None:
    context = make_context(tmp_path / "repo")
    outside = tmp_path / "Dockerfile.serve"
    outside.write_text(DOCKERFILE)
    before = key(context, dockerfile=outside)

    outside.write_text(DOCKERFILE + "ENV A=1\n")

    assert key(context, dockerfile=outside) != before


def test_file_content_does_not_bleed_into_the_next_name(tmp_path: Path) -> None:
    first = tmp_path / "one"
    first.mkdir()
    (first / "Dockerfile").write_text("FROM x\n")
    (first / "a").write_text("content")
    second = tmp_path / "two"
    second.mkdir()
    (second / "Dockerfile").write_text("FROM x\n")
    (second / "a").write_text("")
    (second / "b").write_text("content")
    assert key(first) != key(second)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"build_args": {"SOURCE_DATE_EPOCH": "1"}}, id="arg-value"),
        pytest.param(
            {"build_args": {"SOURCE_DATE_EPOCH": "0", "PIP_INDEX_URL": "http://i/simple"}},
            id="arg-added",
        ),
        pytest.param({"build_args": {}}, id="no-args"),
        pytest.param({"builder": "docker"}, id="builder"),
        pytest.param({"timestamp": 1700000000}, id="timestamp"),
        pytest.param({"timestamp": None}, id="no-timestamp"),
    ],
)
def test_key_changes_with_the_build_parameters(context: Path, other: dict[str, object]) -> None:
    assert key(context, **other) != key(context)  # type: ignore[arg-type]


def test_build_arg_order_does_not_matter(context: Path) -> None:
    assert key(context, build_args={"A": "1", "B": "2"}) == key(
        context, build_args={"B": "2", "A": "1"}
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(edit(".git/HEAD", "ref: refs/heads/other\n"), id="git"),
        pytest.param(edit(".git/objects/ab/cdef", "blob"), id="git-object"),
        pytest.param(edit("app/__pycache__/main.cpython-311.pyc", "\x00"), id="pycache"),
        pytest.param(edit("__pycache__/x.pyc", "\x00"), id="top-pycache"),
        pytest.param(edit(".venv/bin/python", "#!"), id="venv"),
        pytest.param(edit(".mypy_cache/3.11/x.json", "{}"), id="mypy-cache"),
        pytest.param(edit(".pytest_cache/v/cache/lastfailed", "{}"), id="pytest-cache"),
        pytest.param(edit(".hg/store/data", "x"), id="hg"),
    ],
)
def test_key_ignores_tool_directories(context: Path, change: Callable[[Path], None]) -> None:
    (context / ".git").mkdir()
    (context / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = key(context)
    change(context)
    assert key(context) == before


def test_identical_copy_elsewhere_has_the_same_key(tmp_path: Path) -> None:
    original = make_context(tmp_path / "checkout")
    (original / "app" / "run.sh").chmod(0o755)
    copy = tmp_path / "staging" / "nested" / "repo"
    shutil.copytree(original, copy)
    (copy / ".git").mkdir()  # a staging copy may differ in what is skipped
    (copy / ".git" / "config").write_text("[core]\n")

    assert key(copy) == key(original)


def test_modification_times_do_not_matter(context: Path) -> None:
    before = key(context)
    os.utime(context / "app" / "main.py", (0, 0))
    assert key(context) == before


def test_symlink_target_is_hashed_not_followed(tmp_path: Path) -> None:
    context = make_context(tmp_path / "repo")
    outside = tmp_path / "outside.txt"
    outside.write_text("one")
    link = context / "app" / "data.txt"
    link.symlink_to(outside)
    before = key(context)

    outside.write_text("two")  # COPY copies the link, not what it points to
    assert key(context) == before

    link.unlink()
    link.symlink_to(tmp_path / "elsewhere.txt")
    assert key(context) != before


def test_symlink_differs_from_a_file_with_its_target_as_content(tmp_path: Path) -> None:
    with_link = make_context(tmp_path / "a")
    (with_link / "app" / "link").symlink_to("main.py")
    with_file = make_context(tmp_path / "b")
    (with_file / "app" / "link").write_text("main.py")
    assert key(with_link) != key(with_file)


def test_dangling_symlink_is_hashed(context: Path) -> None:
    link = context / "app" / "gone"
    link.symlink_to("no-such-file")
    before = key(context)

    link.unlink()
    link.symlink_to("another-missing-file")

    assert key(context) != before


def test_symlink_to_a_directory_is_hashed_not_followed(tmp_path: Path) -> None:
    context = make_context(tmp_path / "repo")
    (context / "models" / "v1").mkdir(parents=True)
    (context / "models" / "v2").mkdir()
    (context / "models" / "v1" / "weights").write_text("one")
    (context / "models" / "v2" / "weights").write_text("two")
    (context / "models" / "current").symlink_to("v1")
    before = key(context)

    (context / "models" / "current").unlink()
    (context / "models" / "current").symlink_to("v2")

    assert key(context) != before


def test_link_to_a_tool_directory_is_ignored(tmp_path: Path) -> None:
    context = make_context(tmp_path / "repo")
    (tmp_path / "venv-a").mkdir()
    before = key(context)

    (context / ".venv").symlink_to(tmp_path / "venv-a")

    assert key(context) == before


# -- the image cache -------------------------------------------------------------------------

IMAGE = ImageInfo(
    reference="localhost/lockwarden/ml-service-serve:0123456789abcdef",
    image_id="sha256:" + "a" * 64,
    size=183_000_000,
    layers=("sha256:" + "b" * 64, "sha256:" + "c" * 64),
)
PUSHED = ImageInfo(
    reference="localhost/lockwarden/ml-service-serve:fedcba9876543210",
    image_id="sha256:" + "d" * 64,
    size=1,
    layers=(),
    repo_digest="127.0.0.1:5000/acme/ml-service-serve@sha256:" + "e" * 64,
)


@pytest.mark.parametrize("image", [IMAGE, PUSHED], ids=["local", "pushed"])
def test_cache_round_trip(tmp_path: Path, image: ImageInfo) -> None:
    cache = ImageCache(tmp_path / "cache")
    cache.put("k" * 64, image)

    assert cache.get("k" * 64) == image
    assert ImageCache(tmp_path / "cache").get("k" * 64) == image  # persisted
    assert (tmp_path / "cache" / "images" / f"{'k' * 64}.json").is_file()


def test_cache_put_replaces_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)
    cache.put("key", IMAGE)
    cache.put("key", PUSHED)

    assert cache.get("key") == PUSHED
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["key.json"]


def test_cache_miss(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)
    assert cache.get("missing") is None
    cache.put("present", IMAGE)
    assert cache.get("missing") is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("{not json", id="not-json"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param('{"reference": "x"}', id="missing-fields"),
        pytest.param(json.dumps({**asdict(IMAGE), "unknown": 1}, default=list), id="unknown-field"),
        pytest.param("\udcff", id="not-utf8"),
    ],
)
def test_corrupt_record_is_a_miss(tmp_path: Path, text: str) -> None:
    cache = ImageCache(tmp_path)
    records = tmp_path / "images"
    records.mkdir()
    (records / "key.json").write_bytes(text.encode("utf-8", "surrogateescape"))

    assert cache.get("key") is None


def test_unreadable_record_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "images" / "key.json").mkdir(parents=True)  # a directory, not a file
    assert ImageCache(tmp_path).get("key") is None


def test_cache_without_root_is_off(tmp_path: Path) -> None:
    cache = ImageCache(None)
    cache.put("key", IMAGE)
    assert cache.get("key") is None
    assert list(tmp_path.iterdir()) == []
