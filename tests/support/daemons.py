"""A docker daemon and a throwaway image registry for the tests.

What works on this kind of machine (Debian bookworm VM, root, cgroup v1, ext4 root filesystem,
Debian's docker.io 20.10 with its own containerd and runc; the ``docker`` client on PATH may be
newer, e.g. 28.x, and negotiates the API down and falls back to the legacy builder):

* Storage driver: dockerd's automatic choice is ``overlay2`` (backing filesystem extfs,
  d_type supported).  Nothing is forced, so a machine without overlay support falls back to
  ``vfs`` by dockerd's own priority list.
* Networking: dockerd's default bridge (``docker0`` on 172.17.0.0/16) *can* be created here,
  but it rewrites the host's iptables (NAT and FORWARD rules, FORWARD policy DROP), turns on
  IP forwarding and leaves ``docker0`` behind after the daemon stops.  The daemon is therefore
  started with ``--bridge=none --iptables=false --ip-masq=false --ip-forward=false``: only the
  ``host`` and ``none`` networks exist, and the host is left as it was.  Builds use
  ``docker build --network host`` (RUN steps then reach a package index on 127.0.0.1 and the
  host's network); ``docker run --network none --memory 256m --cpus 1`` works (cgroup v1
  memory limit seen inside the container: 268435456); a ``docker run`` without ``--network``
  gets a loopback interface only.
* Registries on 127.0.0.0/8 are insecure by default (``docker info`` lists 127.0.0.0/8 under
  InsecureRegistryCIDRs), so ``docker push 127.0.0.1:<port>/...`` speaks plain HTTP with no
  ``insecure-registries`` setting.  buildah needs ``--tls-verify=false`` for the same push.
* buildah (not a daemon; nothing to start here) needs ``--runtime runc``: its default, crun,
  fails with "cgroups in hybrid mode not supported".

:func:`ensure_dockerd` reuses a daemon that already answers ``docker info``.  Otherwise it starts
one on ``$DOCKER_HOST`` (default ``unix:///var/run/docker.sock``) with its data root in the test
cache directory, so imported and built images survive between runs.  A daemon started here is
recorded in ``dockerd.json`` in the cache directory; every process that uses it holds a shared
lock on ``dockerd.users``, and the last one to exit stops it.  A daemon that the tests did not
start is never stopped.

:func:`start_registry` runs Debian's ``docker-registry`` (distribution 2.8) on a free port of
127.0.0.1 with filesystem storage and no authentication.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from tests.support.base_image import ToolMissing, cache_dir, locked, require_tool

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DOCKERD_FLAGS = (
    *("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"),
    "--log-level=warn",
)
DOCKERD_START_TIMEOUT = 60.0
REGISTRY_START_TIMEOUT = 20.0

_STATE_FILE = "dockerd.json"
_USERS_FILE = "dockerd.users"
_START_LOCK = "dockerd.lock"

# Kept for the life of the process: the daemon this process started, and its shared lock.
_started: subprocess.Popen[bytes] | None = None
_users_handle: IO[str] | None = None


# -- dockerd ---------------------------------------------------------------------------------


def docker_answers(docker_host: str | None, timeout: float = 10) -> bool:
    """Whether ``docker info`` gets an answer from the daemon at ``docker_host``."""
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def ensure_dockerd() -> str:
    """A docker daemon that answers; the DOCKER_HOST value to reach it."""
    require_tool("docker")
    configured = os.environ.get("DOCKER_HOST") or None
    host = configured or DEFAULT_DOCKER_HOST
    cache = cache_dir()
    with locked(cache / _START_LOCK):
        if not docker_answers(configured):
            if not host.startswith("unix://"):
                raise RuntimeError(f"DOCKER_HOST={host} does not answer `docker info`")
            _start_dockerd(cache, host)
        _join_if_ours(cache, host)
    return host


def _start_dockerd(cache: Path, host: str) -> None:
    global _started
    dockerd = require_tool("dockerd")
    if os.geteuid() != 0:
        raise ToolMissing("starting dockerd needs root")
    data_root = cache / "docker"
    # Short, and distinct per data root: containerd's socket lives below it (108-byte limit).
    digest = hashlib.sha256(str(data_root.resolve()).encode()).hexdigest()[:8]
    exec_root = Path("/run") / f"lockwarden-test-docker-{digest}"
    pidfile = cache / "dockerd.pid"
    _clear_stale_pidfile(pidfile)
    log = cache / "dockerd.log"
    log_start = log.stat().st_size if log.exists() else 0
    argv = [
        dockerd,
        "--host",
        host,
        "--data-root",
        str(data_root),
        "--exec-root",
        str(exec_root),
        "--pidfile",
        str(pidfile),
        *DOCKERD_FLAGS,
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started = proc
    (cache / _STATE_FILE).write_text(json.dumps({"pid": proc.pid, "host": host}))
    deadline = time.monotonic() + DOCKERD_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (cache / _STATE_FILE).unlink(missing_ok=True)
            raise RuntimeError(
                f"dockerd exited {proc.returncode} while starting; from {log}:\n"
                + _log_tail(log, log_start)
            )
        # Answered by this very daemon (it writes its pid file before it listens).
        if _read_pid(pidfile) == proc.pid and docker_answers(host, timeout=5):
            return
        time.sleep(0.5)
    _stop_pid(proc.pid)
    (cache / _STATE_FILE).unlink(missing_ok=True)
    raise RuntimeError(
        f"dockerd did not answer within {DOCKERD_START_TIMEOUT:.0f} s; from {log}:\n"
        + _log_tail(log, log_start)
    )


def _log_tail(log: Path, start: int) -> str:
    with log.open("rb") as handle:
        handle.seek(start)
        return handle.read().decode(errors="replace")[-4000:]


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _clear_stale_pidfile(pidfile: Path) -> None:
    """Drop the pid file of a daemon that has exited.

    dockerd refuses to start while its pid file names a live process, and a daemon that was
    stopped stays a zombie (which counts as live) until its parent reaps it.
    """
    pid = _read_pid(pidfile)
    if pid is None or not _is_running_dockerd(pid):
        pidfile.unlink(missing_ok=True)


def _read_state(cache: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((cache / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _is_running_dockerd(pid: int) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state is the field after the parenthesised command name; Z is a zombie.
    return comm == "dockerd" and stat.rpartition(")")[2].split()[0] != "Z"


def _join_if_ours(cache: Path, host: str) -> None:
    """Register this process as a user of a daemon that the tests started (caller holds lock)."""
    global _users_handle
    state = _read_state(cache)
    if state is None or state.get("host") != host:
        return
    if not _is_running_dockerd(int(state["pid"])):
        (cache / _STATE_FILE).unlink(missing_ok=True)
        return
    if _users_handle is not None:
        return
    handle = (cache / _USERS_FILE).open("a")
    fcntl.flock(handle, fcntl.LOCK_SH)
    _users_handle = handle
    atexit.register(_leave, cache)


def _leave(cache: Path) -> None:
    """At exit: stop the daemon the tests started, unless another process still uses it."""
    global _users_handle
    handle = _users_handle
    if handle is None:
        return
    with locked(cache / _START_LOCK):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # Someone else still holds a shared lock: they stop it when they leave.
        else:
            state = _read_state(cache)
            if state is not None and _is_running_dockerd(int(state["pid"])):
                _stop_pid(int(state["pid"]))
            (cache / _STATE_FILE).unlink(missing_ok=True)
            _clear_stale_pidfile(cache / "dockerd.pid")
        finally:
            handle.close()
            _users_handle = None


def _stop_pid(pid: int, timeout: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _started is not None and _started.pid == pid:
        try:
            _started.wait(timeout)
        except subprocess.TimeoutExpired:
            _started.kill()
            _started.wait()
        return
    deadline = time.monotonic() + timeout
    while _is_running_dockerd(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_running_dockerd(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- registry --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _registry_answers(address: str) -> bool:
    # No proxy, whatever the environment says: the registry is on the loopback interface.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_registry(tmp: Path) -> tuple[str, Callable[[], None]]:
    """An image registry on 127.0.0.1 storing into ``tmp``; ("127.0.0.1:<port>", stop)."""
    binary = require_tool("docker-registry")
    tmp.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
    last_error = ""
    for attempt in range(3):
        address = f"127.0.0.1:{_free_port()}"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(tmp / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": address, "secret": "lockwarden-tests"},
        }
        config_path = tmp / "config.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = tmp / f"registry-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + REGISTRY_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _registry_answers(address):
                return address, _stopper(proc)
            time.sleep(0.1)
        _stopper(proc)()
        last_error = log.read_text(errors="replace")[-4000:]
        if "address already in use" not in last_error:
            break
    raise RuntimeError(f"docker-registry did not start:\n{last_error}")


def _stopper(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    return stop
