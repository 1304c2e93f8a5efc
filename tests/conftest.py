"""Shared fixtures.  The machinery behind them lives in ``tests/support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.index_server import PackageIndex, isolated_env, start_index, unused_local_url


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """A fresh, empty package index on 127.0.0.1; ``publish`` wheels onto it."""
    with start_index(tmp_path / "index") as index:
        yield index


@pytest.fixture
def unreachable_index_url() -> str:
    """An index URL on 127.0.0.1 where nothing listens (connections are refused)."""
    return unused_local_url()


@pytest.fixture
def isolated_tool_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running pip / pip-compile / uv without the machine's configuration."""
    return isolated_env(tmp_path / "tool-cache")
