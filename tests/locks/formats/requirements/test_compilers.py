"""Backend helpers: tool environment, argument groups, failure classification, pip-tools
interpreter selection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bot import shell
from bot.locks.compiler import (
    CompileRequest,
    classify_failure,
    index_args,
    merge_args,
    mode_args,
    run_compiler,
    tool_environment,
)
from bot.locks.formats.requirements.pip_tools import PipToolsBackend
from bot.locks.formats.requirements.uv import UvBackend, find_uv
from bot.locks.lockfile import parse_lockfile
from bot.locks.modes import CompileMode
from bot.sandbox import Sandbox
from bot.shell import CommandResult
from tests.support.sandbox import SANDBOX

# The argv tests record what reaches ``shell.run``: no bubblewrap line around it.
PLAIN = Sandbox(isolated=False)

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"

HOST_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/ci",
    "PIP_CERT": "/etc/ssl/corp.pem",
    "PIP_INDEX_URL": "https://corp.example/simple",
    "PIP_EXTRA_INDEX_URL": "https://extra.example/simple",
    "PIP_FIND_LINKS": "/wheels",
    "PIP_NO_INDEX": "1",
    "PIP_CONFIG_FILE": "/etc/pip.conf",
    "UV_INDEX_URL": "https://corp.example/simple",
    "UV_DEFAULT_INDEX": "https://corp.example/simple",
    "UV_PRERELEASE": "allow",
    "UV_CUSTOM_COMPILE_COMMAND": "make lock",
    "UV_NATIVE_TLS": "1",
    "CUSTOM_COMPILE_COMMAND": "make lock",
    "HTTPS_PROXY": "http://proxy:3128",
}
STRIPPED = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_PRERELEASE",
    "UV_CUSTOM_COMPILE_COMMAND",
    "CUSTOM_COMPILE_COMMAND",
)
KEPT = ("PATH", "HOME", "PIP_CERT", "UV_NATIVE_TLS", "HTTPS_PROXY")


def request(tmp_path: Path, **overrides: object) -> CompileRequest:
    fields: dict[str, object] = {
        "root": tmp_path,
        "spec": "requirements/serve.in",
        "lock": "requirements/serve.txt",
        "output": tmp_path / "out.txt",
        "existing": None,
    }
    fields.update(overrides)
    return CompileRequest(**fields)  # type: ignore[arg-type]


# -- tool_environment -----------------------------------------------------------------------


@pytest.mark.parametrize("name", STRIPPED)
def test_isolation_strips_resolution_variables(name: str) -> None:
    env = tool_environment(HOST_ENV, isolate=True, cache_dir=None)
    assert name not in env


@pytest.mark.parametrize("name", KEPT)
def test_isolation_keeps_other_variables(name: str) -> None:
    env = tool_environment(HOST_ENV, isolate=True, cache_dir=None)
    assert env[name] == HOST_ENV[name]


def test_isolation_disables_config_files() -> None:
    env = tool_environment(HOST_ENV, isolate=True, cache_dir=None)
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["UV_NO_CONFIG"] == "1"


@pytest.mark.parametrize("name", STRIPPED + KEPT)
def test_no_isolation_keeps_everything(name: str) -> None:
    env = tool_environment(HOST_ENV, isolate=False, cache_dir=None)
    assert env[name] == HOST_ENV[name]


def test_no_isolation_keeps_config_files() -> None:
    env = tool_environment(HOST_ENV, isolate=False, cache_dir=None)
    assert env["PIP_CONFIG_FILE"] == "/etc/pip.conf"
    assert "UV_NO_CONFIG" not in env


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "not-isolated"])
def test_tool_environment_always_sets_quiet_defaults(isolate: bool) -> None:
    env = tool_environment({}, isolate=isolate, cache_dir=None)
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
    assert env["PIP_NO_INPUT"] == "1"
    assert env["PYTHONUTF8"] == "1"
    assert "PIP_CACHE_DIR" not in env
    assert "UV_CACHE_DIR" not in env


def test_cache_dir_sets_both_tool_caches(tmp_path: Path) -> None:
    env = tool_environment({}, isolate=True, cache_dir=tmp_path)
    assert env["PIP_CACHE_DIR"] == str(tmp_path / "pip")
    assert env["UV_CACHE_DIR"] == str(tmp_path / "uv")


def test_tool_environment_does_not_modify_its_input() -> None:
    base = dict(HOST_ENV)
    tool_environment(base, isolate=True, cache_dir=None)
    assert base == HOST_ENV


# -- argument groups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(CompileMode(), [], id="minimal"),
        pytest.param(CompileMode("full"), ["--upgrade"], id="full"),
        pytest.param(
            CompileMode("targeted", ("numpy", "torch==2.3.0")),
            ["--upgrade-package=numpy", "--upgrade-package=torch==2.3.0"],
            id="targeted",
        ),
        pytest.param(CompileMode("targeted"), [], id="targeted-nothing"),
    ],
)
def test_mode_args(mode: CompileMode, expected: list[str]) -> None:
    assert mode_args(mode) == expected


@pytest.mark.parametrize(
    ("index_url", "extra", "expected"),
    [
        pytest.param(None, (), [], id="none"),
        pytest.param(
            "https://idx.example/simple",
            (),
            ["--index-url=https://idx.example/simple"],
            id="index",
        ),
        pytest.param(
            None,
            ("https://a.example/simple", "https://b.example/simple"),
            [
                "--extra-index-url=https://a.example/simple",
                "--extra-index-url=https://b.example/simple",
            ],
            id="extra-only",
        ),
        pytest.param(
            "https://idx.example/simple",
            ("https://a.example/simple",),
            [
                "--index-url=https://idx.example/simple",
                "--extra-index-url=https://a.example/simple",
            ],
            id="both",
        ),
    ],
)
def test_index_args(
    tmp_path: Path, index_url: str | None, extra: tuple[str, ...], expected: list[str]
) -> None:
    assert index_args(request(tmp_path, index_url=index_url, extra_index_urls=extra)) == expected


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param((), [], id="nothing"),
        pytest.param((("--a", "--b"), ["--c"]), ["--a", "--b", "--c"], id="concatenated"),
        pytest.param(
            (("--generate-hashes", "--allow-unsafe"), ("--generate-hashes", "--no-header")),
            ["--generate-hashes", "--allow-unsafe", "--no-header"],
            id="repeats-dropped-first-kept",
        ),
        pytest.param(
            (("--extra=a",), ("--extra=b",)),
            ["--extra=a", "--extra=b"],
            id="same-option-other-value-kept",
        ),
    ],
)
def test_merge_args(groups: tuple[tuple[str, ...], ...], expected: list[str]) -> None:
    assert merge_args(*groups) == expected


# -- classify_failure -----------------------------------------------------------------------

# uv starts its resolver errors with a multiplication sign.
UV_ERROR = "  \u00d7 No solution found when resolving dependencies:"
PIP_NOT_FOUND = """\
ERROR: Could not find a version that satisfies the requirement nonexistent-pkg==1.0 \
(from versions: none)
ERROR: No matching distribution found for nonexistent-pkg==1.0
"""
UV_NOT_FOUND = f"""\
{UV_ERROR}
  ╰─▶ Because nonexistent was not found in the package registry and you require
      nonexistent, we can conclude that your requirements are unsatisfiable.
"""
UV_NO_VERSION = f"""\
{UV_ERROR}
  ╰─▶ Because there is no version of numpy==99.0 and you require numpy==99.0, we can
      conclude that your requirements are unsatisfiable.
"""
PIP_CONFLICT = """\
Discarding numpy==1.26.4 (from -r requirements/serve.in (line 1))
Could not find a version that matches numpy<2,>=2 (from -r requirements/serve.in (line 1))
Tried: 1.26.4, 2.0.0
There are incompatible versions in the resolved dependencies:
  numpy<2 (from -r requirements/serve.in (line 1))
  numpy>=2 (from pandas==2.2.2->-r requirements/serve.in (line 2))
pip._internal.exceptions.ResolutionImpossible: for help visit https://pip.pypa.io
"""
UV_CONFLICT = f"""\
{UV_ERROR}
  ╰─▶ Because pandas==2.2.2 depends on numpy>=2 and you require numpy<2, we can conclude
      that your requirements and pandas==2.2.2 are incompatible.
"""
PIP_REFUSED = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) \
after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection \
object at 0x7f2c>: Failed to establish a new connection: [Errno 111] Connection refused')': \
/simple/numpy/
ERROR: Could not find a version that satisfies the requirement numpy (from versions: none)
ERROR: No matching distribution found for numpy
"""
UV_FETCH = """\
error: Failed to fetch: `http://127.0.0.1:9/simple/numpy/`
  Caused by: Request failed after 3 retries
  Caused by: error sending request for url (http://127.0.0.1:9/simple/numpy/)
  Caused by: client error (Connect)
  Caused by: tcp connect error: Connection refused (os error 111)
"""
UV_DNS = """\
error: Request failed after 3 retries
  Caused by: dns error: failed to lookup address information: Name or service not known
"""
TRACEBACK = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/piptools/scripts/compile.py", line 592, in cli
AttributeError: module 'pip._internal.utils.compat' has no attribute 'stdlib_pkgs'
"""


@pytest.mark.parametrize(
    ("output", "kind", "message"),
    [
        pytest.param(
            PIP_NOT_FOUND,
            "not-found",
            "no release of nonexistent-pkg==1.0 on the index matches the spec",
            id="pip-no-matching-distribution",
        ),
        pytest.param(
            UV_NOT_FOUND,
            "not-found",
            "no release of nonexistent on the index matches the spec",
            id="uv-not-in-registry",
        ),
        pytest.param(
            UV_NO_VERSION,
            "not-found",
            "no release of numpy==99.0 on the index matches the spec",
            id="uv-no-version",
        ),
        pytest.param(
            UV_NOT_FOUND + "error: Failed to fetch: `https://pypi.org/simple/nonexistent/`\n",
            "not-found",
            "no release of nonexistent on the index matches the spec",
            id="uv-not-in-registry-wins-over-fetch",
        ),
        pytest.param(
            PIP_CONFLICT,
            "conflict",
            "the requirements conflict; no set of versions satisfies them all",
            id="pip-resolution-impossible",
        ),
        pytest.param(
            UV_CONFLICT,
            "conflict",
            "the requirements conflict; no set of versions satisfies them all",
            id="uv-incompatible",
        ),
        pytest.param(
            PIP_REFUSED,
            "index-unreachable",
            "the package index could not be reached",
            id="pip-connection-refused",
        ),
        pytest.param(
            UV_FETCH,
            "index-unreachable",
            "the package index could not be reached",
            id="uv-failed-to-fetch",
        ),
        pytest.param(
            "  Caused by: tcp connect error: Connection timed out (os error 110)\n",
            "index-unreachable",
            "the package index could not be reached",
            id="tcp-connect-error",
        ),
        pytest.param(
            UV_DNS,
            "index-unreachable",
            "the package index could not be reached",
            id="dns-error",
        ),
        pytest.param(TRACEBACK, "tool-error", "the compiler failed", id="traceback"),
        pytest.param("", "tool-error", "the compiler failed", id="no-output"),
    ],
)
def test_classify_failure(output: str, kind: str, message: str) -> None:
    assert classify_failure(output) == (kind, message)


# -- run_compiler ---------------------------------------------------------------------------


def test_run_compiler_success(tmp_path: Path) -> None:
    outcome = run_compiler(
        ["sh", "-c", "exit 0"],
        request(tmp_path),
        sandbox=SANDBOX,
        env={},
        header="pip-compile x",
        notes=("n",),
    )
    assert outcome.ok
    assert outcome.argv == ("sh", "-c", "exit 0")
    assert outcome.header_command == "pip-compile x"
    assert outcome.notes == ("n",)
    assert outcome.error is None


def test_run_compiler_failure_is_classified(tmp_path: Path) -> None:
    script = "echo 'ERROR: No matching distribution found for ghost' >&2; exit 1"
    outcome = run_compiler(
        ["sh", "-c", script], request(tmp_path), sandbox=SANDBOX, env={}, header="h", notes=()
    )
    assert not outcome.ok
    assert outcome.failure == "not-found"
    assert outcome.error == "no release of ghost on the index matches the spec"
    assert outcome.tool_output == "ERROR: No matching distribution found for ghost"


def test_run_compiler_timeout_is_a_failed_outcome(tmp_path: Path) -> None:
    outcome = run_compiler(
        ["sleep", "5"],
        request(tmp_path, timeout_s=0.2),
        sandbox=SANDBOX,
        env={},
        header="h",
        notes=(),
    )
    assert not outcome.ok
    assert outcome.failure == "timeout"
    assert outcome.duration_s == 0.2
    assert outcome.error is not None
    assert "did not finish" in outcome.error


# -- pip-tools: interpreter (the lookup itself: tests/locks/test_interpreters.py) --------


def test_compile_for_unavailable_python_fails_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_subprocess(*_: object, **__: object) -> CommandResult:
        raise AssertionError("no subprocess expected")

    monkeypatch.setattr(shell, "run", no_subprocess)
    backend = PipToolsBackend({"PATH": str(tmp_path / "empty")}, SANDBOX)
    outcome = backend.compile(request(tmp_path, python_version="3.99"))
    assert not outcome.ok
    assert outcome.failure == "tool-error"
    assert outcome.argv == ()
    assert outcome.duration_s == 0.0
    assert outcome.error is not None
    assert "no Python 3.99 was found" in outcome.error
    assert "install Python 3.99 on this host" in outcome.error
    assert outcome.header_command == (
        "pip-compile --allow-unsafe --generate-hashes --strip-extras "
        "--output-file=requirements/serve.txt requirements/serve.in"
    )


# -- argv and header, with the subprocess replaced ------------------------------------------


class RecordingRun:
    """Stands in for ``shell.run``: records each call and exits 0."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def __call__(self, argv: list[str], **kwargs: object) -> CommandResult:
        env = kwargs.get("env")
        assert isinstance(env, dict)
        self.calls.append((tuple(argv), env))
        return CommandResult(tuple(argv), 0, "", "", 0.1)


def test_pip_tools_compile_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    backend = PipToolsBackend({"PATH": "/usr/bin"}, PLAIN, cache_dir=tmp_path / "cache")
    outcome = backend.compile(
        request(
            tmp_path,
            constraints=("requirements/base.txt",),
            mode=CompileMode("targeted", ("numpy",)),
            extra_args=("--no-emit-index-url", "--generate-hashes"),
            index_url="https://idx.example/simple",
        )
    )
    header = (
        "pip-compile --allow-unsafe --constraint=requirements/base.txt --generate-hashes "
        "--no-emit-index-url --strip-extras --output-file=requirements/serve.txt "
        "requirements/serve.in"
    )
    assert outcome.ok
    assert outcome.header_command == header
    ((argv, env),) = run.calls
    assert argv == (
        sys.executable,
        "-m",
        "piptools",
        "compile",
        "--quiet",
        "--allow-unsafe",
        "--generate-hashes",
        "--strip-extras",
        "--no-emit-index-url",
        "--constraint=requirements/base.txt",
        "--index-url=https://idx.example/simple",
        "--upgrade-package=numpy",
        f"--cache-dir={tmp_path / 'cache' / 'pip-tools'}",
        f"--output-file={tmp_path / 'out.txt'}",
        "requirements/serve.in",
    )
    # The sandbox's allow-list, with its locale defaults.
    assert env == {
        "PATH": "/usr/bin",
        "CUSTOM_COMPILE_COMMAND": header,
        "LANG": "C.UTF-8",
        "PYTHONUTF8": "1",
    }


def test_pip_tools_compile_keeps_a_custom_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    existing = parse_lockfile(
        "#\n# This file is autogenerated by pip-compile with Python "
        f"{RUNNING}\n# by the following command:\n#\n#    make lock\n#\nnumpy==2.0.0\n",
        "requirements/serve.txt",
    )
    outcome = PipToolsBackend({}, PLAIN).compile(request(tmp_path, existing=existing))
    assert outcome.header_command == "make lock"
    ((argv, env),) = run.calls
    assert env["CUSTOM_COMPILE_COMMAND"] == "make lock"
    assert not any(a.startswith("--cache-dir") for a in argv)


@pytest.mark.parametrize(
    ("python_version", "recorded"),
    [
        pytest.param("3.10", ("--python-version=3.10",), id="python-pinned"),
        pytest.param(None, (), id="python-unpinned"),
    ],
)
def test_uv_compile_argv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    python_version: str | None,
    recorded: tuple[str, ...],
) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    outcome = UvBackend({"PATH": "/usr/bin"}, "/opt/uv", PLAIN).compile(
        request(tmp_path, python_version=python_version, mode=CompileMode("full"))
    )
    header = (
        "uv pip compile --allow-unsafe --generate-hashes "
        + "".join(f"{r} " for r in recorded)
        + "--strip-extras --output-file=requirements/serve.txt requirements/serve.in"
    )
    assert outcome.ok
    assert outcome.header_command == header
    ((argv, env),) = run.calls
    assert argv == (
        "/opt/uv",
        "pip",
        "compile",
        "--quiet",
        "--no-progress",
        "--allow-unsafe",
        "--generate-hashes",
        "--strip-extras",
        "--upgrade",
        *recorded,
        f"--custom-compile-command={header}",
        f"--output-file={tmp_path / 'out.txt'}",
        "requirements/serve.in",
    )
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "PYTHONUTF8": "1"}


@pytest.mark.parametrize(
    ("configured", "expected"),
    [pytest.param("/opt/uv", "/opt/uv", id="configured"), pytest.param(None, None, id="bundled")],
)
def test_find_uv(configured: str | None, expected: str | None) -> None:
    found = find_uv(configured)
    if expected is not None:
        assert found == expected
    else:
        assert Path(found).name.startswith("uv")
        assert Path(found).is_file()
