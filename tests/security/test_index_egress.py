"""The index client obeys the sandbox's egress policy: an index URL from a repository cannot
reach loopback, private or link-local addresses, directly or by a redirect."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from bot.sandbox.egress import EgressPolicy
from bot.upstream.index import IndexLookupError, SimpleIndex
from tests.support.index_server import PackageIndex
from tests.support.served import LocalServer, QuietHandler, QuietServer

METADATA_URL = "http://169.254.169.254/simple/"


class _Redirector(QuietHandler):
    def dispatch(self, *, send_body: bool) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", METADATA_URL + "demo/")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def redirector() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), _Redirector)
    with LocalServer(server, "redirector").start() as running:
        yield f"http://127.0.0.1:{running.port}/simple"


def test_loopback_index_is_refused_without_a_request(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.publish("demo", "1.0")
    cache = tmp_path / "cache"
    with SimpleIndex(package_index.url, cache_dir=cache, policy=EgressPolicy()) as index:
        with pytest.raises(IndexLookupError) as refused:
            index.project("demo")
        assert index.requests == 0
    message = str(refused.value)
    assert "demo" in message
    assert "127.0.0.1" in message
    assert "loopback" in message
    assert "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS" in message
    assert package_index.page_requests == 0
    assert not cache.exists()


@pytest.mark.parametrize("own_client", [False, True])
def test_redirect_to_link_local_is_refused(
    redirector: str, tmp_path: Path, own_client: bool
) -> None:
    """Also with a caller's client that has no guard of its own: each hop is checked."""
    cache = tmp_path / "cache"
    client = httpx.Client() if own_client else None
    try:
        index = SimpleIndex(
            redirector, cache_dir=cache, policy=EgressPolicy(("127.0.0.1",)), client=client
        )
        with pytest.raises(IndexLookupError) as refused:
            index.project("demo")
    finally:
        if client is not None:
            client.close()
    assert "169.254.169.254" in str(refused.value)
    assert "link-local" in str(refused.value)
    assert index.requests == 1  # the redirect only, never the metadata address
    assert not cache.exists()
