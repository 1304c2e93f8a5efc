"""The network of builds and test containers: never the worker's own.

A build's ``RUN`` steps and a repository's tests are untrusted code. On the worker's network
they could reach its loopback services (the database, ``/metrics``) and the cloud metadata
address. So they get one of two networks:

- none at all (tests, by default);
- a private network namespace with nothing but loopback, where ``relay.py`` forwards
  ``127.0.0.1:3128`` to the egress proxy (``bot.sandbox.egress``). ``HTTP(S)_PROXY`` points
  there, so package managers reach public indexes, and loopback, link-local and private
  addresses only when the operator lists them (``LOCKWARDEN_ALLOWED_PRIVATE_HOSTS``).

buildah's OCI isolation joins a namespace by path (``--network=ns:<path>``): a holder process
keeps one alive for the length of a build or a test run, and buildah itself (its pulls) stays
on the worker's network. Chroot isolation (rootless workers) ignores ``--network`` (buildah
1.28 runs ``RUN`` steps in the caller's namespace even with ``none``), so there buildah
itself runs inside the namespace (``Network.prefix``) and its pulls go through the proxy too.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot import shell
from bot.errors import LockwardenError
from bot.sandbox import PROXY_URL, RELAY, relay_argv
from bot.sandbox.egress import EgressLog, EgressPolicy, EgressProxy

# Docker and buildah treat exactly these as predefined build arguments: visible to RUN steps,
# never written into the image's config or history (so digests do not depend on them).
PROXY_VARIABLES: Mapping[str, str] = {
    **{name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    # Nothing bypasses the proxy: inside the namespace, a direct connection reaches nothing.
    "NO_PROXY": "",
    "no_proxy": "",
}
_HOLDER_START_S = 30.0
_HOLDER_ATTEMPTS = 3
_log = logging.getLogger(__name__)


class NetworkUnavailableError(LockwardenError):
    """No private network can be made here: builds and tests do not run on the host's."""

    code = "network-unavailable"


@dataclass(frozen=True)
class Network:
    """Where one buildah command runs: its ``--network`` value, the argv that must wrap it
    (chroot isolation), the variables that lead to the proxy, and the proxy's log."""

    mode: str
    """``none``; ``ns:/proc/<pid>/ns/net``; or ``host`` inside ``prefix``, which is then the
    private namespace buildah runs in, never the worker's."""
    prefix: tuple[str, ...] = ()
    proxy: Mapping[str, str] | None = None
    """``PROXY_VARIABLES`` when the network leads to the proxy, else None."""
    log: EgressLog | None = None

    @property
    def refused(self) -> tuple[str, ...]:
        return tuple(self.log.refused) if self.log is not None else ()


def find_bwrap(env: Mapping[str, str]) -> str:
    found = shutil.which("bwrap", path=env.get("PATH"))
    if found is None:
        raise NetworkUnavailableError(
            "bubblewrap (bwrap) is not installed: builds and tests need it for a network of "
            "their own. Install it (Debian: apt-get install bubblewrap)"
        )
    return found


@contextmanager
def container_network(
    policy: EgressPolicy,
    env: Mapping[str, str],
    *,
    proxied: bool,
    enter: Sequence[str] | None = None,
) -> Iterator[Network]:
    """The network for one buildah command: through the proxy (``proxied``) or none.
    ``enter``: the command itself must run inside the namespace (chroot isolation), after
    this argv (``buildah unshare --`` without root, so the namespace belongs to buildah's
    user namespace); None: buildah joins a holder's namespace by path."""
    with ExitStack() as stack:
        proxy = stack.enter_context(EgressProxy(policy)) if proxied else None
        log = proxy.log if proxy is not None else None
        variables = PROXY_VARIABLES if proxied else None
        if enter is not None:
            prefix = [*enter, *_namespace_argv(find_bwrap(env), proxy.socket if proxy else None)]
            # buildah runs inside the private namespace: "host" is that namespace.
            yield Network("host" if proxied else "none", tuple(prefix), variables, log)
        elif proxy is not None:
            holder = _namespace_argv(find_bwrap(env), proxy.socket)
            # Printed once the relay listens: the pid whose namespace buildah joins.
            holder += ["sh", "-c", 'echo "$$"; exec sleep infinity']
            pid = _start_holder(stack, holder, env)
            yield Network(f"ns:/proc/{pid}/ns/net", (), variables, log)
        else:
            yield Network("none")


def _namespace_argv(bwrap: str, socket: Path | None) -> list[str]:
    """bubblewrap with a new network namespace (loopback only) and the same filesystem,
    then the relay to ``socket`` (when given) in front of the command that follows."""
    # No user namespace of its own: the container runtime (root) or buildah's own user
    # namespace (``buildah unshare``) must be able to join or share it.
    argv = [bwrap, "--unshare-net", "--dev-bind", "/", "/", "--die-with-parent"]
    if socket is None:
        return [*argv, "--"]
    return [*argv, "--", *relay_argv(str(RELAY), str(socket)), "--"]


def _start_holder(stack: ExitStack, holder: list[str], env: Mapping[str, str]) -> int:
    """The holder's pid, its process left to ``stack``. bubblewrap binds "/" with every mount
    below it, and one that goes away meanwhile (another build's overlay) fails the start:
    that is asked again, with a log line."""
    for attempt in range(1, _HOLDER_ATTEMPTS):
        try:
            return _holder_in(stack, holder, env)
        except NetworkUnavailableError as exc:
            _log.warning("starting the build network again (attempt %d failed): %s", attempt, exc)
    return _holder_in(stack, holder, env)


def _holder_in(stack: ExitStack, holder: list[str], env: Mapping[str, str]) -> int:
    with ExitStack() as attempt:
        started = attempt.enter_context(shell.start(holder, env=_tool_env(env)))
        pid = _holder_pid(started)
        stack.enter_context(attempt.pop_all())  # started: the run's stack stops it
    return pid


def _holder_pid(started: shell.Started) -> int:
    try:
        line = started.readline(timeout_s=_HOLDER_START_S)
    except LockwardenError as exc:
        raise NetworkUnavailableError(
            f"the private network for builds and tests did not start: {exc.user_message}. "
            "bubblewrap must be able to create network namespaces here"
        ) from exc
    return int(line)


def _tool_env(env: Mapping[str, str]) -> dict[str, str]:
    return {"PATH": env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
