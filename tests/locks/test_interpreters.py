"""Interpreters for locks of other Pythons: the lookup order (with fake interpreters: small
scripts that answer the probe as a Python would), shims resolved to real executables, an
install that is refused or cannot reach its host, and the cached pip-tools toolchains (built
for real from PyPI, once per session, for 3.10 and 3.12)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import shell
from bot.locks.formats.requirements.uv import find_uv
from bot.locks.interpreters import (
    Interpreter,
    Provisioner,
    Provisioning,
    Toolchain,
    Unavailable,
    ensure_toolchain,
    find_interpreter,
    pyenv_versions,
    short_version,
)
from bot.settings import Settings
from tests.pipeline.conftest import env_config, new_repo, pins_of
from tests.support.index_server import PackageIndex

RUNNING = "{}.{}".format(*sys.version_info[:2])
HOST_ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}


def fake_python(path: Path, version: str, *, fails: str | None = None) -> Path:
    """An executable that answers the probe like a Python ``version`` at its real path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        f"echo '{fails}' >&2; exit 127"
        if fails
        else f'printf "%s\\n" "$(/usr/bin/readlink -f "$0")" "{version}"'
    )
    path.write_text(f"#!/bin/sh\n{body}\n", "utf-8")
    path.chmod(0o755)
    return path


def shim(path: Path, target: Path) -> Path:
    """A pyenv-like shim: a script that runs the real interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n', "utf-8")
    path.chmod(0o755)
    return path


def provisioning(tmp_path: Path, **overrides: object) -> Provisioning:
    values: dict[str, object] = {
        "toolchain_dir": tmp_path / "toolchains",
        "pyenv_root": tmp_path / "pyenv",
        "uv_bin": None,
        "install": "never",
        "env": {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)},
    }
    values.update(overrides)
    return Provisioning(**values)  # type: ignore[arg-type]


# -- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("3.10", "3.10"), ("3.10.13", "3.10"), ("3.09", "3.9"), ("2.7", None), ("3.10; rm", None)],
)
def test_short_version(given: str, expected: str | None) -> None:
    assert short_version(given) == expected


@pytest.mark.parametrize("version", [None, RUNNING])
def test_the_running_interpreter_needs_no_toolchain(tmp_path: Path, version: str | None) -> None:
    made = Provisioner(provisioning(tmp_path)).toolchain(version)
    assert isinstance(made, Toolchain)
    assert made.python == Path(sys.executable)
    assert not (tmp_path / "toolchains").exists()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param(None, sys.executable, id="any"),
        pytest.param(RUNNING, sys.executable, id="its-own"),
        pytest.param("{}.{}.1".format(*sys.version_info[:2]), sys.executable, id="patch"),
        pytest.param(f"3.{sys.version_info.minor + 1}", None, id="another"),
        pytest.param("banana", None, id="not-a-version"),
    ],
)
def test_the_running_interpreter_is_known_without_running_anything(
    tmp_path: Path, version: str | None, expected: str | None
) -> None:
    found = Provisioner(provisioning(tmp_path)).running(version)
    assert (str(found.executable) if found is not None else None) == expected
    assert not (tmp_path / "toolchains").exists()


@pytest.mark.parametrize(
    ("version", "says"),
    [("3.8", "needs 3.9 or later"), ("banana", "'banana' is not a Python version")],
)
def test_unusable_versions_are_refused_with_advice(tmp_path: Path, version: str, says: str) -> None:
    made = Provisioner(provisioning(tmp_path)).toolchain(version)
    assert isinstance(made, Unavailable)
    assert says in made.message
    assert "'python:'" in made.message
    assert not (tmp_path / "toolchains").exists()


# -- lookup order ----------------------------------------------------------------------------


def test_pyenv_versions_newest_first(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    for name in ("3.10.4", "3.10.12", "3.10.12t", "3.10-dev", "3.1.0", "3.11.2"):
        fake_python(root / "versions" / name / "bin" / "python3.10", "3.10.0")
    (root / "versions" / "3.10.9" / "bin").mkdir(parents=True)  # no executable
    assert pyenv_versions("3.10", root) == [
        root / "versions" / "3.10.12" / "bin" / "python3.10",
        root / "versions" / "3.10.4" / "bin" / "python3.10",
    ]
    assert pyenv_versions("3.10", tmp_path / "nowhere") == []
    assert pyenv_versions("3.10", None) == []


def test_path_comes_before_pyenv_and_a_shim_is_resolved(tmp_path: Path) -> None:
    real = fake_python(tmp_path / "opt" / "py310" / "bin" / "python3.10", "3.10.7")
    shim(tmp_path / "bin" / "python3.10", real)
    fake_python(tmp_path / "pyenv" / "versions" / "3.10.13" / "bin" / "python3.10", "3.10.13")
    found = find_interpreter("3.10", provisioning(tmp_path))
    assert found == Interpreter(real, "3.10.7", "python3.10 on PATH")


def broken_shim_and_pyenv(
    tmp_path: Path, pyenv_answers: str
) -> tuple[Path, Interpreter | Unavailable]:
    """A pyenv shim on PATH that cannot run (no global 3.10), and pyenv's 3.10.13 build
    answering ``pyenv_answers``; what the lookup finds."""
    fake_python(tmp_path / "bin" / "python3.10", "", fails="pyenv: python3.10: command not found")
    pyenv = tmp_path / "pyenv" / "versions" / "3.10.13" / "bin" / "python3.10"
    fake_python(pyenv, pyenv_answers)
    return pyenv, find_interpreter("3.10", provisioning(tmp_path))


def test_a_broken_shim_falls_back_to_pyenv(tmp_path: Path) -> None:
    pyenv, found = broken_shim_and_pyenv(tmp_path, "3.10.13")
    assert found == Interpreter(pyenv, "3.10.13", "pyenv")


def test_nothing_found_and_install_refused_names_every_candidate(tmp_path: Path) -> None:
    wrong, found = broken_shim_and_pyenv(tmp_path, "3.12.1")
    assert isinstance(found, Unavailable)
    assert f"{tmp_path / 'bin' / 'python3.10'} (python3.10 on PATH) does not run" in found.message
    assert "pyenv: python3.10: command not found" in found.message
    assert f"{wrong} (pyenv) is Python 3.12.1" in found.message
    assert "LOCKWARDEN_PYTHON_INSTALL=never forbids installing" in found.message
    assert "`uv python install 3.10`" in found.message
    assert not (tmp_path / "toolchains").exists()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/python"


def install_from(tmp_path: Path, mirror: str, timeout_s: float) -> Interpreter | Unavailable:
    """Python 3.8 (nowhere on this fake host) installed by the real uv from ``mirror``."""
    config = provisioning(
        tmp_path,
        uv_bin=find_uv(None),
        install="auto",
        install_timeout_s=timeout_s,
        env={
            **HOST_ENV,
            "PATH": str(tmp_path / "bin"),
            "UV_PYTHON_INSTALL_MIRROR": mirror,
            "UV_HTTP_RETRIES": "0",
        },
    )
    return find_interpreter("3.8", config)


def test_an_install_that_cannot_finish_is_bounded(tmp_path: Path, blackhole: str) -> None:
    found = install_from(tmp_path, blackhole, 3.0)
    assert isinstance(found, Unavailable)
    assert "no Python 3.8 was found" in found.message
    assert "`uv python install 3.8` failed" in found.message
    assert "did not finish" in found.message
    assert "install Python 3.8 on this host" in found.message
    assert not list((tmp_path / "toolchains").glob("pythons/cpython-*"))


def test_an_install_whose_host_is_unreachable_says_so(
    tmp_path: Path, unreachable_index_url: str
) -> None:
    found = install_from(tmp_path, unreachable_index_url, 120.0)
    assert isinstance(found, Unavailable)
    assert "`uv python install 3.8` failed" in found.message
    assert "Failed to install cpython-3.8" in found.message
    assert "Connection refused" in found.message
    assert "or let Lockwarden reach the download host" in found.message


# -- toolchains (real builds from PyPI, once per session) ----------------------------------


@pytest.fixture(scope="session")
def toolchain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "toolchains"


def host_provisioning(toolchain_dir: Path) -> Provisioning:
    """This machine's Pythons (pyenv's, uv's), as the worker would look for them."""
    return Provisioning(
        toolchain_dir,
        pyenv_root=Settings().pyenv_root,
        uv_bin=find_uv(None),
        install="never",
        env=HOST_ENV,
    )


@pytest.mark.slow
def test_a_broken_toolchain_is_rebuilt(toolchain_dir: Path) -> None:
    config = host_provisioning(toolchain_dir)
    first = Provisioner(config).toolchain("3.12")
    assert isinstance(first, Toolchain), first
    assert first.interpreter.version.startswith("3.12.")
    home = first.prefixes[0]
    assert first.python == home / "bin" / "python"
    assert first.prefixes[1] == first.interpreter.executable.parent.parent
    again = ensure_toolchain(first.interpreter, config)
    assert again == first
    assert not list(home.parent.glob(".build-*"))

    shutil.rmtree(next((home / "lib").glob("python3.12/site-packages/piptools")))
    rebuilt = ensure_toolchain(first.interpreter, config)
    assert rebuilt == first
    assert (next((home / "lib").glob("python3.12/site-packages")) / "piptools").is_dir()
    assert not list(home.parent.glob(".b*"))


def test_a_toolchain_that_cannot_be_built_names_the_interpreter(tmp_path: Path) -> None:
    interpreter = Interpreter(Path(sys.executable).resolve(), "3.99.0", "pyenv")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nosuchpackage==1.0 --hash=sha256:" + "0" * 64 + "\n", "utf-8")
    config = provisioning(
        tmp_path,
        requirements=requirements,
        env={**HOST_ENV, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0"},
    )
    made = ensure_toolchain(interpreter, config)
    assert isinstance(made, Unavailable)
    assert f"Python 3.99.0 at {interpreter.executable} (pyenv)" in made.message
    assert "check that the package index is reachable" in made.message
    assert list((tmp_path / "toolchains").glob("*/*")) == []


# -- end to end: locks of other Pythons on this bot ------------------------------------------


def _pins_blanked(text: str) -> str:
    return re.sub(r"==\S+", "==*", text)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_a_lock_of_another_python_is_replayed_byte_for_byte(
    tmp_path: Path, package_index: PackageIndex, toolchain_dir: Path, version: str
) -> None:
    assert version != RUNNING
    toolchain = Provisioner(host_provisioning(toolchain_dir)).toolchain(version)
    assert isinstance(toolchain, Toolchain), toolchain
    package_index.publish("alpha", "1.0.0", ["beta>=1.0"])
    package_index.publish("beta", "1.0.0")
    repo = new_repo(tmp_path, package_index)
    repo.write("re.in", "alpha\n")
    # As a person would: that Python's pip-compile, from the repository's root.
    made = shell.run(
        [str(toolchain.python), "-m", "piptools", "compile", "--no-emit-index-url", "re.in"],
        cwd=repo.root,
        env={**HOST_ENV, "PIP_INDEX_URL": package_index.url, "PIP_CONFIG_FILE": os.devnull},
        timeout_s=300,
    )
    assert made.ok, made.output_tail(20)
    written = (repo.root / "re.txt").read_text("utf-8")
    assert f"autogenerated by pip-compile with Python {version}\n" in written
    assert "#    pip-compile --no-emit-index-url re.in\n" in written
    repo.configure(
        env_config(
            "main",
            backend="pip-tools",
            spec="re.in",
            lock="re.txt",
            compile_args=(),
        )
    )
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "locks"]):
        git = shell.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
            cwd=repo.root,
            env=HOST_ENV,
        )
        assert git.ok, git.output_tail(5)
    package_index.publish("alpha", "1.1.0", ["beta>=1.0"])
    package_index.publish("beta", "2.0.0")
    before = repo.snapshot()

    minimal = repo.refresh(build=False, test=False, toolchain_dir=toolchain_dir)
    (result,) = minimal.compiled.results
    assert result.status == "unchanged", result.error
    assert repo.snapshot() == before

    upgraded = repo.refresh(build=False, test=False, upgrade=True, toolchain_dir=toolchain_dir)
    (result,) = upgraded.compiled.results
    assert result.status == "changed", result.error
    after = (repo.root / "re.txt").read_text("utf-8")
    assert pins_of(after) == {"alpha": "1.1.0", "beta": "2.0.0"}
    assert _pins_blanked(after) == _pins_blanked(written)
