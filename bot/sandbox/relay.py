"""The first process inside a sandbox: it relays a loopback port to the egress proxy, sets
the resource limits, runs the command and caps what it prints.

It runs with ``python -I`` on this file alone (the standard library only), because the
sandbox sees the interpreter but not necessarily Lockwarden's own installation. Inside the
sandbox's network namespace there is nothing but loopback, so ``HTTP(S)_PROXY`` pointing at
this relay is the only way out; the proxy outside decides what may be reached.
"""

from __future__ import annotations

import contextlib
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

_TRUNCATED = b"\n[output truncated by Lockwarden's sandbox: more than %d bytes]\n"


def _serve(listener: socket.socket, target: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, target), daemon=True).start()


def _relay(client: socket.socket, target: str) -> None:
    with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
        try:
            upstream.connect(target)
            copy_both_ways(client, upstream, idle_timeout_s=600)
        except OSError:
            return


def copy_both_ways(one: socket.socket, other: socket.socket, *, idle_timeout_s: float) -> None:
    """Copy bytes between two sockets until either closes or both stay idle too long.

    The egress proxy outside the sandbox uses it too (this file is importable as well as run).
    """
    sockets = [one, other]
    while True:
        readable, _, _ = select.select(sockets, [], [], idle_timeout_s)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (other if source is one else one).sendall(data)


def _limits(args: _Options) -> None:
    """Resource limits for the command and everything it starts (inherited across exec)."""
    for which, value in (
        (resource.RLIMIT_CPU, args.cpu_s),
        (resource.RLIMIT_AS, args.memory_bytes),
        (resource.RLIMIT_NPROC, args.processes),
        (resource.RLIMIT_FSIZE, args.file_bytes),
        (resource.RLIMIT_CORE, 0),
    ):
        if value is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (value, value))


def _pump(source: IO[bytes], sink: IO[bytes], budget: list[int], cap: int) -> None:
    """Copy a stream while the shared budget lasts, then note the cut once and drain."""
    while True:
        chunk = source.read1(65536)  # type: ignore[attr-defined]
        if not chunk:
            return
        if budget[0] <= 0:
            continue
        kept = chunk[: budget[0]]
        budget[0] -= len(chunk)
        sink.write(kept)
        if budget[0] <= 0:
            sink.write(_TRUNCATED % cap)
        sink.flush()


class _Options:
    """The relay's settings (a plain class: ``dataclasses`` imports ``inspect``)."""

    def __init__(self) -> None:
        self.socket: str | None = None
        self.port = 0
        self.cpu_s: int | None = None
        self.memory_bytes: int | None = None
        self.processes: int | None = None
        self.file_bytes: int | None = None
        self.output_bytes = 16 * 1024 * 1024


_NUMBERS = ("port", "cpu_s", "memory_bytes", "processes", "file_bytes", "output_bytes")


def parse(argv: Sequence[str]) -> tuple[_Options, list[str]]:
    """``--name value`` or ``--name=value`` options, then ``--`` and the command. Not
    argparse: it starts before every sandboxed command, and importing it costs more than
    the rest of the relay."""
    options, rest = _Options(), list(argv)
    while rest and rest[0] != "--":
        name, equals, value = rest.pop(0).partition("=")
        field = name.removeprefix("--").replace("-", "_")
        if not name.startswith("--") or not hasattr(options, field):
            raise ValueError(f"unknown option {name}")
        if not equals:
            if not rest:
                raise ValueError(f"{name} needs a value")
            value = rest.pop(0)
        setattr(options, field, int(value) if field in _NUMBERS else value)
    command = rest[1:]
    if not command:
        raise ValueError("no command")
    return options, command


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args, command = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        sys.stderr.write(f"relay: {exc}\n")
        return 2
    if args.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(64)
        threading.Thread(target=_serve, args=(listener, args.socket), daemon=True).start()
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: _limits(args),
        )
    except OSError as exc:
        sys.stderr.write(f"{command[0]}: {exc.strerror or exc}\n")
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    # One budget for both streams: the cap is on what the command prints in all.
    budget = [args.output_bytes]
    pumps = [
        threading.Thread(target=_pump, args=(source, sink, budget, args.output_bytes))
        for source, sink in ((child.stdout, sys.stdout.buffer), (child.stderr, sys.stderr.buffer))
    ]
    for pump in pumps:
        pump.start()
    code = child.wait()
    for pump in pumps:
        pump.join()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
