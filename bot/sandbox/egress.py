"""The sandbox's only way out: an HTTP proxy on a Unix socket that enforces the egress policy.

A sandboxed process has a network namespace of its own with nothing but loopback, where the
relay (``relay.py``) forwards one port to this proxy's socket. Every connection a compiler,
a build backend or an ``setup.py`` makes therefore passes here, and the destination is
checked after DNS resolution: the proxy connects to the address it checked, so a name that
resolves to a private address on the second lookup (DNS rebinding) gains nothing.

Public addresses are allowed; loopback, link-local (cloud metadata at 169.254.169.254),
private, shared, multicast and reserved ranges only when the policy lists the host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from bot.sandbox.relay import copy_both_ways

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_HEAD_LIMIT = 64 * 1024
_CONNECT_TIMEOUT_S = 15.0
_IDLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations a sandboxed process may reach."""

    allowed_hosts: tuple[str, ...] = ()
    """Hosts (names, addresses or CIDR networks) allowed although they are not public:
    an index on a private network that the operator or the person running the CLI listed."""

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` is listed by name, address or network."""
        name = host.strip("[]").lower().rstrip(".")
        for entry in self.allowed_hosts:
            wanted = entry.strip("[]").lower().rstrip(".")
            if name == wanted:
                return True
            address = _address(name)
            if address is not None and "/" in wanted:
                with contextlib.suppress(ValueError):
                    if address in ipaddress.ip_network(wanted, strict=False):
                        return True
        return False

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to ``host`` at ``address`` is refused, or None when it is allowed."""
        kind = address_kind(address)
        if kind is None or self.allows_host(host) or self.allows_host(str(address)):
            return None
        return f"{host} ({address}) is a {kind} address"


# Ranges that lead into the worker's own machine or network rather than to the internet.
# (Documentation ranges such as 203.0.113.0/24 are not among them: they route nowhere
# publicly, and some closed networks answer for public hosts from them.)
_BLOCKED: tuple[tuple[str, str], ...] = (
    ("loopback", "127.0.0.0/8"),
    ("loopback", "::1/128"),
    ("link-local", "169.254.0.0/16"),
    ("link-local", "fe80::/10"),
    ("private", "10.0.0.0/8"),
    ("private", "172.16.0.0/12"),
    ("private", "192.168.0.0/16"),
    ("private", "fc00::/7"),
    ("shared (carrier-grade NAT)", "100.64.0.0/10"),
    ("unspecified", "0.0.0.0/8"),
    ("unspecified", "::/128"),
    ("IETF protocol", "192.0.0.0/24"),
    ("benchmarking", "198.18.0.0/15"),
    ("multicast", "224.0.0.0/4"),
    ("multicast", "ff00::/8"),
    ("reserved", "240.0.0.0/4"),
)
_NETWORKS = tuple((kind, ipaddress.ip_network(net)) for kind, net in _BLOCKED)


def address_kind(address: IPAddress) -> str | None:
    """The non-public range an address falls in (IPv4-mapped IPv6 counts as its IPv4
    address), or None for an address on the internet."""
    mapped = getattr(address, "ipv4_mapped", None)
    checked: IPAddress = mapped if mapped is not None else address
    for kind, network in _NETWORKS:
        if checked.version == network.version and checked in network:
            return kind
    return None


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_destination(policy: EgressPolicy, host: str, port: int) -> tuple[IPAddress, str | None]:
    """Resolve ``host`` and pick an address the policy allows; the refusal when none is."""
    literal = _address(host)
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        candidates = [ipaddress.ip_address(info[4][0]) for info in infos]
    refusal: str | None = None
    for address in candidates:
        refusal = policy.refusal(host, address)
        if refusal is None:
            return address, None
    return candidates[0], refusal


@dataclass
class EgressLog:
    """What the proxy refused during one sandboxed run, for the run's notes."""

    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reason: str) -> None:
        with self._lock:
            if reason not in self.refused:
                self.refused.append(reason)


class _Handler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(_IDLE_TIMEOUT_S)
        try:
            head = _read_head(client)
            method, target, version, rest = _split_request(head)
            if method == "CONNECT":
                host, port = _host_port(target, 443)
                upstream = self._open(client, host, port)
                if upstream is None:
                    return
                client.sendall(f"{version} 200 Connection established\r\n\r\n".encode())
                _pipe(client, upstream)
                return
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                _answer(client, 400, "the proxy takes CONNECT or absolute http:// URLs")
                return
            upstream = self._open(client, url.hostname, url.port or 80)
            if upstream is None:
                return
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            first = f"{method} {path} {version}\r\n".encode("latin-1")
            with upstream:
                upstream.sendall(first + _force_close(rest))
                # The client must not reuse this connection for another request: say so in
                # the answer's head too, whatever the server wrote there.
                client.sendall(_force_close_answer(_read_head(upstream)))
                _pipe(client, upstream)
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def _open(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        try:
            address, refusal = check_destination(self.server.policy, host, port)
        except OSError as exc:
            _answer(client, 502, str(exc))
            return None
        if refusal is not None:
            self.server.log.add(refusal)
            _answer(client, 403, f"refused by Lockwarden's sandbox: {refusal}")
            return None
        try:
            return socket.create_connection((str(address), port), timeout=_CONNECT_TIMEOUT_S)
        except OSError as exc:
            _answer(client, 502, f"cannot connect to {host}:{port}: {exc.strerror or exc}")
            return None


def _read_head(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        if not chunk:
            raise ValueError("connection closed before the request head ended")
        data += chunk
        if len(data) > _HEAD_LIMIT:
            raise ValueError("request head too large")
    return data


def _split_request(head: bytes) -> tuple[str, str, str, bytes]:
    line, _, rest = head.partition(b"\r\n")
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3:
        raise ValueError("malformed request line")
    return parts[0].upper(), parts[1], parts[2], rest


def _host_port(target: str, default: int) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return target.strip("[]"), default
    return host.strip("[]"), int(port)


def _force_close(rest: bytes) -> bytes:
    """The request headers with ``Connection: close`` and no proxy headers: one request
    per upstream connection, so a kept-alive client cannot reuse it for another host."""
    head, _, body = rest.partition(b"\r\n\r\n")
    kept = [
        line
        for line in head.split(b"\r\n")
        if line and not line.lower().startswith((b"connection:", b"proxy-connection:", b"proxy-"))
    ]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body


def _force_close_answer(head: bytes) -> bytes:
    """A response head (and whatever body bytes came with it) with ``Connection: close``."""
    status, _, rest = head.partition(b"\r\n")
    fields, _, body = rest.partition(b"\r\n\r\n")
    kept = [
        line
        for line in fields.split(b"\r\n")
        if line and not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([status, *kept, b"Connection: close"]) + b"\r\n\r\n" + body


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {'Forbidden' if status == 403 else 'Bad Gateway'}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with upstream:
        copy_both_ways(client, upstream, idle_timeout_s=_IDLE_TIMEOUT_S)


class _ProxyServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    policy: EgressPolicy
    log: EgressLog


class EgressProxy:
    """The proxy for one sandboxed run (``with EgressProxy(policy) as proxy: proxy.socket``)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.log = EgressLog()
        self._tmp = tempfile.TemporaryDirectory(prefix="lockwarden-egress-")
        self.socket = Path(self._tmp.name) / "egress.sock"
        self._server = _ProxyServer(str(self.socket), _Handler)
        self._server.policy = policy
        self._server.log = self.log
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits for one poll
            name="lockwarden-egress",
            daemon=True,
        )

    def __enter__(self) -> EgressProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._tmp.cleanup()


@contextlib.contextmanager
def egress_proxy(policy: EgressPolicy) -> Iterator[EgressProxy]:
    with EgressProxy(policy) as proxy:
        yield proxy


def url_refusal(policy: EgressPolicy, url: str) -> str | None:
    """Why the bot's own process must not fetch ``url`` (a non-public host the policy does
    not list), or None. Names are resolved here: in-process fetchers have no proxy."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"{url} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return None  # file: and other schemes are checked as paths by their callers
    try:
        _, refusal = check_destination(policy, host, port or 443)
    except OSError:
        return None  # unresolvable: the fetch itself says so
    return refusal
