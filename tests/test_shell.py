"""The subprocess boundary: results as values, time limits, process-group kills."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bot import shell
from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.shell import CommandResult
from tests.support.processes import alive, settled


def test_run_success(tmp_path: Path) -> None:
    result = shell.run(["sh", "-c", "pwd; echo err >&2"], cwd=tmp_path, timeout_s=30)
    assert result.ok
    assert result.returncode == 0
    assert result.argv == ("sh", "-c", "pwd; echo err >&2")
    assert result.stdout == f"{tmp_path}\n"
    assert result.stderr == "err\n"
    assert result.duration_s >= 0


@pytest.mark.parametrize("code", [1, 2, 127])
def test_non_zero_exit_is_a_value(code: int) -> None:
    result = shell.run(["sh", "-c", f"echo out; echo bad >&2; exit {code}"], timeout_s=30)
    assert not result.ok
    assert result.returncode == code
    assert (result.stdout, result.stderr) == ("out\n", "bad\n")


def test_arguments_are_never_shell_parsed() -> None:
    argv = [sys.executable, "-c", "import sys; print(sys.argv[1:])", "$HOME;x", "a b", "*"]
    result = shell.run(argv)
    assert result.argv == tuple(argv)
    assert result.stdout.strip() == repr(["$HOME;x", "a b", "*"])


def test_env_replaces_the_environment() -> None:
    result = shell.run(["/bin/sh", "-c", 'echo "${ONLY:-unset} ${HOME:-unset}"'], env={"ONLY": "1"})
    assert result.stdout == "1 unset\n"


@pytest.mark.parametrize(
    ("stdin_text", "expected"),
    [
        pytest.param("line 1\nline 2\n", "line 1\nline 2\n", id="text"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none-is-devnull"),
    ],
)
def test_stdin_text(stdin_text: str | None, expected: str) -> None:
    assert shell.run(["cat"], stdin_text=stdin_text, timeout_s=30).stdout == expected


@pytest.mark.parametrize(
    ("stdout", "stderr", "lines", "expected"),
    [
        pytest.param("", "e1\ne2\ne3\n", 40, "e1\ne2\ne3", id="stderr"),
        pytest.param("o1\no2\n", "  \n", 40, "o1\no2", id="stdout-when-stderr-blank"),
        pytest.param("o1\n", "e1\n", 40, "e1", id="stderr-preferred"),
        pytest.param("", "e1\ne2\ne3\n", 2, "e2\ne3", id="last-lines-only"),
        pytest.param("", "", 40, "", id="nothing"),
        pytest.param(
            "",
            "ERROR: Cannot install a\n"
            "Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n'
            "    raise X\n"
            "X: [beta>=1.0.1]\n"
            "\n"
            "The above exception was the direct cause of the following exception:\n"
            "\n"
            "Traceback (most recent call last):\n"
            '  File "y.py", line 2, in g\n'
            "Y: resolution impossible\n",
            40,
            "ERROR: Cannot install a\nX: [beta>=1.0.1]\n\nY: resolution impossible",
            id="tracebacks-cut-to-exception-lines",
        ),
    ],
)
def test_output_tail(stdout: str, stderr: str, lines: int, expected: str) -> None:
    result = CommandResult(("x",), 1, stdout, stderr, 0.0)
    assert result.output_tail(lines) == expected


def test_output_tail_defaults_to_40_lines() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    tail = CommandResult(("x",), 1, "", text, 0.0).output_tail()
    assert tail.splitlines() == [f"line {i}" for i in range(60, 100)]


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The background job would write ``finished`` after a minute: if the group were not
    # killed, run() would wait for it (it holds the output pipe) and the marker would appear.
    pidfile = tmp_path / "child.pid"
    marker = tmp_path / "finished"
    script = f"(sleep 60; echo finished > {marker}) & echo $! > {pidfile}; wait"
    with pytest.raises(CommandTimeoutError) as caught:
        shell.run(["sh", "-c", script], timeout_s=0.5)
    assert "did not finish within" in str(caught.value)
    assert caught.value.code == "timeout"
    child = int(pidfile.read_text())
    assert settled(lambda: not alive(child)), f"the background job {child} outlived the group"
    assert not marker.exists()


def test_timeout_message_names_the_command() -> None:
    with pytest.raises(CommandTimeoutError, match=r"^'sleep 10 \.\.\.' did not finish within 2 s"):
        shell.run(["sleep", "10"], timeout_s=1.5)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["lockwarden-no-such-tool", "--version"], id="not-on-path"),
        pytest.param(["/nonexistent/bin/tool"], id="absolute-path"),
    ],
)
def test_missing_executable(argv: list[str]) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        shell.run(argv)
    assert f"'{argv[0]}' was not found" in str(caught.value)
    assert caught.value.code == "tool-not-found"


def test_missing_cwd_is_not_reported_as_a_missing_tool(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(LockwardenError) as caught:
        shell.run(["true"], cwd=missing)
    assert not isinstance(caught.value, ToolNotFoundError)
    assert str(caught.value) == f"{missing}: no such directory to run 'true' in"


def test_runs_in_its_own_session() -> None:
    result = shell.run([sys.executable, "-c", "import os; print(os.getsid(0))"])
    assert int(result.stdout) != os.getsid(0)
