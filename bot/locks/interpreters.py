"""The Python a lock was written for, and Lockwarden's own pip-tools for it.

pip-compile resolves for the Python it runs on: a lock written ``with Python 3.10`` is only
reproduced by a 3.10. That interpreter is looked for, in order: the running one; ``pythonX.Y``
on the search path (run once to learn its real executable, so a pyenv shim, which cannot run in
the sandbox, is never used); pyenv's versions directory; the ones uv manages (``uv python
find``); and, where allowed, one installed with ``uv python install``.

Another Python's own pip-tools (if any) is never used: its version and health are unknown.
Lockwarden makes one virtualenv per Python version under its toolchain directory, with the
pip-tools of ``deploy/requirements-piptools.txt`` installed from that hash-locked file only.
It is built in a temporary directory and renamed into place, so a half-built one is never
seen, and is checked before each use: a broken one is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot import shell
from bot.errors import LockwardenError
from bot.sandbox import interpreter_prefix
from bot.sandbox.environment import host_basics

PythonInstall = Literal["auto", "never"]
REQUIREMENTS = Path(__file__).resolve().parents[2] / "deploy" / "requirements-piptools.txt"
"""The hash-locked pip-tools of a checkout; the image copies it and sets the setting."""
OLDEST = (3, 9)  # the oldest Python the locked pip-tools supports
_VERSION = re.compile(r"^3\.(\d{1,2})(?:\.\d+)?$")
_PROBE = "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"
_TOOL_PROBE = "import piptools.scripts.compile"
_MARKER = "lockwarden-toolchain"
_PROBE_TIMEOUT_S = 60.0
_BUILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Interpreter:
    """A Python found for a version: its real executable (no shim) and full version."""

    executable: Path
    version: str
    found_by: str

    def describe(self) -> str:
        return f"Python {self.version} at {self.executable} ({self.found_by})"


@dataclass(frozen=True)
class Toolchain:
    """What runs pip-compile for one Python version."""

    python: Path
    """The toolchain's ``python`` (``-m piptools compile``), or the running interpreter."""
    interpreter: Interpreter
    prefixes: tuple[Path, ...]
    """What the sandbox must show read-only for ``python`` to run."""


@dataclass(frozen=True)
class Unavailable:
    """No toolchain for a version: the message names the interpreter and what to do."""

    message: str


@dataclass(frozen=True)
class Provisioning:
    """Where interpreters are looked for and toolchains kept (from the settings)."""

    toolchain_dir: Path | None
    """None: no toolchain can be built (only the running interpreter serves)."""
    requirements: Path = REQUIREMENTS
    pyenv_root: Path | None = None
    uv_bin: str | None = None
    install: PythonInstall = "auto"
    install_timeout_s: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict)
    """Search path, home, proxies and pip's index settings for the probes and installs."""
    running: Path = Path(sys.executable)
    running_version: str = "{}.{}.{}".format(*sys.version_info[:3])


def short_version(version: str) -> str | None:
    """``"3.10"`` or ``"3.10.13"`` -> ``"3.10"``; None for anything else (a version comes
    from a repository's lock or config, and ends up in command names)."""
    match = _VERSION.match(version.strip())
    return f"3.{int(match.group(1))}" if match else None


class Provisioner:
    """Finds interpreters and builds toolchains, once per version per process (compiles run
    in parallel: two environments of one Python wait for the same build)."""

    def __init__(self, config: Provisioning) -> None:
        self._config = config
        self._ready: dict[str, Toolchain] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def running(self, version: str | None) -> Interpreter | None:
        """The running interpreter when it is the Python ``version`` (X.Y; None: any) asks
        for, else None; nothing is run to know it."""
        running = self._config.running_version
        if version is not None and short_version(version) != _minor(running):
            return None
        return Interpreter(self._config.running, running, "the running interpreter")

    def toolchain(self, version: str | None) -> Toolchain | Unavailable:
        """The toolchain for ``version`` (X.Y; None: the running interpreter)."""
        running = _minor(self._config.running_version)
        if version is None:
            version = running
        short = short_version(version)
        if short is None:
            return Unavailable(
                f"{version!r} is not a Python version (3.X): correct the lock's header or "
                "the environment's 'python:' in .github/lockwarden.yml"
            )
        if short == running:
            interpreter = Interpreter(self._config.running, self._config.running_version, "")
            return Toolchain(
                self._config.running, interpreter, (interpreter_prefix(self._config.running),)
            )
        if tuple(int(p) for p in short.split(".")) < OLDEST:
            return Unavailable(
                f"the lock was written for Python {short}, and Lockwarden's pip-tools needs "
                f"{'.'.join(map(str, OLDEST))} or later: set 'python:' (3.9 or later) for this "
                "environment in .github/lockwarden.yml to move the lock to a newer Python"
            )
        with self._guard:
            lock = self._locks.setdefault(short, threading.Lock())
        with lock:
            if short not in self._ready:
                made = self._provision(short)
                if isinstance(made, Unavailable):
                    return made
                self._ready[short] = made
            return self._ready[short]

    def _provision(self, version: str) -> Toolchain | Unavailable:
        found = find_interpreter(version, self._config)
        if isinstance(found, Unavailable):
            return found
        return ensure_toolchain(found, self._config)


# -- finding ---------------------------------------------------------------------------------


def find_interpreter(version: str, config: Provisioning) -> Interpreter | Unavailable:
    """The first Python ``version`` (X.Y) of: the search path, pyenv, uv's, an install."""
    tried: list[str] = []
    for candidate, where in _candidates(version, config):
        probed = probe(candidate, where, config.env)
        if isinstance(probed, Unavailable):
            tried.append(probed.message)
        elif _minor(probed.version) != version:
            tried.append(f"{candidate} ({where}) is Python {probed.version}")
        else:
            return probed
    looked = "; ".join(tried) or "nothing found"
    if config.install == "never":
        return Unavailable(
            f"no Python {version} was found for this lock (pip-compile resolves for the "
            f"Python it runs on; looked at: {looked}), and LOCKWARDEN_PYTHON_INSTALL=never forbids "
            f"installing one: install Python {version} on this host (`uv python install "
            f"{version}` or `pyenv install {version}`), or set LOCKWARDEN_PYTHON_INSTALL=auto"
        )
    return install_interpreter(version, config, looked)


def _candidates(version: str, config: Provisioning) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    name = f"python{version}"
    on_path = shutil.which(name, path=config.env.get("PATH", os.defpath))
    if on_path is not None:
        found.append((Path(on_path), f"{name} on PATH"))
    found += [(p, "pyenv") for p in pyenv_versions(version, config.pyenv_root)]
    uv_found = _uv_find(version, config)
    if uv_found is not None:
        found.append((uv_found, "uv python find"))
    return found


def pyenv_versions(version: str, root: Path | None) -> list[Path]:
    """pyenv's builds of ``version`` (``versions/X.Y.Z/bin/pythonX.Y``), newest first."""
    if root is None or not (root / "versions").is_dir():
        return []
    builds = []
    for entry in (root / "versions").iterdir():
        match = re.fullmatch(re.escape(version) + r"\.(\d+)", entry.name)
        executable = entry / "bin" / f"python{version}"
        if match and executable.is_file():
            builds.append((int(match.group(1)), executable))
    return [executable for _, executable in sorted(builds, reverse=True)]


def probe(candidate: Path, where: str, env: Mapping[str, str]) -> Interpreter | Unavailable:
    """Run ``candidate`` once: the real executable behind it (a shim runs the real one, which
    reports itself) and its version; why not, when it does not run."""
    try:
        result = shell.run(
            [str(candidate), "-c", _PROBE], env=host_basics(env), timeout_s=_PROBE_TIMEOUT_S
        )
    except LockwardenError as exc:
        return Unavailable(f"{candidate} ({where}) does not run: {exc.user_message}")
    lines = result.stdout.strip().splitlines()
    if not result.ok or len(lines) < 2:
        why = result.output_tail(2) or f"exit {result.returncode}"
        return Unavailable(f"{candidate} ({where}) does not run: {why}")
    return Interpreter(Path(lines[-2]).resolve(), lines[-1].strip(), where)


def _uv_find(version: str, config: Provisioning) -> Path | None:
    if config.uv_bin is None:
        return None
    try:
        result = shell.run(
            [config.uv_bin, "python", "find", "--system", version],
            env=_uv_env(config),
            timeout_s=_PROBE_TIMEOUT_S,
        )
    except LockwardenError:
        return None
    lines = result.stdout.strip().splitlines()
    return Path(lines[-1]) if result.ok and lines else None


def _uv_env(config: Provisioning) -> dict[str, str]:
    # uv's own managed Pythons live with the toolchains; it never downloads while finding.
    # Not the download cache a repository's sandboxed builds may write into.
    env = {k: v for k, v in config.env.items() if k != "UV_CACHE_DIR"}
    env["UV_NO_CACHE"] = "1"
    if config.toolchain_dir is not None:
        env["UV_PYTHON_INSTALL_DIR"] = str(config.toolchain_dir / "pythons")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def install_interpreter(
    version: str, config: Provisioning, looked: str
) -> Interpreter | Unavailable:
    """``uv python install X.Y`` into the toolchain directory, bounded in time."""
    advice = (
        f"install Python {version} on this host (`uv python install {version}` or `pyenv "
        f"install {version}`), or let Lockwarden reach the download host"
    )
    if config.uv_bin is None:
        return Unavailable(f"no Python {version} was found (looked at: {looked}): {advice}")
    argv = [config.uv_bin, "python", "install", "--no-bin", version]
    env = {**_uv_env(config), "UV_PYTHON_DOWNLOADS": "automatic"}
    try:
        result = shell.run(argv, env=env, timeout_s=config.install_timeout_s)
    except LockwardenError as exc:
        return Unavailable(
            f"no Python {version} was found (looked at: {looked}), and `uv python install "
            f"{version}` failed: {exc.user_message}; {advice}"
        )
    found = _uv_find(version, config) if result.ok else None
    if found is None:
        why = _first_and_last(result.stderr) or f"exit {result.returncode}"
        return Unavailable(
            f"no Python {version} was found (looked at: {looked}), and `uv python install "
            f"{version}` failed: {why}; {advice}"
        )
    return probe(found, "uv python install", config.env)


def _first_and_last(output: str) -> str:
    """uv's error and its innermost cause (the lines between say how one led to the other)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " ... ".join(dict.fromkeys(lines[:1] + lines[-1:]))


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# -- toolchains ------------------------------------------------------------------------------


def ensure_toolchain(interpreter: Interpreter, config: Provisioning) -> Toolchain | Unavailable:
    """The toolchain of ``interpreter``'s version: reused when whole, else (re)built."""
    if config.toolchain_dir is None:
        return Unavailable(
            f"no directory to build the pip-tools toolchain for {interpreter.describe()} "
            "in: set LOCKWARDEN_TOOLCHAIN_DIR"
        )
    try:
        pinned = config.requirements.read_bytes()
    except OSError as exc:
        return Unavailable(
            f"cannot read Lockwarden's pip-tools requirements {config.requirements}: "
            f"{exc.strerror}; set LOCKWARDEN_PIPTOOLS_REQUIREMENTS to that file"
        )
    digest = hashlib.sha256(pinned).hexdigest()[:12]
    home = config.toolchain_dir / f"pip-tools-{digest}" / f"python{_minor(interpreter.version)}"
    stamp = f"{interpreter.executable}\n{interpreter.version}\n"
    if _whole(home, stamp, config.env):
        return _toolchain(home, interpreter)
    built = _build(interpreter, home, config)
    if isinstance(built, Unavailable):
        return built
    return _toolchain(home, interpreter)


def _toolchain(home: Path, interpreter: Interpreter) -> Toolchain:
    return Toolchain(
        home / "bin" / "python", interpreter, (home, interpreter_prefix(interpreter.executable))
    )


def _whole(home: Path, stamp: str, env: Mapping[str, str]) -> bool:
    """Made for this interpreter, and its pip-tools imports."""
    try:
        if (home / _MARKER).read_text("utf-8") != stamp:
            return False
    except OSError:
        return False
    return _imports_piptools(home / "bin" / "python", env) is None


def _imports_piptools(python: Path, env: Mapping[str, str]) -> str | None:
    try:
        result = shell.run(
            [str(python), "-c", _TOOL_PROBE], env=host_basics(env), timeout_s=_PROBE_TIMEOUT_S
        )
    except LockwardenError as exc:
        return exc.user_message
    return None if result.ok else (result.output_tail(2) or f"exit {result.returncode}")


def _build(interpreter: Interpreter, home: Path, config: Provisioning) -> Unavailable | None:
    home.parent.mkdir(parents=True, exist_ok=True)
    scratch = home.parent / f".build-{home.name}-{uuid.uuid4().hex[:8]}"
    try:
        failure = _make_venv(interpreter, scratch, config)
        if failure is not None:
            return Unavailable(
                f"cannot build the pip-tools toolchain for {interpreter.describe()} in "
                f"{home}: {failure}; check that the package index is reachable (pip's own "
                "settings apply) and that the interpreter has its venv module, then run again"
            )
        (scratch / _MARKER).write_text(
            f"{interpreter.executable}\n{interpreter.version}\n", "utf-8"
        )
        _replace(scratch, home)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return None


def _make_venv(interpreter: Interpreter, target: Path, config: Provisioning) -> str | None:
    steps: Sequence[list[str]] = (
        [str(interpreter.executable), "-m", "venv", str(target)],
        [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--require-hashes",
            "--no-deps",
            "--only-binary=:all:",
            "--requirement",
            str(config.requirements),
        ],
    )
    env = {**config.env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    for argv in steps:
        try:
            result = shell.run(argv, env=env, timeout_s=_BUILD_TIMEOUT_S)
        except LockwardenError as exc:
            return f"`{' '.join(argv[1:4])}` failed: {exc.user_message}"
        if not result.ok:
            return f"`{' '.join(argv[1:4])}` failed: {result.output_tail(4)}"
    broken = _imports_piptools(target / "bin" / "python", config.env)
    return None if broken is None else f"pip-tools does not import: {broken}"


def _replace(built: Path, home: Path) -> None:
    """Rename ``built`` to ``home``; a broken ``home`` is moved aside first. Another process
    that got there first wins (its toolchain is as good)."""
    if home.exists():
        aside = home.parent / f".broken-{home.name}-{uuid.uuid4().hex[:8]}"
        try:
            home.rename(aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)
    try:
        built.rename(home)
    except OSError:
        return
