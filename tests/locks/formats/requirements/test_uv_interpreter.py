"""uv is told which interpreter to use (``--python``) when the lock is for the running Python,
so it does not look for one on every compile; the lock stays byte for byte the same."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from bot.locks.compiler import CompileRequest
from bot.locks.formats.requirements.uv import UvBackend, find_uv
from bot.locks.interpreters import Provisioner, Provisioning
from bot.locks.modes import CompileMode
from tests.support.index_server import PackageIndex
from tests.support.sandbox import PLAIN, SANDBOX

RUNNING = "{}.{}".format(*sys.version_info[:2])
OTHER = f"3.{sys.version_info.minor - 1}"
SPEC = "requirements/serve.in"
LOCK = "requirements/serve.txt"
# Stands in for uv: writes the interpreters it was given where uv would write the lock.
REPORTER = """#!/bin/sh
python=""
for arg in "$@"; do
  case "$arg" in
    --output-file=*) out="${arg#--output-file=}" ;;
    --python=*|-p=*) python="$python ${arg#*=}" ;;
  esac
done
printf '%s' "${python:- none}" > "$out"
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    (root / SPEC).write_text("alpha\n", "utf-8")
    return root


def provisioner(tmp_path: Path) -> Provisioner:
    return Provisioner(Provisioning(toolchain_dir=tmp_path / "toolchains", install="never"))


def request(root: Path, python: str | None, **fields: object) -> CompileRequest:
    return CompileRequest(
        root=root,
        spec=SPEC,
        lock=LOCK,
        output=root / ".out-serve.txt",
        existing=None,
        python_version=python,
        mode=CompileMode("full"),
        **fields,  # type: ignore[arg-type]
    )


def reporter(tmp_path: Path) -> str:
    path = tmp_path / "uv-reporter"
    path.write_text(REPORTER, "utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(
    ("python", "extra", "expected"),
    [
        pytest.param(RUNNING, (), sys.executable, id="running-python"),
        pytest.param(None, (), sys.executable, id="unpinned"),
        pytest.param(OTHER, (), "none", id="another-python-is-uvs-to-find"),
        pytest.param(RUNNING, ("--python=/opt/py",), "/opt/py", id="named-by-the-options"),
    ],
)
def test_uv_gets_the_running_interpreter_for_its_python(
    tmp_path: Path, root: Path, python: str | None, extra: tuple[str, ...], expected: str
) -> None:
    backend = UvBackend({"PATH": "/usr/bin:/bin"}, reporter(tmp_path), PLAIN, provisioner(tmp_path))
    outcome = backend.compile(request(root, python, extra_args=extra))
    assert outcome.ok, outcome.error
    assert (root / ".out-serve.txt").read_text("utf-8") == f" {expected}"
    # The header replays the lock's own options, never the interpreter given for speed.
    assert f"--python={sys.executable}" not in outcome.header_command
    assert not (tmp_path / "toolchains").exists()  # nothing provisioned for uv


def test_the_lock_is_byte_identical_with_the_interpreter_given(
    tmp_path: Path,
    root: Path,
    package_index: PackageIndex,
    isolated_tool_env: dict[str, str],
) -> None:
    package_index.publish("alpha", "1.0", ["beta"])
    package_index.publish("beta", "2.0")
    locks = []
    for given in (None, provisioner(tmp_path)):
        backend = UvBackend(isolated_tool_env, find_uv(None), SANDBOX, given)
        outcome = backend.compile(
            request(root, RUNNING, index_url=package_index.url, timeout_s=120.0)
        )
        assert outcome.ok, outcome.tool_output
        locks.append((root / ".out-serve.txt").read_bytes())
        (root / ".out-serve.txt").unlink()
    assert locks[0] == locks[1]
    assert f"--python-version={RUNNING}".encode() in locks[1]
    assert b"--python=" not in locks[1]
    assert b"beta==2.0" in locks[1]
