"""``lockwarden run`` shows each environment's progress while it runs: plain lines on stderr
off a terminal, a live table under a terminal, nothing with ``--quiet``; ``--json -`` keeps
stdout to the JSON. A run without a builder says that OS package pins were not refreshed.
Compiles run for real against the local index."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.worker import OS_PINS_NOT_REFRESHED
from tests.pipeline.conftest import Repo, env_config, new_repo, publish_graph
from tests.support.index_server import PackageIndex
from tests.test_cli import lockwarden

COMPILED = re.compile(r"^serve: compiled in \d+\.\ds \(2 packages changed\)$", re.MULTILINE)


@pytest.fixture
def repo(tmp_path: Path, package_index: PackageIndex) -> Repo:
    repo = new_repo(tmp_path, publish_graph(package_index))
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    return repo


@pytest.mark.slow
def test_off_a_terminal_progress_is_plain_lines_on_stderr(repo: Repo) -> None:
    result = lockwarden(repo, "--no-build")

    assert result.exit_code == 0, result.output
    assert "serve: queued\nserve: compiling\n" in result.stderr
    assert COMPILED.search(result.stderr), result.stderr
    assert "compiling" not in result.stdout  # stdout has the summary only
    assert result.stdout.startswith("environment  status")


@pytest.mark.slow
def test_quiet_prints_only_the_summary(repo: Repo) -> None:
    result = lockwarden(repo, "--no-build", "--quiet")

    assert result.exit_code == 0, result.output
    assert "serve:" not in result.stderr
    assert result.stdout.startswith("environment  status")
    assert "wrote requirements/serve.txt" in result.stdout


@pytest.mark.slow
def test_json_to_stdout_keeps_progress_on_stderr(repo: Repo) -> None:
    result = lockwarden(repo, "--no-build", "--json", "-")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["environments"][0]["name"] == "serve"
    assert COMPILED.search(result.stderr), result.stderr


@pytest.mark.slow
def test_on_a_terminal_progress_is_a_live_table(repo: Repo) -> None:
    output = _run_in_pty(repo, "--no-build")

    assert "lockwarden run" in output  # the live table's title
    assert re.search(r"serve\s.*compiled in \d+\.\ds \(2 packages changed\)", output), output
    assert "\x1b[" in output  # drawn in place
    assert "serve: compiling" not in output  # no plain lines on a terminal
    assert re.search(r"^(\x1b\[\?25h)?environment +status +changes", output, re.M)  # summary
    assert "wrote requirements/serve.txt" in output


@pytest.mark.slow
def test_without_a_builder_unpinned_packages_and_skipped_os_pins_are_reported(
    repo: Repo, tmp_path: Path
) -> None:
    repo.configure(env_config("serve", dockerfile="Dockerfile"), refresh_os_packages=True)
    repo.write(
        "Dockerfile",
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl=7.88.1-10 wget\n",
    )
    out, report = tmp_path / "out.json", tmp_path / "report.md"

    result = lockwarden(
        repo, "--no-build", "--upgrade", "--json", str(out), "--report", str(report)
    )

    assert result.exit_code == 0, result.output
    assert f"note: Dockerfile: {OS_PINS_NOT_REFRESHED}" in result.stdout
    assert "warning: Dockerfile:2: apt package wget is not pinned" in result.stdout
    (pins,) = json.loads(out.read_text("utf-8"))["image_pins"]
    assert pins["notes"] == [OS_PINS_NOT_REFRESHED]
    assert [u["name"] for u in pins["unpinned"]] == ["wget"]
    assert (pins["errors"], pins["changed"]) == ([], False)
    assert "OS package pins were not refreshed" in report.read_text("utf-8")
    assert "curl=7.88.1-10" in (repo.root / "Dockerfile").read_text("utf-8")


def _run_in_pty(repo: Repo, *args: str) -> str:
    """``lockwarden run`` with stdout and stderr on a pseudo-terminal: what a person sees."""
    primary, secondary = os.openpty()
    env = {**os.environ, "LOCKWARDEN_CACHE_DIR": str(repo.cache_dir), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import entry; entry()", "run", str(repo.root), *args],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the run ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=30) == 0, b"".join(chunks).decode("utf-8", "replace")
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
