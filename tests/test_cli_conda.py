"""``lockwarden run`` on a conda environment: discovery, explicit locks per platform, refresh
modes, the reports, and bad input that leaves every lock as it was. Solves run for real
(rattler) against a conda channel served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.locks.formats.conda.environment import parse_explicit_lock
from tests.support.conda_channel import (
    CondaChannel,
    publish_graph,
    publish_mlcore_2,
    start_channel,
)

LINUX = "conda-linux-64.lock"
ARM = "conda-linux-aarch64.lock"


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[CondaChannel]:
    with start_channel(tmp_path / "channel") as served:
        publish_graph(served)
        yield served


def environment_yml(channel: CondaChannel, *deps: str, platforms: bool = True) -> str:
    lines = ["name: train", "channels:", f"  - {channel.url}", "dependencies:"]
    lines += [f"  - {dep}" for dep in deps]
    if platforms:
        lines += ["platforms:", "  - linux-64", "  - linux-aarch64"]
    return "\n".join(lines) + "\n"


def lockwarden(root: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", str(root), *args],
        env={"LOCKWARDEN_CACHE_DIR": str(root.parent / "cache")},
        catch_exceptions=False,
    )


def versions(root: Path, lock: str) -> dict[str, str]:
    return parse_explicit_lock((root / lock).read_text("utf-8"), lock).versions()


def report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def repo(tmp_path: Path, channel: CondaChannel) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "environment.yml").write_text(
        environment_yml(channel, "python 3.11.*", "mlcore", "pytool"), "utf-8"
    )
    # Discovery proposes an environment file only beside a lock: an empty one, to be filled.
    (root / LINUX).write_text("@EXPLICIT\n", "utf-8")
    return root


def test_discovered_environment_gets_one_explicit_lock_per_platform(
    repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"

    result = lockwarden(repo, "--json", str(out))

    assert result.exit_code == 0, result.output
    for lock in (LINUX, ARM):
        text = (repo / lock).read_text("utf-8")
        assert "@EXPLICIT" in text
        assert versions(repo, lock) == {
            "python": "3.11.0",
            "mlcore": "1.1",
            "mathlib": "1.2",
            "pytool": "0.5",
        }
    data = report(out)
    env = data["environments"][0]
    assert (env["name"], env["backend"], env["lock"]) == ("train", "conda", LINUX)
    assert env["platform"] == "linux-64"
    assert [(o["path"], o["platform"], o["changed"]) for o in env["outputs"]] == [
        (ARM, "linux-aarch64", True)
    ]
    assert sorted(data["written"]) == sorted([LINUX, ARM])
    # Every URL line carries the package's md5, so the lock installs only those files.
    for line in (repo / LINUX).read_text("utf-8").splitlines():
        if line.startswith("http"):
            assert "#" in line
            assert len(line.rsplit("#", 1)[1]) == 32


def test_refresh_is_on_purpose_minimal_keeps_full_upgrades_target_rolls_back(
    repo: Path, channel: CondaChannel, tmp_path: Path
) -> None:
    assert lockwarden(repo).exit_code == 0
    publish_mlcore_2(channel)
    first = (repo / LINUX).read_bytes()

    kept = lockwarden(repo)
    assert kept.exit_code == 0, kept.output
    assert (repo / LINUX).read_bytes() == first

    out = tmp_path / "full.json"
    upgraded = lockwarden(repo, "--upgrade", "--json", str(out), "--report", str(tmp_path / "r.md"))
    assert upgraded.exit_code == 0, upgraded.output
    for lock in (LINUX, ARM):
        assert versions(repo, lock)["mlcore"] == "2.0"
    env = report(out)["environments"][0]
    change = next(c for c in env["changes"] if c["name"] == "mlcore")
    assert (change["from"], change["to"], change["change"]) == ("1.1", "2.0", "upgraded")
    arm = env["outputs"][0]
    assert any(c["name"] == "mlcore" and c["to"] == "2.0" for c in arm["changes"])
    markdown = (tmp_path / "r.md").read_text("utf-8")
    assert "`conda-linux-aarch64.lock`" in markdown
    assert "linux-aarch64" in markdown

    back = lockwarden(repo, "--upgrade-package", "mlcore==1.1")
    assert back.exit_code == 0, back.output
    assert versions(repo, LINUX)["mlcore"] == "1.1"
    assert versions(repo, ARM)["mlcore"] == "1.1"
    assert "mlcore==1.1" not in (repo / "environment.yml").read_text("utf-8")


def test_platform_specific_package_fails_on_the_platform_without_it(
    repo: Path, channel: CondaChannel
) -> None:
    assert lockwarden(repo).exit_code == 0
    before = {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)}
    (repo / "environment.yml").write_text(
        environment_yml(channel, "python 3.11.*", "mlcore", "fastkernel"), "utf-8"
    )

    result = lockwarden(repo)

    assert result.exit_code == 1, result.output
    assert "fastkernel" in result.output
    assert {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)} == before


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            "name: train\nchannels: [x]\ndependencies:\n  - mlcore\n  - [unclosed\n",
            "environment.yml:6",
            id="yaml-syntax",
        ),
        pytest.param(
            "name: train\nchannels: [x]\ndependencies:\n  - mlcore\n  - 'numpy >=>1'\n",
            "environment.yml:5",
            id="invalid-match-spec",
        ),
        pytest.param("name: train\nchannels: [x]\n", "environment.yml", id="no-dependencies"),
    ],
)
def test_broken_environment_yml_names_the_file_and_line_and_writes_nothing(
    repo: Path, text: str, where: str
) -> None:
    assert lockwarden(repo).exit_code == 0
    before = {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)}
    (repo / "environment.yml").write_text(text, "utf-8")

    result = lockwarden(repo)

    assert result.exit_code == 1, result.output
    assert where in result.output
    assert {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)} == before


def test_unsolvable_spec_is_a_clear_failure_with_nothing_overwritten(
    repo: Path, channel: CondaChannel, tmp_path: Path
) -> None:
    assert lockwarden(repo).exit_code == 0
    before = {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)}
    publish_mlcore_2(channel)  # needs mathlib >=1.2
    (repo / "environment.yml").write_text(
        environment_yml(channel, "python 3.11.*", "mlcore 2.0.*", "mathlib 1.0.*"), "utf-8"
    )
    out = tmp_path / "out.json"

    result = lockwarden(repo, "--json", str(out))

    assert result.exit_code == 1, result.output
    env = report(out)["environments"][0]
    assert env["status"] == "failed"
    assert env["failure"] == "conflict"
    assert "cannot be solved" in env["error"]
    assert {lock: (repo / lock).read_bytes() for lock in (LINUX, ARM)} == before


def test_configured_conda_environment_with_a_lock_pattern(
    repo: Path, channel: CondaChannel
) -> None:
    (repo / LINUX).unlink()  # the config places the locks elsewhere
    (repo / ".github").mkdir()
    (repo / ".github/lockwarden.yml").write_text(
        "environments:\n"
        "  - name: train\n"
        "    backend: conda\n"
        "    spec: environment.yml\n"
        "    lock: locks/{platform}.lock\n"
        "    platforms: [linux/amd64, linux/arm64]\n",
        "utf-8",
    )

    result = lockwarden(repo)

    assert result.exit_code == 0, result.output
    assert versions(repo, "locks/linux-64.lock")["mlcore"] == "1.1"
    assert versions(repo, "locks/linux-aarch64.lock")["python"] == "3.11.0"
    assert not (repo / LINUX).exists()
