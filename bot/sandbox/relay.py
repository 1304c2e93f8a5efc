"""The first process inside a sandbox: it relays a loopback port to the egress proxy, sets
the resource limits, runs the command and caps what it prints.

It runs with ``python -I`` on this file alone (the standard library only), because the
sandbox sees the interpreter but not necessarily Lockwarden's own installation. Inside the
sandbox's network namespace there is nothing but loopback, so ``HTTP(S)_PROXY`` pointing at
this relay is the only way out; the proxy outside decides what may be reached.
"""

from __future__ import annotations

import argparse
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


def _limits(args: argparse.Namespace) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relay")
    parser.add_argument("--socket")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu-s", type=int)
    parser.add_argument("--memory-bytes", type=int)
    parser.add_argument("--processes", type=int)
    parser.add_argument("--file-bytes", type=int)
    parser.add_argument("--output-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
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
