"""FROM lines: stages and base images read, and digests written in byte for byte."""

from __future__ import annotations

import pytest

from bot.errors import LockwardenError
from bot.images.dockerfile.from_lines import (
    BaseImageRef,
    find_base_images,
    find_stages,
    find_unpinnable_images,
    parse_reference,
    rewrite_base_images,
)

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def ref_of(line: str) -> BaseImageRef:
    (ref,) = find_base_images(line, "Dockerfile")
    return ref


# -- reading FROM lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "registry", "repository", "tag", "digest", "alias"),
    [
        ("FROM python:3.12-slim", "docker.io", "library/python", "3.12-slim", None, None),
        ("FROM python", "docker.io", "library/python", None, None, None),
        ("FROM docker.io/library/python:3.12", "docker.io", "library/python", "3.12", None, None),
        ("FROM docker.io/python:3.12", "docker.io", "library/python", "3.12", None, None),
        ("FROM index.docker.io/library/python:3", "docker.io", "library/python", "3", None, None),
        ("FROM bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None, None),
        ("FROM ghcr.io/astral-sh/uv:0.4 AS uv", "ghcr.io", "astral-sh/uv", "0.4", None, "uv"),
        ("FROM localhost/base:1", "localhost", "base", "1", None, None),
        ("FROM localhost:5000/team/base:1", "localhost:5000", "team/base", "1", None, None),
        ("FROM registry:5000/base", "registry:5000", "base", None, None, None),
        ("FROM 127.0.0.1:5000/x/y:2", "127.0.0.1:5000", "x/y", "2", None, None),
        ("FROM [::1]:5000/x:2", "[::1]:5000", "x", "2", None, None),
        ("FROM quay.io/a/b/c:1.0.0-rc1", "quay.io", "a/b/c", "1.0.0-rc1", None, None),
        (f"FROM python:3.12@{DIGEST_A}", "docker.io", "library/python", "3.12", DIGEST_A, None),
        (f"FROM python@{DIGEST_A}", "docker.io", "library/python", None, DIGEST_A, None),
        (
            f"FROM ghcr.io/org/img:1@{DIGEST_A} AS Base",
            *("ghcr.io", "org/img", "1", DIGEST_A, "base"),
        ),
        (
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS build",
            *("docker.io", "library/golang", "1.22", None, "build"),
        ),
        ("from python:3.12 as build", "docker.io", "library/python", "3.12", None, "build"),
        ("  FROM   python:3.12   ", "docker.io", "library/python", "3.12", None, None),
        ("FROM \\\n    python:3.12 \\\n    AS x", "docker.io", "library/python", "3.12", None, "x"),
    ],
)
def test_from_lines(
    line: str,
    registry: str,
    repository: str,
    tag: str | None,
    digest: str | None,
    alias: str | None,
) -> None:
    ref = ref_of(line)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.alias) == (
        registry,
        repository,
        tag,
        digest,
        alias,
    )
    assert (ref.file, ref.line, ref.stage) == ("Dockerfile", 1, 0)
    assert parse_reference(ref.image) == (registry, repository, tag, digest)


def test_stages_lines_and_what_is_left_out() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"  # 1
        "ARG BASE=python:3.12\n"  # 2
        "\n"  # 3
        "FROM python:3.12-slim AS build\n"  # 4
        "RUN <<EOF\n"  # 5
        "FROM not-an-instruction:1\n"  # 6  (a heredoc body)
        "EOF\n"  # 7
        "FROM build AS test\n"  # 8
        "FROM Build\n"  # 9  (stage names are case-insensitive)
        "FROM scratch\n"  # 10
        "FROM ${BASE}\n"  # 11
        "FROM $BASE AS again\n"  # 12
        "FROM ${BASE}\n"  # 13
        "# FROM commented:1\n"  # 14
        "FROM ghcr.io/org/tool:2 AS tool\n"  # 15
    )
    stages = find_stages(text)
    assert [(s.index, s.line, s.image, s.alias, s.parent, s.base) for s in stages] == [
        (0, 4, "python:3.12-slim", "build", None, "python:3.12-slim"),
        (1, 8, "build", "test", 0, "python:3.12-slim"),
        (2, 9, "Build", None, 0, "python:3.12-slim"),
        (3, 10, "scratch", None, None, "scratch"),
        (4, 11, "${BASE}", None, None, "${BASE}"),
        (5, 12, "$BASE", "again", None, "$BASE"),
        (6, 13, "${BASE}", None, None, "${BASE}"),
        (7, 15, "ghcr.io/org/tool:2", "tool", None, "ghcr.io/org/tool:2"),
    ]
    assert [(r.line, r.stage, r.image) for r in find_base_images(text, "x")] == [
        (4, 0, "python:3.12-slim"),
        (15, 7, "ghcr.io/org/tool:2"),
    ]
    assert find_unpinnable_images(text) == ("${BASE}", "$BASE")


def test_a_stage_name_only_counts_once_defined() -> None:
    text = "FROM later\nFROM python:3 AS later\n"
    assert [(r.line, r.image) for r in find_base_images(text, "x")] == [
        (1, "later"),
        (2, "python:3"),
    ]


def test_pinned_reference_and_canonical_name() -> None:
    assert ref_of("FROM python:3.12").pinned(DIGEST_A) == f"python:3.12@{DIGEST_A}"
    assert ref_of(f"FROM python:3.12@{DIGEST_A}").pinned(DIGEST_B) == f"python:3.12@{DIGEST_B}"
    # Without a tag, the pin keeps the tag Docker would use, so later refreshes can follow it.
    assert ref_of("FROM python").pinned(DIGEST_A) == f"python:latest@{DIGEST_A}"
    assert ref_of(f"FROM python@{DIGEST_A}").pinned(DIGEST_B) == f"python@{DIGEST_B}"
    assert ref_of("FROM python").canonical == "docker.io/library/python:latest"
    assert ref_of(f"FROM ghcr.io/o/i:1@{DIGEST_A}").name == "ghcr.io/o/i:1"


# -- rewriting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "updates", "after"),
    [
        (
            "FROM python:3.12-slim\nRUN true\n",
            {1: DIGEST_A},
            f"FROM python:3.12-slim@{DIGEST_A}\nRUN true\n",
        ),
        (
            f"FROM --platform=linux/amd64 python:3.12@{DIGEST_A}   AS  build # keep\n",
            {1: DIGEST_B},
            f"FROM --platform=linux/amd64 python:3.12@{DIGEST_B}   AS  build # keep\n",
        ),
        ("FROM python\r\n", {1: DIGEST_A}, f"FROM python:latest@{DIGEST_A}\r\n"),
        (
            "FROM a:1 AS x\nFROM x\nFROM b:2\n",
            {3: DIGEST_B, 1: DIGEST_A},
            f"FROM a:1@{DIGEST_A} AS x\nFROM x\nFROM b:2@{DIGEST_B}\n",
        ),
        (
            "FROM \\\n  127.0.0.1:5000/base:1 \\\n  AS b\n",
            {1: DIGEST_A},
            f"FROM \\\n  127.0.0.1:5000/base:1@{DIGEST_A} \\\n  AS b\n",
        ),
        ("FROM a:1\n", {}, "FROM a:1\n"),
    ],
)
def test_rewrite_base_images(before: str, updates: dict[int, str], after: str) -> None:
    assert rewrite_base_images(before, updates) == after


@pytest.mark.parametrize(
    ("text", "updates", "message"),
    [
        ("FROM a:1\nRUN x\n", {2: DIGEST_A}, "line 2 has no FROM"),
        ("FROM scratch\n", {1: DIGEST_A}, "line 1 has no FROM"),
        ("FROM a AS b\nFROM b\n", {2: DIGEST_A}, "line 2 has no FROM"),
        ("FROM ${BASE}\n", {1: DIGEST_A}, "line 1 has no FROM"),
        ("FROM a:1\n", {1: "latest"}, "not an image digest"),
        ("FROM py\\\nthon:3\n", {1: DIGEST_A}, "split"),
    ],
)
def test_rewrite_refuses(text: str, updates: dict[int, str], message: str) -> None:
    with pytest.raises(LockwardenError, match=message):
        rewrite_base_images(text, updates)
