"""Base images: digests asked of a registry.

The registry tests push the local base image to a real ``docker-registry`` on 127.0.0.1; the
anonymous-token flow (Docker Hub, ghcr.io) is played by a small HTTP server of our own that
challenges, hands out a token and serves a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.images.base_images import MANIFEST_TYPES, RegistryError, plain_http, resolve_digest
from bot.images.buildah import BuildahBuilder
from bot.images.dockerfile.from_lines import BaseImageRef, find_base_images
from tests.support.base_image import BUILDAH_NAMES, ToolMissing
from tests.support.daemons import start_registry
from tests.support.sandbox import SANDBOX

DIGEST_A = "sha256:" + "a" * 64


def ref_of(line: str) -> BaseImageRef:
    (ref,) = find_base_images(line, "Dockerfile")
    return ref


@pytest.mark.parametrize(
    ("registry", "insecure", "expected"),
    [
        ("localhost", (), True),
        ("localhost:5000", (), True),
        ("127.0.0.1:5000", (), True),
        ("127.1.2.3", (), True),
        ("[::1]:5000", (), True),
        ("::1", (), True),
        ("docker.io", (), False),
        ("ghcr.io", (), False),
        ("10.0.0.5:5000", (), False),
        ("10.0.0.5:5000", ("10.0.0.0/8",), True),
        ("registry.internal:5000", ("registry.internal:5000",), True),
        ("registry.internal:5000", ("registry.internal",), True),
        ("registry.internal:5000", ("other.internal",), False),
        ("registry.internal", ("10.0.0.0/8",), False),
    ],
)
def test_plain_http(registry: str, insecure: tuple[str, ...], expected: bool) -> None:
    assert plain_http(registry, insecure) is expected


# -- the anonymous token flow, against a registry of our own ---------------------------------

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
TOKEN = "anonymous-pull-token"


@dataclass
class TokenRegistry:
    """What the fake registry does; ``requests`` records what it was asked."""

    challenge: str | None = "bearer"
    token_status: int = 200
    head_status: int = 200
    digest_header: bool = True
    accept_token: bool = True
    token_body: bytes | None = None
    """Answered by the token service instead of a token."""
    challenge_header: str | None = None
    """Sent instead of the usual challenge."""
    digest_value: str = MANIFEST_DIGEST
    manifest_status: int = 200
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


class _RegistryHandler(BaseHTTPRequestHandler):
    server: _RegistryServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, *, send_body: bool) -> None:
        state = self.server.state
        split = urllib.parse.urlsplit(self.path)
        state.requests.append((self.command, self.path, dict(self.headers.items())))
        if split.path == "/token":
            query = urllib.parse.parse_qs(split.query)
            if state.token_status != 200:
                self._send(state.token_status, b"token service broken", send_body)
                return
            assert query["scope"] == ["repository:team/app:pull"]
            body = state.token_body or json.dumps({"token": TOKEN}).encode()
            self._send(200, body, send_body)
            return
        prefix = "/v2/team/app/manifests/"
        if not split.path.startswith(prefix):
            self._send(404, b"{}", send_body)
            return
        authorized = state.accept_token and self.headers.get("Authorization") == f"Bearer {TOKEN}"
        if state.challenge and not authorized:
            challenge = (
                f'Bearer realm="{state.url}/token",service="fake",scope="repository:team/app:pull"'
                if state.challenge == "bearer"
                else 'Basic realm="fake"'
            )
            challenge = state.challenge_header or challenge
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self._send(401, body, send_body, {"WWW-Authenticate": challenge})
            return
        if split.path.removeprefix(prefix) != "1":
            body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
            self._send(404, body, send_body)
            return
        if state.manifest_status != 200:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
            self._send(state.manifest_status, body, send_body)
            return
        if self.command == "HEAD" and state.head_status != 200:
            self._send(state.head_status, b"", send_body)
            return
        headers = {"Content-Type": MANIFEST_TYPES[0]}
        if state.digest_header:
            headers["Docker-Content-Digest"] = state.digest_value
        self._send(200, MANIFEST, send_body, headers)

    def _send(
        self, status: int, body: bytes, send_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _RegistryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: TokenRegistry) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.state = state


@pytest.fixture
def token_registry() -> Iterator[TokenRegistry]:
    state = TokenRegistry()
    server = _RegistryServer(state)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def fake_ref(registry: TokenRegistry, tag: str = "1") -> BaseImageRef:
    return ref_of(f"FROM {registry.url.removeprefix('http://')}/team/app:{tag}")


def test_bearer_challenge_gets_an_anonymous_token(token_registry: TokenRegistry) -> None:
    assert resolve_digest(fake_ref(token_registry), policy=SANDBOX.policy) == MANIFEST_DIGEST

    methods = [(method, path.partition("?")[0]) for method, path, _ in token_registry.requests]
    assert methods == [
        ("HEAD", "/v2/team/app/manifests/1"),
        ("GET", "/token"),
        ("HEAD", "/v2/team/app/manifests/1"),
    ]
    first, _, last = (headers for _, _, headers in token_registry.requests)
    assert first["Accept"] == ", ".join(MANIFEST_TYPES)
    assert "Authorization" not in first
    assert last["Authorization"] == f"Bearer {TOKEN}"


def test_without_a_digest_header_the_manifest_is_hashed(token_registry: TokenRegistry) -> None:
    token_registry.challenge = None
    token_registry.digest_header = False

    assert resolve_digest(fake_ref(token_registry), policy=SANDBOX.policy) == MANIFEST_DIGEST
    assert [method for method, _, _ in token_registry.requests] == ["HEAD", "GET"]


def test_a_registry_refusing_head_is_asked_with_get(token_registry: TokenRegistry) -> None:
    token_registry.head_status = 405

    assert resolve_digest(fake_ref(token_registry), policy=SANDBOX.policy) == MANIFEST_DIGEST
    assert [method for method, _, _ in token_registry.requests][-1] == "GET"


@pytest.mark.parametrize(
    ("setup", "tag", "expected"),
    [
        ({"challenge": "basic"}, "1", "access denied (401; the registry wants credentials"),
        ({"token_status": 500}, "1", "no anonymous token from http://127.0.0.1"),
        ({"accept_token": False}, "1", "access denied by 127.0.0.1"),
        ({}, "2", "has no tag '2' of team/app (404: MANIFEST_UNKNOWN: manifest unknown)"),
        ({"token_body": b"<html>"}, "1", "answered with no JSON"),
        ({"token_body": b'{"expires_in": 300}'}, "1", "answered with no token"),
        ({"challenge_header": 'Bearer service="x"'}, "1", "Bearer challenge has no realm"),
        ({"digest_value": "sha256:short"}, "1", "malformed digest 'sha256:short'"),
        ({"manifest_status": 429}, "1", "limits requests (429: TOOMANYREQUESTS: slow down)"),
        ({"manifest_status": 500}, "1", "answered 500 (TOOMANYREQUESTS: slow down)"),
    ],
)
def test_registry_refusals_are_registry_errors(
    token_registry: TokenRegistry, setup: dict[str, object], tag: str, expected: str
) -> None:
    for key, value in setup.items():
        setattr(token_registry, key, value)
    ref = fake_ref(token_registry, tag)

    with pytest.raises(RegistryError) as caught:
        resolve_digest(ref, policy=SANDBOX.policy)

    assert caught.value.image == ref.canonical
    assert caught.value.user_message.startswith(f"could not resolve {ref.canonical}: ")
    assert expected in caught.value.reason


def test_a_silent_registry_is_a_registry_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # connections wait in the backlog; nothing ever answers
        ref = ref_of(f"FROM 127.0.0.1:{sock.getsockname()[1]}/lockwarden/base:1")

        with pytest.raises(RegistryError, match="did not answer within 1 s"):
            resolve_digest(ref, timeout_s=1, policy=SANDBOX.policy)


def test_an_unreachable_registry_is_a_registry_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ref_of(f"FROM 127.0.0.1:{port}/lockwarden/base:1")

    with pytest.raises(RegistryError) as caught:
        resolve_digest(ref, timeout_s=5, policy=SANDBOX.policy)

    assert f"could not resolve 127.0.0.1:{port}/lockwarden/base:1" in str(caught.value)
    assert f"127.0.0.1:{port} is unreachable" in caught.value.reason
    assert "refused" in caught.value.reason.lower()


# -- a real registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedBase:
    registry: str
    digest: str
    """What buildah reported for the push of the base image to ``lockwarden/base:1``."""


@pytest.fixture(scope="module")
def pushed_base(
    buildah_base: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PushedBase]:
    try:
        registry, stop = start_registry(tmp_path_factory.mktemp("registry"))
    except ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        builder = BuildahBuilder(os.environ, runtime="runc", pull="never")
        digest = builder.push(BUILDAH_NAMES[1], f"{registry}/lockwarden/base:1", tls_verify=False)
        yield PushedBase(registry, digest)
    finally:
        stop()


@pytest.mark.slow
def test_resolve_digest_of_a_pushed_image(pushed_base: PushedBase) -> None:
    port = pushed_base.registry.rpartition(":")[2]
    for image in (
        f"{pushed_base.registry}/lockwarden/base:1",
        f"localhost:{port}/lockwarden/base:1",
        f"{pushed_base.registry}/lockwarden/base:1@{DIGEST_A}",
    ):
        assert resolve_digest(ref_of(f"FROM {image}"), policy=SANDBOX.policy) == pushed_base.digest


@pytest.mark.slow
@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("lockwarden/base:nope", "has no tag 'nope' of lockwarden/base (404: MANIFEST_UNKNOWN"),
        ("lockwarden/other:1", "has no tag '1' of lockwarden/other (404:"),
    ],
)
def test_unknown_tags_are_registry_errors(pushed_base: PushedBase, image: str, reason: str) -> None:
    ref = ref_of(f"FROM {pushed_base.registry}/{image}")

    with pytest.raises(RegistryError) as caught:
        resolve_digest(ref, policy=SANDBOX.policy)

    assert caught.value.image == f"{pushed_base.registry}/{image}"
    assert reason in caught.value.reason
    assert "check the image and tag in the FROM line" in caught.value.reason
