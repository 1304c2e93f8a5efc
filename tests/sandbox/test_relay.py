"""The relay's own option parsing (it runs before every sandboxed command, without argparse)."""

from __future__ import annotations

import sys

import pytest

from bot import shell
from bot.sandbox import RELAY, relay_argv
from bot.sandbox.relay import parse


def test_options_in_both_spellings_then_the_command() -> None:
    options, command = parse(
        ["--socket", "/run/s", "--port=3128", "--cpu-s=5", "--output-bytes", "9", "--", "uv", "-q"]
    )
    assert (options.socket, options.port, options.cpu_s, options.output_bytes) == (
        "/run/s",
        3128,
        5,
        9,
    )
    assert options.memory_bytes is None
    assert command == ["uv", "-q"]


def test_the_sandbox_line_parses() -> None:
    options, command = parse([*relay_argv("/r.py", "/s")[4:], "--processes=7", "--", "true"])
    assert (options.socket, options.processes, command) == ("/s", 7, ["true"])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["--bogus=1", "--", "true"], "unknown option --bogus", id="unknown"),
        pytest.param(["cpu-s=1", "--", "true"], "unknown option cpu-s", id="not-an-option"),
        pytest.param(["--port"], "--port needs a value", id="no-value"),
        pytest.param(["--port=1", "--"], "no command", id="no-command"),
        pytest.param(["--port=x", "--", "true"], "invalid literal", id="not-a-number"),
    ],
)
def test_a_bad_line_is_refused_and_runs_nothing(argv: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(argv)


def test_a_bad_line_exits_2_without_running_the_command() -> None:
    run = shell.run([sys.executable, "-I", "-S", str(RELAY), "--bogus=1", "--", "echo", "ran"])
    assert run.returncode == 2
    assert "unknown option --bogus" in run.stderr
    assert "ran" not in run.stdout
