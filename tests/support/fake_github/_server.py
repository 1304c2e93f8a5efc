"""The one HTTP server: REST under ``/api/v3``, GraphQL at ``/api/graphql`` and ``/graphql``, git
smart HTTP under ``/<owner>/<repo>.git``.

Standard library only (``ThreadingHTTPServer``): the git side needs the raw request stream
(chunked and gzip bodies, passed through to ``git http-backend`` as they arrive) and a streamed
response, which a plain handler gives directly.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import jwt

from tests.support.fake_github._errors import default_fault_body
from tests.support.fake_github._git import ZERO_SHA, git_env
from tests.support.fake_github._graphql import GRAPHQL_PATHS, handle_graphql
from tests.support.fake_github._render import installation_level_ok
from tests.support.fake_github._rest import handle_rest
from tests.support.fake_github._state import (
    GHES_VERSION,
    Fault,
    Push,
    RecordedRequest,
    Repo,
    Token,
)

if TYPE_CHECKING:
    from tests.support.fake_github._fake import FakeGitHub

API_PREFIX = "/api/v3"
GIT_PATH = re.compile(
    r"^/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?"
    r"/(?P<rest>info/refs|git-upload-pack|git-receive-pack)$"
)
JWT_SKEW_S = 60
JWT_MAX_LIFETIME_S = 600
_CHUNK = 64 * 1024


@dataclass
class Auth:
    kind: Literal["none", "jwt", "installation", "invalid"]
    token: Token | None = None
    error: str | None = None

    @property
    def label(self) -> str | None:
        if self.kind == "installation" and self.token is not None:
            return f"installation:{self.token.installation_id}"
        return None if self.kind == "none" else self.kind


def verify_jwt(fake: FakeGitHub, raw: str) -> str | None:
    """None when ``raw`` is a valid app JWT, else GitHub's message for what is wrong."""
    undecodable = "A JSON web token could not be decoded"
    try:
        claims = jwt.decode(
            raw,
            fake.public_key_pem,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iat", "exp", "iss"],
            },
        )
    except jwt.PyJWTError:
        return undecodable
    iat, exp, iss = claims["iat"], claims["exp"], claims["iss"]
    now = time.time()
    if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + JWT_SKEW_S:
        return (
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued."
        )
    if not isinstance(exp, int) or isinstance(exp, bool) or exp + JWT_SKEW_S < now:
        return (
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires."
        )
    if exp - iat > JWT_MAX_LIFETIME_S or exp > now + JWT_MAX_LIFETIME_S + JWT_SKEW_S:
        return "'Expiration time' claim ('exp') is too far in the future"
    if exp <= iat:
        return undecodable
    if str(iss) not in (str(fake.app_id), fake.client_id):
        return undecodable
    return None


def resolve_auth(fake: FakeGitHub, header: str | None) -> Auth:
    if not header:
        return Auth("none")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            _, _, value = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Auth("invalid")
    elif scheme not in ("bearer", "token"):
        return Auth("invalid")
    if scheme == "bearer" and value.count(".") == 2:
        error = verify_jwt(fake, value)
        return Auth("invalid", error=error) if error else Auth("jwt")
    token = fake.valid_token(value)
    return Auth("installation", token=token) if token else Auth("invalid")


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased; the credentials of ``Authorization`` replaced."""
    out = {}
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} <redacted>"
        out[key.lower()] = value
    return out


@dataclass
class Connection:
    """One TCP connection the server accepted, and the requests it carried, in order."""

    client: tuple[str, int]
    requests: list[str]
    """``METHOD /path`` of each request."""
    open: bool = True
    """False once the client closed it (or it timed out)."""

    @property
    def rest(self) -> bool:
        """It carried REST API requests (not git's)."""
        return any(r.split(" ", 1)[1].startswith(API_PREFIX + "/") for r in self.requests)


def all_closed(connections: list[Connection], timeout_s: float = 5.0) -> bool:
    """Whether the client closed every one of ``connections``, waiting up to ``timeout_s``
    for the server's handler threads to notice."""
    deadline = time.monotonic() + timeout_s
    while any(c.open for c in connections) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(c.open for c in connections)


class FakeGitHubServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.connections: list[Connection] = []
        """Every connection accepted, so tests can tell whether clients reuse them."""
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def start_server(fake: FakeGitHub) -> tuple[FakeGitHubServer, threading.Thread]:
    server = FakeGitHubServer(fake)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"fake-github-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return server, thread


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHubServer
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # One handler per accepted connection: its requests are counted on one record.
        self.counted = Connection(self.client_address, [])
        with self.server.fake.lock:
            self.server.connections.append(self.counted)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.counted.open = False

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- dispatch ------------------------------------------------------------------------

    def _handle(self) -> None:
        fake = self.server.fake
        split = urllib.parse.urlsplit(self.path)
        raw_path, query = split.path, split.query
        path = urllib.parse.unquote(raw_path)
        git = GIT_PATH.match(path)
        fault = fake.take_fault(self.command, path)
        if fault is not None:
            self._fault(fault, path, query, git is not None)
        elif git is not None:
            self._git(git["owner"], git["repo"], git["rest"], path, query)
        elif raw_path in GRAPHQL_PATHS:
            self._graphql(path, query)
        elif raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/"):
            self._rest(raw_path[len(API_PREFIX) :] or "/", path, query)
        else:
            body = self._read_body()
            self._send_json(404, {"message": "Not Found"}, path=path, query=query, body=body)

    def _record(
        self, path: str, query: str, status: int, auth: str | None, body: bytes = b""
    ) -> None:
        fake = self.server.fake
        with fake.lock:
            self.counted.requests.append(f"{self.command} {path}")
            fake.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=path,
                    query=query,
                    headers=redact(dict(self.headers.items())),
                    status=status,
                    auth=auth,
                    body=body,
                    time=time.time(),
                )
            )

    # -- request bodies ------------------------------------------------------------------

    def _body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, _CHUNK))
                    if not data:
                        raise ConnectionError("client went away")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(1024)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(remaining, _CHUNK))
                if not data:
                    raise ConnectionError("client went away")
                remaining -= len(data)
                yield data

    def _read_body(self) -> bytes:
        return b"".join(self._body_chunks())

    # -- responses -----------------------------------------------------------------------

    def _send_json(
        self,
        status: int,
        data: Any,
        *,
        path: str,
        query: str,
        body: bytes = b"",
        auth: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = b"" if data is None else json.dumps(data).encode()
        sent = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
        sent.update(headers or {})
        self._record(path, query, status, auth, body)
        self._send(status, payload, sent)

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def _fault(self, fault: Fault, path: str, query: str, is_git: bool) -> None:
        if is_git:
            self.close_connection = True  # the git body is not read; do not reuse the stream
            body = b""
        else:
            body = self._read_body()
        auth = resolve_auth(self.server.fake, self.headers.get("Authorization"))
        headers = {"X-GitHub-Request-Id": self._request_id()}
        if not is_git:
            headers.update(self._rate_headers(auth, count=False)[0])
        headers.update(fault.headers)
        if is_git:
            headers["Connection"] = "close"
        data = (
            fault.body
            if fault.body is not None
            else default_fault_body(fault.status, fault.headers)
        )
        self._send_json(
            fault.status, data, path=path, query=query, body=body, auth=auth.label, headers=headers
        )

    def _request_id(self) -> str:
        return hashlib.sha256(f"{time.time_ns()}{id(self)}".encode()).hexdigest()[:20].upper()

    def _rate_headers(self, auth: Auth, *, count: bool) -> tuple[dict[str, str], bool]:
        """GitHub's rate-limit headers for this caller (per installation, the app, or the client
        address when unauthenticated), and whether the caller is over its limit."""
        fake = self.server.fake
        counted = auth.kind in ("installation", "jwt")
        key = auth.label if counted and auth.label else f"ip:{self.client_address[0]}"
        limit = fake.rate_limit if counted else 60
        with fake.lock:
            used = fake.rate_used.get(key, 0) + (1 if count else 0)
            fake.rate_used[key] = used
        window = 3600
        reset = (int(time.time()) // window + 1) * window
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }
        return headers, used > limit

    # -- REST ----------------------------------------------------------------------------

    def _rest(self, api_path: str, path: str, query: str) -> None:
        fake = self.server.fake
        body = self._read_body()
        auth = resolve_auth(fake, self.headers.get("Authorization"))
        method = "GET" if self.command == "HEAD" else self.command
        rate, exceeded = self._rate_headers(auth, count=True)
        headers: dict[str, str] = {}
        if exceeded:
            status, data = 403, default_fault_body(403, rate)
        else:
            status, data, headers = handle_rest(
                fake, method, api_path, query, body, auth, self.headers
            )
        sent = {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": self.headers.get("X-GitHub-Api-Version", "2022-11-28"),
            "X-GitHub-Enterprise-Version": GHES_VERSION,
            "X-GitHub-Request-Id": self._request_id(),
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            **rate,
            **headers,
        }
        if method == "GET" and status == 200 and data is not None:
            payload = json.dumps(data).encode()
            etag = 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'
            sent["ETag"] = etag
            sent["Cache-Control"] = "private, max-age=60, s-maxage=60"
            if etag in self.headers.get("If-None-Match", ""):
                self._record(path, query, 304, auth.label, body)
                self._send(304, b"", sent)
                return
        self._send_json(
            status, data, path=path, query=query, body=body, auth=auth.label, headers=sent
        )

    # -- GraphQL -------------------------------------------------------------------------

    def _graphql(self, path: str, query: str) -> None:
        fake = self.server.fake
        body = self._read_body()
        auth = resolve_auth(fake, self.headers.get("Authorization"))
        headers = {"X-GitHub-Request-Id": self._request_id()}
        if self.command != "POST":
            self._send_json(
                404, {"message": "Not Found"}, path=path, query=query, body=body, headers=headers
            )
            return
        status, data = handle_graphql(fake, body, auth)
        self._send_json(
            status, data, path=path, query=query, body=body, auth=auth.label, headers=headers
        )

    # -- git smart HTTP --------------------------------------------------------------------

    def _git(self, owner: str, name: str, rest: str, path: str, query: str) -> None:
        fake = self.server.fake
        auth = resolve_auth(fake, self.headers.get("Authorization"))
        allowed = self._git_allowed(owner, name, rest, path, query, auth)
        if allowed is None:
            return
        repo, token, writing = allowed
        refs_before = repo.git.refs() if writing and self.command == "POST" else None
        env = self._git_cgi_env(repo, rest, query)
        status = self._git_backend(env)
        self._record(path, query, status, auth.label)
        if refs_before is not None:
            self._after_push(repo.full_name, refs_before, token.installation_id)

    def _git_allowed(
        self, owner: str, name: str, rest: str, path: str, query: str, auth: Auth
    ) -> tuple[Repo, Token, bool] | None:
        """The repository, the token and whether it is a push; None once a refusal is sent."""
        fake = self.server.fake
        params = urllib.parse.parse_qs(query)
        service = params.get("service", [""])[0] if rest == "info/refs" else rest
        writing = service == "git-receive-pack"
        if self.command not in ("GET", "POST") or service not in (
            "git-upload-pack",
            "git-receive-pack",
        ):
            self._git_refuse(404, "Not Found", path, query, auth.label)
            return None
        if auth.kind != "installation" or auth.token is None:
            self._git_refuse(
                401,
                "Invalid username or password.",
                path,
                query,
                auth.label,
                {"WWW-Authenticate": 'Basic realm="GitHub"'},
            )
            return None
        repo = fake.find_repo(owner, name)
        if repo is None or not fake.token_covers(auth.token, repo):
            self._git_refuse(404, "Repository not found.", path, query, auth.label)
            return None
        # Reading a repository's git data takes ``contents: read`` (metadata alone does not
        # clone), pushing ``contents: write``.
        needed = "write" if writing else "read"
        if not installation_level_ok(auth.token.permissions.get("contents"), needed):
            self._git_refuse(
                403,
                f"Permission to {repo.full_name}.git denied to {fake.bot_login}.",
                path,
                query,
                auth.label,
            )
            return None
        return repo, auth.token, writing

    def _git_cgi_env(self, repo: Repo, rest: str, query: str) -> dict[str, str]:
        """``git http-backend``'s CGI environment for this request."""
        fake = self.server.fake
        env = git_env(
            fake.home,
            {
                "GIT_PROJECT_ROOT": str(fake.repos_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": f"/{repo.owner}/{repo.name}.git/{rest}",
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "REMOTE_USER": fake.bot_login,
                "REMOTE_ADDR": self.client_address[0],
                "GIT_HTTP_MAX_REQUEST_BUFFER": str(512 * 1024 * 1024),
            },
        )
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if self.headers.get("Content-Length") and not chunked:
            env["CONTENT_LENGTH"] = self.headers["Content-Length"]
        if self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        return env

    def _git_backend(self, env: dict[str, str]) -> int:
        """Runs ``git http-backend``, the request body streamed in and its answer streamed
        out (chunked); its status."""
        proc = subprocess.Popen(
            ["git", "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        stdin = cast("IO[bytes]", proc.stdin)
        stdout = cast("io.BufferedReader", proc.stdout)
        stderr = cast("IO[bytes]", proc.stderr)
        errors: list[bytes] = []
        feeder = threading.Thread(target=self._feed, args=(stdin,), daemon=True)
        drain = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
        feeder.start()
        drain.start()
        try:
            status, headers = _read_cgi_headers(stdout)
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := stdout.read1(_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            feeder.join(timeout=60)
            stdout.close()
            proc.wait(timeout=60)
            drain.join(timeout=5)
            if proc.returncode != 0:
                fake = self.server.fake
                with fake.lock:
                    fake.git_errors.append(b"".join(errors).decode(errors="replace"))
        return status

    def _feed(self, stdin: IO[bytes]) -> None:
        try:
            if self.command == "POST":
                for chunk in self._body_chunks():
                    stdin.write(chunk)
        except (BrokenPipeError, ConnectionError):
            self.close_connection = True
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    def _after_push(self, full_name: str, before: dict[str, str], installation_id: int) -> None:
        fake = self.server.fake
        with fake.lock:
            repo = fake.repo(full_name)
            after = repo.git.refs()
            for ref in sorted(set(before) | set(after)):
                old, new = before.get(ref, ZERO_SHA), after.get(ref, ZERO_SHA)
                if old == new:
                    continue
                fake.pushes.append(Push(repo.full_name, ref, old, new, installation_id))
                repo.pushed_at = time.time()
                if new == ZERO_SHA and ref.startswith("refs/heads/"):
                    fake.branch_deleted(repo, ref[len("refs/heads/") :], old)

    def _git_refuse(
        self,
        status: int,
        message: str,
        path: str,
        query: str,
        auth: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.command == "POST":
            self.close_connection = True
        self._record(path, query, status, auth)
        sent = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        if self.command == "POST":
            sent["Connection"] = "close"
        self._send(status, f"{message}\n".encode(), sent)


def _read_cgi_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]]]:
    status = 200
    headers: list[tuple[str, str]] = []
    while True:
        line = stdout.readline()
        if not line or line in (b"\r\n", b"\n"):
            break
        key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((key.strip(), value.strip()))
    if status == 200 and not headers:
        status = int(HTTPStatus.INTERNAL_SERVER_ERROR)
    return status, headers
