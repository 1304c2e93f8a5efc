"""The build network's holder process: started again when bubblewrap fails to start it."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from bot.images.network import NetworkUnavailableError, _start_holder
from tests.support.processes import alive

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def flaky_holder(marker: Path, failures: int) -> list[str]:
    """A holder that fails its first ``failures`` starts (as bubblewrap does when a mount it
    binds goes away), then prints its pid and waits."""
    script = (
        f'n=$(cat "{marker}" 2>/dev/null || echo 0); '
        f'if [ "$n" -lt {failures} ]; then echo $((n + 1)) > "{marker}"; exit 1; fi; '
        'echo "$$"; exec sleep infinity'
    )
    return ["sh", "-c", script]


def test_a_holder_that_fails_to_start_is_started_again(tmp_path: Path) -> None:
    with ExitStack() as stack:
        pid = _start_holder(stack, flaky_holder(tmp_path / "starts", 2), ENV)
        assert alive(pid)
    assert not alive(pid)  # the run's stack stops it
    assert (tmp_path / "starts").read_text().strip() == "2"


def test_a_holder_that_never_starts_is_an_error_naming_the_network(tmp_path: Path) -> None:
    with ExitStack() as stack, pytest.raises(NetworkUnavailableError, match="private network"):
        _start_holder(stack, flaky_holder(tmp_path / "starts", 99), ENV)
    assert (tmp_path / "starts").read_text().strip() == "3"
