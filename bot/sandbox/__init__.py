"""The one way to run anything that reads or executes a repository's content.

Compilers (pip-compile, ``uv pip compile``, Poetry), the build backends and ``setup.py`` files
they start, and hadolint all run here. With bubblewrap available, a sandboxed process:

- runs in its own user, PID, IPC, UTS and network namespaces, as an unprivileged user;
- sees the job's workspace (read-write), the toolchain and CA certificates (read-only), a
  private ``/tmp`` and home, and nothing else: no private key file, no bot home, no other
  job's workspace, no ``/proc`` of the worker;
- gets an environment built from an allow-list (``environment.py``), never a secret;
- reaches the network only through the egress proxy (``egress.py``), which refuses
  loopback, link-local and private addresses unless the policy lists the host;
- is limited in CPU time, memory, processes, file size and output size.

``bot.shell`` stays the way to start a trusted subprocess (git on the bot's own clone,
builders); this module builds on it.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from bot import shell
from bot.errors import LockwardenError, ToolNotFoundError
from bot.sandbox.egress import EgressPolicy, EgressProxy
from bot.sandbox.environment import ca_paths, sandbox_environment

SandboxMode = Literal["auto", "on", "off"]
RELAY = Path(__file__).with_name("relay.py")
SANDBOX_HOME = "/home/sandbox"
_RUN_DIR = "/run/lockwarden"
PROXY_PORT = 3128
"""The loopback port the relay listens on inside a private network namespace."""
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
_UID = 65534
# Read-only system paths a toolchain needs: programs, libraries, CA certificates, and the
# alternatives links Debian points /usr/bin names at. Nothing else of /etc is visible.
_SYSTEM_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
)


class SandboxUnavailableError(LockwardenError):
    """The sandbox cannot start here; the message says why and what to do."""

    code = "sandbox-unavailable"


@dataclass(frozen=True)
class Limits:
    """Per-process resource limits inside the sandbox (inherited by every child)."""

    cpu_s: int = 1800
    memory_bytes: int = 8 * 1024**3
    processes: int = 512
    file_bytes: int = 4 * 1024**3
    output_bytes: int = 16 * 1024**2


@dataclass(frozen=True)
class SandboxResult:
    """A sandboxed command's result and the connections the egress proxy refused."""

    result: shell.CommandResult
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sandbox:
    """How repository content runs in this process: ``isolated`` with bubblewrap, or, where
    the operator turned the sandbox off (or a person runs the CLI without bubblewrap), as
    a plain subprocess that still gets the allow-listed environment only."""

    isolated: bool
    bwrap: str | None = None
    policy: EgressPolicy = field(default_factory=EgressPolicy)
    limits: Limits = field(default_factory=Limits)
    reason: str = ""
    """Why the sandbox is off (empty when isolated)."""
    trusts_repository: bool = False
    """A person's own checkout (the CLI): the indexes its config names may be private."""
    fresh_proc: bool = True
    """Mount a ``/proc`` of the sandbox's own PID namespace. Where that is refused (a
    container whose ``/proc`` is masked, as in most pods) the sandbox has no ``/proc`` at all:
    the compilers do without, and the worker's own is never shown instead."""

    def with_policy(self, policy: EgressPolicy) -> Sandbox:
        return replace(self, policy=policy)

    def run(
        self,
        argv: Sequence[str],
        *,
        workspace: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = shell.DEFAULT_TIMEOUT_S,
        toolchain: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        network: bool = True,
    ) -> SandboxResult:
        """Run ``argv`` in ``cwd`` (default: the workspace) with ``workspace`` and
        ``writable`` read-write and ``toolchain`` read-only. Raises like ``shell.run``."""
        clean = sandbox_environment(env or {})
        where = cwd if cwd is not None else workspace
        if not self.isolated or self.bwrap is None:
            return SandboxResult(shell.run(argv, cwd=where, env=clean, timeout_s=timeout_s))
        _check_tool(str(argv[0]), clean["PATH"])
        with ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lw-sbx-")))
            proxy = stack.enter_context(EgressProxy(self.policy)) if network else None
            bwrap_argv = self._bwrap_argv(
                argv,
                scratch=scratch,
                cwd=where,
                binds=_Binds(
                    read_write=(workspace, *writable),
                    read_only=(*toolchain, *ca_paths(clean)),
                    socket=proxy.socket if proxy is not None else None,
                ),
            )
            run_env = {**clean, "HOME": SANDBOX_HOME}  # the host's home is not there
            if proxy is not None:
                run_env.update(_proxy_variables())
            result = shell.run(bwrap_argv, env=run_env, timeout_s=timeout_s)
            refused = tuple(proxy.log.refused) if proxy is not None else ()
        return SandboxResult(_as_run_of(result, argv), refused)

    def _bwrap_argv(
        self, argv: Sequence[str], *, scratch: Path, cwd: Path, binds: _Binds
    ) -> list[str]:
        assert self.bwrap is not None
        passwd, group = _identity_files(scratch)
        out = [
            self.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--uid",
            str(_UID),
            "--gid",
            str(_UID),
            "--hostname",
            "sandbox",
            "--cap-drop",
            "ALL",
        ]
        out += _system_binds()
        out += ["--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(group), "/etc/group"]
        # A private /tmp: the sandbox's own tmpfs, not the host's directory.
        out += ["--proc", "/proc"] if self.fresh_proc else []
        out += ["--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]  # noqa: S108
        out += ["--dir", SANDBOX_HOME, "--dir", _RUN_DIR]
        for path in _toolchain_paths(binds.read_only):
            out += ["--ro-bind", str(path), str(path)]
        for path in binds.read_write:
            out += ["--bind", str(path), str(path)]
        out += ["--ro-bind", str(RELAY), f"{_RUN_DIR}/relay.py"]
        relay = [sys.executable, "-I", "-S", f"{_RUN_DIR}/relay.py"]
        if binds.socket is not None:
            out += ["--bind", str(binds.socket), f"{_RUN_DIR}/egress.sock"]
            relay = relay_argv(f"{_RUN_DIR}/relay.py", f"{_RUN_DIR}/egress.sock")
        limits = self.limits
        relay += [
            f"--cpu-s={limits.cpu_s}",
            f"--memory-bytes={limits.memory_bytes}",
            f"--processes={limits.processes}",
            f"--file-bytes={limits.file_bytes}",
            f"--output-bytes={limits.output_bytes}",
        ]
        return [*out, "--chdir", str(cwd), "--", *relay, "--", *[str(a) for a in argv]]


@dataclass(frozen=True)
class _Binds:
    read_write: tuple[Path, ...]
    read_only: tuple[Path, ...]
    socket: Path | None


def relay_argv(relay: str, socket: str) -> list[str]:
    """The relay (``relay.py`` at ``relay``) in front of a command: it listens on
    ``PROXY_PORT`` in its network namespace and forwards to the egress proxy's ``socket``."""
    return [sys.executable, "-I", "-S", relay, "--socket", socket, "--port", str(PROXY_PORT)]


def _check_tool(program: str, search_path: str) -> None:
    """A missing program raises as ``shell.run`` would, rather than failing inside."""
    if shutil.which(program, path=search_path) is None:
        raise ToolNotFoundError(f"'{program}' was not found; is it installed and on PATH?")


def _proxy_variables() -> dict[str, str]:
    url = PROXY_URL
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return {
        **{name: url for name in names},
        **{name.lower(): url for name in names},
        "NO_PROXY": "",
        "no_proxy": "",
    }


def _identity_files(scratch: Path) -> tuple[Path, Path]:
    """``/etc/passwd`` and ``/etc/group`` naming only the sandbox user: tools that look up
    the current user find one, and no host account is listed."""
    passwd, group = scratch / "passwd", scratch / "group"
    passwd.write_text(
        f"sandbox:x:{_UID}:{_UID}:Lockwarden sandbox:{SANDBOX_HOME}:/bin/sh\n", "utf-8"
    )
    group.write_text(f"sandbox:x:{_UID}:\n", "utf-8")
    return passwd, group


def _system_binds() -> list[str]:
    out: list[str] = []
    for name in _SYSTEM_PATHS:
        path = Path(name)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            out += ["--symlink", os.readlink(path), name]
        elif path.exists():
            out += ["--ro-bind", name, name]
    return out


_SHOWN_ANYWAY = tuple(Path(p) for p in ("/usr", "/etc/ssl", "/etc/ca-certificates", "/etc/pki"))


def _toolchain_paths(extra: Sequence[Path]) -> list[Path]:
    """The running interpreter's prefixes and the given paths, without repeats or paths the
    system binds already show."""
    wanted = [Path(sys.prefix), Path(sys.base_prefix), *extra]
    out: list[Path] = []
    for path in wanted:
        resolved = path.resolve()
        for candidate in dict.fromkeys((path.absolute(), resolved)):
            shown = any(_under(candidate, system) for system in _SHOWN_ANYWAY)
            if candidate.exists() and not shown and candidate not in out:
                out.append(candidate)
    return out


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _as_run_of(result: shell.CommandResult, argv: Sequence[str]) -> shell.CommandResult:
    """The result as the command's own: its argv, not the bwrap line around it."""
    return shell.CommandResult(
        argv=tuple(str(a) for a in argv),
        returncode=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
        duration_s=result.duration_s,
    )


def interpreter_prefix(executable: str | Path) -> Path:
    """The installation prefix of an interpreter or tool binary (``<prefix>/bin/tool``),
    after symlinks: what the sandbox must show read-only for it to run."""
    return Path(executable).resolve().parent.parent


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def probe(bwrap: str, *, fresh_proc: bool = True) -> str | None:
    """None when bubblewrap can start a sandbox here, else its own words why not. Asked
    once per process; a failure is asked again once, since a loaded machine can refuse a
    namespace for a moment."""
    why = _probe_once(bwrap, fresh_proc=fresh_proc)
    return None if why is None else _probe_once(bwrap, fresh_proc=fresh_proc)


def _probe_once(bwrap: str, *, fresh_proc: bool) -> str | None:
    argv = [bwrap, "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-net"]
    # The system paths the sandbox shows, not "/": binding "/" recursively also binds every
    # mount below it, and one that goes away meanwhile (a container build's overlay) fails
    # the probe.
    argv += ["--uid", str(_UID), "--gid", str(_UID), *_system_binds()]
    argv += ["--proc", "/proc"] if fresh_proc else ["--tmpfs", "/proc"]
    try:
        result = shell.run(
            [*argv, "--dev", "/dev", "true"], env={"PATH": "/usr/bin:/bin"}, timeout_s=30
        )
    except LockwardenError as exc:
        return exc.user_message
    return None if result.ok else (result.output_tail(3) or f"exit {result.returncode}")


SANDBOX_OFF_WARNING = (
    "the sandbox is off (LOCKWARDEN_SANDBOX=off): repository content (specs, setup.py, "
    "build backends) runs with this process's privileges"
)


def open_sandbox(mode: SandboxMode, *, required: bool) -> Sandbox:
    """The sandbox for this process. ``required`` (serve, worker): refuse to go on without
    one unless the operator turned it off; otherwise (the CLI on a person's own checkout)
    fall back to a plain subprocess and say why."""
    if mode == "off":
        return Sandbox(isolated=False, reason=SANDBOX_OFF_WARNING, trusts_repository=not required)
    bwrap = find_bwrap()
    why = "bubblewrap (bwrap) is not installed" if bwrap is None else probe(bwrap)
    local = not required
    if why is None:
        return Sandbox(isolated=True, bwrap=bwrap, trusts_repository=local)
    if bwrap is not None and "proc" in why and probe(bwrap, fresh_proc=False) is None:
        return Sandbox(isolated=True, bwrap=bwrap, trusts_repository=local, fresh_proc=False)
    if required or mode == "on":
        raise SandboxUnavailableError(
            f"the sandbox cannot start: {why}. Install bubblewrap and allow unprivileged user "
            "namespaces (see docs/security.md), or set LOCKWARDEN_SANDBOX=off to "
            "run repository content unsandboxed"
        )
    return Sandbox(
        isolated=False,
        reason=f"running without the sandbox ({why}); repository content runs as you",
        trusts_repository=True,
    )


__all__ = [
    "SANDBOX_OFF_WARNING",
    "EgressPolicy",
    "Limits",
    "Sandbox",
    "SandboxMode",
    "SandboxResult",
    "SandboxUnavailableError",
    "interpreter_prefix",
    "open_sandbox",
]
