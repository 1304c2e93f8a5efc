"""The lifecycle every local test server shares: an HTTP server on an ephemeral port of
127.0.0.1, served from a daemon thread, closed once (also as a context manager)."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    """A threading server for tools that open many connections and drop them at will."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default (5) drops connections when uv opens many at once

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Clients (pip, uv, rattler) drop keep-alive connections whenever they like.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 without request logs; GET and HEAD go to ``dispatch``."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as separate small writes

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self.dispatch(send_body=False)

    def dispatch(self, *, send_body: bool) -> None:
        raise NotImplementedError


class LocalServer:
    """Base of the package index, the conda channel and the apt repository."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-{self.port}",
            daemon=True,
        )
        self._closed = False

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
