"""Helpers for the receiver's tests: settings, signing, posting, a raw ASGI call."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import SecretStr

from bot.jobs.queue import InMemoryQueue, JobQueue
from bot.server.app import create_app
from bot.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

SECRET = "It's a Secret to Everybody"
PREVIOUS_SECRET = "the old secret"
APP_SLUG = "lockwarden"
REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"

_deliveries = itertools.count(1)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secret": SecretStr(SECRET),
        "webhook_secret_previous": None,
        "webhook_max_body_bytes": 25 * 1024 * 1024,
        "app_slug": APP_SLUG,
        "delivery_cache_size": 10_000,
    }
    values.update(overrides)
    return Settings(**values)


def make_app(queue: JobQueue | None = None, **overrides: Any) -> FastAPI:
    return create_app(make_settings(**overrides), queue if queue is not None else InMemoryQueue())


def client(app: FastAPI) -> TestClient:
    """A TestClient; starlette warns at import that it would rather use httpx2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_delivery_id() -> str:
    return f"00000000-0000-4000-8000-{next(_deliveries):012d}"


def headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str = SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or new_delivery_id(),
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
    }


def post(
    test_client: TestClient,
    event: str,
    payload: Mapping[str, Any] | bytes,
    *,
    delivery: str | None = None,
    secret: str = SECRET,
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return test_client.post(
        "/webhook", content=body, headers=headers(event, body, delivery=delivery, secret=secret)
    )


def call_asgi(
    app: FastAPI, request_headers: Mapping[str, str], chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """POST /webhook straight through ASGI, feeding the body chunk by chunk (the TestClient
    reads a generator body whole before the app sees it). Returns the status, the JSON
    answer and how many chunks the app pulled."""
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhook",
        "raw_path": b"/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request_headers.items()
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        await app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled
