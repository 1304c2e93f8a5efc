"""Hostile configuration files and webhook bodies are refused with a clear message, within
fixed bounds: nothing is expanded, nothing recursive runs deep, nothing answers 500."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from bot.config import CONFIG_PATH, MAX_CONFIG_BYTES, load_config, parse_config
from bot.errors import ConfigError, LockwardenError
from bot.jobs.queue import InMemoryQueue
from bot.paths import PathEscapeError
from tests.server import client, make_app, post

PEAK_BYTES = 50 * 1024 * 1024


def _bomb(levels: int, width: int) -> str:
    """Each anchor is a list of ``width`` aliases of the previous one."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _refused_within_bounds(text: str) -> ConfigError:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, CONFIG_PATH)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES
    return caught.value


@pytest.mark.parametrize(("levels", "width", "size"), [(12, 10, 676), (9, 10, 400)])
def test_an_alias_bomb_is_refused_without_expanding(levels: int, width: int, size: int) -> None:
    text = _bomb(levels, width)
    assert abs(len(text) - size) < 150  # the shapes of the reported files
    error = _refused_within_bounds(text)
    assert error.path == CONFIG_PATH
    assert error.line == 1
    assert "anchors and aliases" in str(error)


def test_an_alias_alone_is_refused_with_its_line() -> None:
    text = "environments:\n  - name: serve\n    spec: serve.in\nlabels: *nothing\n"
    error = _refused_within_bounds(text)
    assert error.line == 4
    assert str(error).startswith(f"{CONFIG_PATH}:4: YAML anchors and aliases")


def test_an_anchor_alone_is_refused_with_its_line() -> None:
    error = _refused_within_bounds("environments: []\nlabels: &mine [a]\n")
    assert error.line == 2


@pytest.mark.parametrize(("flow", "depth"), [(True, 5000), (False, 200)], ids=["flow", "block"])
def test_deep_nesting_is_refused(flow: bool, depth: int) -> None:
    if flow:
        text = "labels: " + "[" * depth + "]" * depth + "\n"
    else:
        text = (
            "".join(f"{'  ' * level}k{level}:\n" for level in range(depth)) + "  " * depth + "x\n"
        )
    error = _refused_within_bounds(text)
    assert error.path == CONFIG_PATH
    assert error.line is not None
    assert "nest" in str(error)


def test_a_file_over_the_size_cap_is_refused_unparsed() -> None:
    text = "labels: [" + "a, " * (MAX_CONFIG_BYTES // 3) + "a]\n"
    error = _refused_within_bounds(text)
    assert f"{MAX_CONFIG_BYTES:,}" in str(error)


def _repo(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / ".github").mkdir()
    (tmp_path / CONFIG_PATH).write_bytes(content)
    return tmp_path


def test_a_huge_config_file_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    root = _repo(tmp_path, b"labels: []\n" + b"#" * (4 * MAX_CONFIG_BYTES))
    with pytest.raises(LockwardenError, match=r"lockwarden\.yml.*larger than"):
        load_config(root)


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte(tmp_path: Path) -> None:
    root = _repo(tmp_path, b"environments: []\nlabels: [caf\xe9]\n")
    with pytest.raises(LockwardenError) as caught:
        load_config(root)
    message = str(caught.value)
    assert CONFIG_PATH in message
    assert "not UTF-8" in message
    assert "byte 29" in message
    assert "Traceback" not in message


def test_a_config_symlinked_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yml"
    outside.write_text("environments: []\n")
    root = tmp_path / "repo"
    (root / ".github").mkdir(parents=True)
    os.symlink(outside, root / CONFIG_PATH)
    with pytest.raises(PathEscapeError):
        load_config(root)


def test_a_conda_environment_file_bomb_is_not_expanded_by_discovery(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text("name: &n ml\n" + _bomb(9, 10))
    (tmp_path / "conda-linux-64.lock").write_text("@EXPLICIT\n")  # discovery wants a lock
    tracemalloc.start()
    try:
        loaded = load_config(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES
    # The file's name is not read (the compile stage reports the file); discovery goes on.
    assert [env.name for env in loaded.config.environments] == ["conda"]


# -- webhook bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "more than 64 levels", id="deep-array"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "more than 64", id="deep-obj"),
        pytest.param(
            json.dumps({"action": "created", "x": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]})
            .replace("[]", "[" * 70 + "]" * 70)
            .encode(),
            "more than 64",
            id="too-deep-for-handlers",
        ),
        pytest.param(b'{"action": "caf\xe9"}', "not UTF-8 (byte 15)", id="latin-1"),
        pytest.param(b"\xef\xbb\xbf{}", "not valid JSON", id="bom"),
        pytest.param(b"{,}", "not valid JSON", id="invalid"),
        pytest.param(b"[]", "not a JSON object", id="array"),
        pytest.param(b"NaN", "not a JSON object", id="nan"),
    ],
)
def test_unparseable_signed_bodies_are_400(body: bytes, detail: str) -> None:
    queue = InMemoryQueue()
    response = post(client(make_app(queue)), "issue_comment", body)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert len(response.json()["detail"]) < 200
    assert not queue.jobs
