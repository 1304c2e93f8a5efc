"""Locks written by hand with the real pip-compile and uv, one small repository per layout
class, then refreshed by Lockwarden: the first minimal run writes nothing (every lock keeps
its bytes) and ``--upgrade`` after a new release changes only pins, never the header or the
annotations' spelling."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from uv import find_uv_bin

from bot.config import load_config
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.pipeline.checkout import Workspace
from bot.results import RunResult
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh
from tests.support.index_server import PackageIndex, isolated_env

PIP_COMPILE = str(Path(sys.executable).with_name("pip-compile"))
UV = ("uv", "pip", "compile", "--python-version", "3.11")


@dataclass(frozen=True)
class Layout:
    """Spec files, the commands a person ran to lock them, and the config naming them."""

    files: Mapping[str, str]
    commands: tuple[tuple[str, tuple[str, ...]], ...]
    """(directory, argv) run in order; ``pip-compile`` and ``uv`` are the test's tools."""
    environments: tuple[dict[str, Any], ...]
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra variables for the commands (``CUSTOM_COMPILE_COMMAND``)."""

    @property
    def locks(self) -> tuple[str, ...]:
        return tuple(
            e.get("lock") or e["spec"].removesuffix(".in") + ".txt" for e in self.environments
        )


def _env(name: str, spec: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "spec": spec, **extra}


LAYOUTS: dict[str, Layout] = {
    "pip-compile-without-o": Layout(
        {"requirements.in": "alpha\n"},
        ((".", ("pip-compile", "requirements.in")),),
        (_env("main", "requirements.in"),),
    ),
    "pip-compile-with-o": Layout(
        {"requirements/base.in": "alpha\n"},
        (
            (
                ".",
                (
                    "pip-compile",
                    "--generate-hashes",
                    "--output-file=requirements/base.txt",
                    "requirements/base.in",
                ),
            ),
        ),
        (_env("base", "requirements/base.in"),),
    ),
    "subfolder-dot-paths-and-constraint": Layout(
        {"requirements/base.in": "beta\n", "requirements/test.in": "-c base.txt\nalpha\n"},
        (
            ("requirements", ("pip-compile", "./base.in")),
            ("requirements", ("pip-compile", "--output-file", "./test.txt", "./test.in")),
        ),
        (_env("base", "requirements/base.in"), _env("test", "requirements/test.in")),
    ),
    "no-annotate-strip-extras": Layout(
        {"requirements.in": "alpha[fast]\n"},
        ((".", ("pip-compile", "--no-annotate", "--strip-extras", "requirements.in")),),
        (_env("main", "requirements.in"),),
    ),
    "long-form-constraint": Layout(
        {"requirements/base.in": "beta\n", "requirements/dev.in": "alpha\n"},
        (
            ("requirements", ("pip-compile", "base.in")),
            ("requirements", ("pip-compile", "--constraint", "./base.txt", "dev.in")),
        ),
        (
            _env("base", "requirements/base.in"),
            _env("dev", "requirements/dev.in", constraints=["base"]),
        ),
    ),
    "custom-compile-command": Layout(
        {"requirements.in": "alpha\n"},
        ((".", ("pip-compile", "--generate-hashes", "requirements.in")),),
        (_env("main", "requirements.in"),),
        env={"CUSTOM_COMPILE_COMMAND": "make lock"},
    ),
    "uv-universal-hashes": Layout(
        {"requirements/base.in": "alpha\n"},
        (
            (
                ".",
                (
                    *UV,
                    "--universal",
                    "--generate-hashes",
                    "requirements/base.in",
                    "-o",
                    "requirements/base.txt",
                ),
            ),
        ),
        (_env("base", "requirements/base.in"),),
    ),
    "uv-per-platform": Layout(
        {"requirements/base.in": "alpha\n"},
        (
            (
                "requirements",
                (*UV, "--python-platform", "windows", "base.in", "-o", "base-windows.txt"),
            ),
        ),
        (_env("base", "requirements/base.in", lock="requirements/base-windows.txt"),),
    ),
    "unsafe-footer-allowed": Layout(
        {"requirements.in": "gamma\n"},
        ((".", ("pip-compile", "--allow-unsafe", "requirements.in")),),
        (_env("main", "requirements.in"),),
    ),
    "unsafe-footer-commented": Layout(
        {"requirements.in": "gamma\n"},
        ((".", ("pip-compile", "requirements.in")),),
        (_env("main", "requirements.in"),),
    ),
    "cert-client-cert-pip-args": Layout(
        {"requirements.in": "alpha\n"},
        ((".", ("pip-compile", "--generate-hashes", "requirements.in")),),
        (_env("main", "requirements.in"),),
        # What pip-tools < 7.4 wrote for options left unset.
        env={
            "CUSTOM_COMPILE_COMMAND": "pip-compile --cert=None --client-cert=None "
            "--generate-hashes --pip-args=None requirements.in"
        },
    ),
}


def publish_first(index: PackageIndex) -> None:
    index.publish("beta", "1.0.0")
    index.publish("colorama", "1.0.0")
    index.publish("fastlib", "1.0.0")
    index.publish("setuptools", "70.0.0")
    index.publish(
        "alpha",
        "1.0.0",
        ["beta>=1.0", 'colorama; sys_platform == "win32"'],
        extras={"fast": ["fastlib"]},
    )
    index.publish("gamma", "1.0.0", ["beta", "setuptools"])


def lock_by_hand(root: Path, layout: Layout, index: PackageIndex, cache: Path) -> None:
    env = {
        **isolated_env(cache),
        "PIP_INDEX_URL": index.url,
        "UV_INDEX_URL": index.url,
        **layout.env,
    }
    for directory, argv in layout.commands:
        program = PIP_COMPILE if argv[0] == "pip-compile" else find_uv_bin()
        subprocess.run(
            [program, *argv[1:], "--quiet"],
            cwd=root / directory,
            env=env,
            check=True,
            capture_output=True,
        )


def locked_repository(
    tmp_path: Path,
    index: PackageIndex,
    layout: Layout,
    environments: tuple[dict[str, Any], ...] | None = None,
) -> Path:
    """A repository with the layout's specs, locked by hand, and its config."""
    root = tmp_path / "repo"
    for path, text in layout.files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, "utf-8")
    publish_first(index)
    lock_by_hand(root, layout, index, tmp_path / "tool-cache")
    config = {"index_url": index.url, "environments": list(environments or layout.environments)}
    (root / ".github").mkdir()
    (root / ".github/lockwarden.yml").write_text(yaml.safe_dump(config), "utf-8")
    return root


def run_lockwarden(root: Path, index: PackageIndex, cache: Path, *, upgrade: bool) -> RunResult:
    options = RefreshOptions(upgrade=upgrade, build=False, test=False)
    return refresh(Workspace(root=root, repo="repo"), options, Settings(cache_dir=cache))


def via_of(lock: Lockfile) -> dict[str, tuple[str, ...]]:
    return {f"{e.name};{e.marker}": e.via for e in lock.requirements}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_a_no_op_then_upgrades_only_pins(
    name: str, tmp_path: Path, package_index: PackageIndex
) -> None:
    layout = LAYOUTS[name]
    root = locked_repository(tmp_path, package_index, layout)
    before = {lock: (root / lock).read_bytes() for lock in layout.locks}

    first = run_lockwarden(root, package_index, tmp_path / "cache", upgrade=False)

    assert not first.failed, [(r.name, r.error, r.tool_output) for r in first.compiled.results]
    assert first.written == ()
    assert [r.status for r in first.compiled.results] == ["unchanged"] * len(layout.locks)
    assert {lock: (root / lock).read_bytes() for lock in layout.locks} == before

    package_index.publish("beta", "1.1.0")
    second = run_lockwarden(root, package_index, tmp_path / "cache", upgrade=True)

    assert not second.failed, [(r.name, r.error) for r in second.compiled.results]
    for lock in layout.locks:
        old = parse_lockfile(before[lock].decode(), lock)
        new = parse_lockfile((root / lock).read_text("utf-8"), lock)
        assert new.header.text == old.header.text, lock
        assert via_of(new) == via_of(old), lock
        changed = {k: v for k, v in new.versions().items() if old.versions().get(k) != v}
        assert changed == {"beta": "1.1.0"}, lock


def test_unreplayable_options_are_named_once_with_their_values(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    root = locked_repository(tmp_path, package_index, LAYOUTS["cert-client-cert-pip-args"])

    run = run_lockwarden(root, package_index, tmp_path / "cache", upgrade=False)

    (result,) = run.compiled.results
    named = [n for n in result.notes if "--cert=None" in n]
    assert len(named) == 1, result.notes
    assert "--client-cert=None" in named[0]
    assert "--pip-args=None" in named[0]
    assert sum("--pip-args" in n for n in result.notes) == 1


UV_HEADER = (
    "# This file was autogenerated by uv via the following command:\n"
    "#    uv pip compile requirements/base.in -o requirements/base.txt\n"
    "six==1.0\n"
)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(None, "uv", id="discovery"),
        pytest.param({"name": "base", "spec": "requirements/base.in"}, "uv", id="no-backend"),
        pytest.param(
            {"name": "base", "spec": "requirements/base.in", "backend": "pip-tools"},
            "pip-tools",
            id="explicit-backend-converts",
        ),
    ],
)
def test_the_lock_header_names_the_tool(
    tmp_path: Path, config: dict[str, Any] | None, expected: str
) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/base.in").write_text("six\n", "utf-8")
    (tmp_path / "requirements/base.txt").write_text(UV_HEADER, "utf-8")
    if config is not None:
        (tmp_path / ".github").mkdir()
        text = yaml.safe_dump({"environments": [config]})
        (tmp_path / ".github/lockwarden.yml").write_text(text, "utf-8")

    (env,) = load_config(tmp_path).config.environments

    assert env.backend == expected


@pytest.mark.slow
def test_an_explicit_other_backend_converts_and_says_so(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    layout = LAYOUTS["pip-compile-without-o"]
    environment = {**layout.environments[0], "backend": "uv"}
    root = locked_repository(tmp_path, package_index, layout, (environment,))

    run = run_lockwarden(root, package_index, tmp_path / "cache", upgrade=True)

    (result,) = run.compiled.results
    assert result.backend == "uv"
    assert any(
        "written by pip-tools" in note and "'backend: uv'" in note for note in result.notes
    ), result.notes
    assert result.header_command.startswith("uv pip compile ")
