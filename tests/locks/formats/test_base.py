"""The spec files every format reads: only inside the repository, errors naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.locks.formats.base import read_spec_text
from bot.locks.formats.conda.environment import read_environment_yml
from bot.locks.formats.poetry.project import read_pyproject
from bot.paths import PathEscapeError

SECRET = "token-that-must-not-leak"

READERS: dict[str, Callable[[Path, str], object]] = {
    "environment.yml": read_environment_yml,
    "pyproject.toml": read_pyproject,
}


@pytest.mark.parametrize("spec", sorted(READERS))
def test_a_spec_linked_outside_the_repository_is_refused_unread(tmp_path: Path, spec: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"name: {SECRET}\n", "utf-8")
    root = tmp_path / "repo"
    root.mkdir()
    (root / spec).symlink_to(outside / "secret.txt")

    with pytest.raises(PathEscapeError) as caught:
        READERS[spec](root, spec)

    assert caught.value.user_message.startswith(f"{spec}: ")
    assert "outside the repository" in caught.value.user_message
    assert SECRET not in str(caught.value)
    assert sorted(p.name for p in root.iterdir()) == [spec]


@pytest.mark.parametrize("spec", sorted(READERS))
def test_a_missing_spec_says_what_to_do(tmp_path: Path, spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        READERS[spec](tmp_path, f"envs/{spec}")

    assert caught.value.path == f"envs/{spec}"
    assert caught.value.user_message == (
        f"envs/{spec}: file not found; create it or point the environment's 'spec' at it"
    )


def test_a_spec_that_is_not_utf8_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_bytes(b"numpy\n\xff\n")

    with pytest.raises(ConfigError) as caught:
        read_spec_text(tmp_path, "requirements.in")

    assert caught.value.user_message == (
        "requirements.in: cannot read the file: 'requirements.in' is not UTF-8 text (byte 6); "
        "save it as UTF-8"
    )


def test_a_spec_inside_the_repository_is_read_with_lf_line_ends(tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "environment.yml").write_bytes(b"name: serve\r\nchannels: []\r\n")

    assert read_spec_text(tmp_path, "envs/environment.yml") == "name: serve\nchannels: []\n"
