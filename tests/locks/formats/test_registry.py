"""The registry of lock formats: one format per backend, every lock owned by one format, and
no code outside the formats that branches on a backend's name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from bot.config import Backend, EnvironmentConfig
from bot.locks.formats import (
    BACKENDS,
    FORMATS,
    format_for,
    format_of_lock,
    parse_any_lock,
)
from bot.locks.options import Tool

BOT = Path(__file__).resolve().parents[3] / "bot"
FORMATS_DIR = BOT / "locks" / "formats"


def test_config_and_compilers_name_the_registry_backends() -> None:
    assert set(get_args(Backend)) == set(BACKENDS) == set(get_args(Tool))
    assert len(BACKENDS) == len(set(BACKENDS))


def test_each_backend_has_its_format() -> None:
    assert {b: format_for(b).name for b in BACKENDS} == {
        "poetry": "poetry",
        "conda": "conda",
        "pip-tools": "requirements",
        "uv": "requirements",
    }


def test_an_unknown_backend_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'pdm'; use one of: poetry, conda"):
        format_for("pdm")


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("poetry.lock", None, "poetry"),
        ("app/poetry.lock", None, "poetry"),
        ("conda-linux-64.lock", None, "conda"),
        ("envs/train.lock", "# platform: linux-64\n@EXPLICIT\n", "conda"),
        ("requirements/serve.txt", "numpy==1.26.4\n", "requirements"),
        ("requirements.lock", None, "requirements"),
    ],
)
def test_a_lock_belongs_to_the_first_format_that_owns_it(
    path: str, text: str | None, expected: str
) -> None:
    assert format_of_lock(path, text).name == expected


def test_parse_any_lock_uses_the_owning_format() -> None:
    text = "# platform: linux-64\n@EXPLICIT\nhttps://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda#c9f075ab2f33b3bbee9e62d4ad0a6cd8\n"
    (entry,) = parse_any_lock(text, "envs/base.lock").requirements
    assert (entry.name, entry.version) == ("zlib", "1.3.1")


@pytest.mark.parametrize(
    ("fields", "lock_path", "installed"),
    [
        (
            {"backend": "pip-tools", "spec": "requirements/serve.in"},
            "requirements/serve.txt",
            "requirements/serve.txt",
        ),
        (
            {"backend": "poetry", "spec": "app/pyproject.toml", "export": "app/requirements.txt"},
            "app/poetry.lock",
            "app/requirements.txt",
        ),
        (
            {"backend": "conda", "spec": "environment.yml", "platforms": ["linux/arm64"]},
            "conda-linux-aarch64.lock",
            None,
        ),
    ],
)
def test_the_environment_asks_its_format_for_its_files(
    fields: dict[str, object], lock_path: str, installed: str | None
) -> None:
    env = EnvironmentConfig.model_validate({"name": "e", **fields})
    assert env.lock_path == lock_path
    assert env.installed_lock == installed
    assert env.format in FORMATS


def _backend_comparisons(path: Path) -> list[str]:
    """``x.backend == ...``, ``!=``, ``in`` and ``not in`` in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if any(isinstance(s, ast.Attribute) and s.attr == "backend" for s in sides):
            found.append(f"{path.relative_to(BOT.parent)}:{node.lineno}")
    return found


def test_only_the_formats_branch_on_a_backend() -> None:
    outside = [
        hit
        for path in sorted(BOT.rglob("*.py"))
        if FORMATS_DIR not in path.parents
        for hit in _backend_comparisons(path)
    ]
    assert outside == []


def test_each_format_names_the_locks_it_no_longer_writes(tmp_path: Path) -> None:
    for name in (
        "conda-linux-64.lock",
        "conda-osx-arm64.lock",
        "serve.txt",
        "serve.darwin-arm64.txt",
    ):
        (tmp_path / name).write_text("x\n")
    conda = EnvironmentConfig.model_validate(
        {"name": "c", "spec": "environment.yml", "backend": "conda", "platforms": ["linux-64"]}
    )
    uv = EnvironmentConfig.model_validate(
        {"name": "u", "spec": "serve.in", "backend": "uv", "platforms": ["linux/amd64"]}
    )
    assert conda.format.leftover_outputs(tmp_path, conda) == ("conda-osx-arm64.lock",)
    assert uv.format.leftover_outputs(tmp_path, uv) == ("serve.darwin-arm64.txt",)
