"""POST /webhook: size cap, signature, headers, dedupe, JSON, ping, queue failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.server import messages
from bot.server.app import create_app
from bot.server.webhook import (
    Context,
    Delivery,
    DeliveryCache,
    Enqueue,
    Ignore,
    Router,
    WebhookMetrics,
    WebhookReceiver,
)
from bot.settings import SettingsError
from tests.server import (
    PREVIOUS_SECRET,
    SECRET,
    call_asgi,
    client,
    headers,
    make_app,
    make_settings,
    new_delivery_id,
    post,
    sign,
)

INSTALLED = {
    "action": "created",
    "installation": {"id": 7},
    "repositories": [{"full_name": "acme/one"}, {"full_name": "acme/two"}],
}


class FlakyQueue(InMemoryQueue):
    """Fails the next ``failures`` enqueues after letting ``ok_first`` through."""

    def __init__(self, failures: int, ok_first: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.ok_first = ok_first

    def enqueue(self, request: JobRequest) -> str | None:
        if self.ok_first:
            self.ok_first -= 1
        elif self.failures:
            self.failures -= 1
            raise ConnectionError("database is down")
        return super().enqueue(request)


# -- start-up --------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, SecretStr("")], ids=["unset", "empty"])
def test_refuses_to_start_without_a_secret(secret: SecretStr | None) -> None:
    with pytest.raises(SettingsError, match="LOCKWARDEN_WEBHOOK_SECRET"):
        create_app(make_settings(webhook_secret=secret), InMemoryQueue())


def test_apps_are_independent() -> None:
    queue = InMemoryQueue()
    first, second = client(make_app(queue)), client(make_app(queue))
    assert post(first, "installation", INSTALLED).status_code == 202
    text = second.get("/metrics").text
    assert 'lockwarden_jobs_enqueued_total{kind="onboard"} 0.0' in text


# -- signature -------------------------------------------------------------------------------


def _post_raw(test_client: Any, body: bytes, request_headers: dict[str, str]) -> Any:
    return test_client.post("/webhook", content=body, headers=request_headers)


@pytest.mark.parametrize(
    ("signature", "detail"),
    [
        pytest.param(None, messages.SIGNATURE_MISSING, id="missing"),
        pytest.param("", messages.SIGNATURE_MALFORMED, id="empty"),
        pytest.param("sha1=" + "0" * 40, messages.SIGNATURE_MALFORMED, id="sha1"),
        pytest.param("sha256=" + "z" * 64, messages.SIGNATURE_MALFORMED, id="not-hex"),
        pytest.param("sha256=" + "0" * 63, messages.SIGNATURE_MALFORMED, id="short"),
        pytest.param("sha256=" + "0" * 64, messages.SIGNATURE_MISMATCH, id="wrong"),
        pytest.param(sign(b"{}", "another secret"), messages.SIGNATURE_MISMATCH, id="other-key"),
    ],
)
def test_bad_signatures_are_refused(signature: str | None, detail: str) -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue))
    body = json.dumps(INSTALLED).encode()
    request_headers = headers("installation", body)
    del request_headers["X-Hub-Signature-256"]
    if signature is not None:
        request_headers["X-Hub-Signature-256"] = signature
    response = _post_raw(test_client, body, request_headers)
    assert response.status_code == 401
    assert response.json() == {"status": "error", "detail": detail}
    assert not queue.jobs


def test_signature_over_a_different_body_is_refused() -> None:
    test_client = client(make_app())
    body = json.dumps(INSTALLED).encode()
    request_headers = headers("installation", body)
    tampered = body.replace(b"acme/one", b"evil/one")
    assert _post_raw(test_client, tampered, request_headers).status_code == 401


def test_right_signature_is_accepted_and_uppercase_hex_too() -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue))
    body = json.dumps(INSTALLED).encode()
    request_headers = headers("installation", body)
    request_headers["X-Hub-Signature-256"] = "sha256=" + sign(body)[7:].upper()
    response = _post_raw(test_client, body, request_headers)
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "jobs": ["1", "2"]}


def test_previous_secret_is_accepted_during_rotation() -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue, webhook_secret_previous=SecretStr(PREVIOUS_SECRET)))
    assert post(test_client, "installation", INSTALLED, secret=PREVIOUS_SECRET).status_code == 202
    assert post(test_client, "installation", INSTALLED, secret=SECRET).status_code == 202
    assert len(queue.jobs) == 4


def test_previous_secret_is_refused_once_rotation_is_over() -> None:
    test_client = client(make_app())
    response = post(test_client, "installation", INSTALLED, secret=PREVIOUS_SECRET)
    assert response.status_code == 401


# -- body size cap ---------------------------------------------------------------------------


def _chunks(count: int, size: int, pulled: list[int]) -> Iterator[bytes]:
    for index in range(count):
        pulled.append(index)
        yield b" " * size


def test_declared_length_over_the_cap_is_refused_unread() -> None:
    app = make_app(webhook_max_body_bytes=1000)
    produced: list[int] = []
    request_headers = headers("ping", b"")
    request_headers["Content-Length"] = "1001"
    status, answer, pulled = call_asgi(app, request_headers, _chunks(100, 100, produced))
    assert status == 413
    assert answer == {"status": "error", "detail": "the body is larger than 1000 bytes"}
    assert pulled == 0
    assert produced == []


def test_streamed_body_over_the_cap_is_refused_without_reading_the_rest() -> None:
    app = make_app(webhook_max_body_bytes=1000)
    produced: list[int] = []
    status, answer, pulled = call_asgi(app, headers("ping", b""), _chunks(100, 300, produced))
    assert status == 413
    assert answer["detail"] == messages.BODY_TOO_LARGE.format(limit=1000)
    assert pulled == 4  # 1200 bytes: over the cap at the fourth chunk
    assert len(produced) == 4


def test_streamed_body_within_the_cap_is_read_whole() -> None:
    app = make_app(webhook_max_body_bytes=1000)
    body = json.dumps({"zen": "Keep it logically awesome."}).encode()
    pieces = iter([body[:10], body[10:]])
    status, answer, pulled = call_asgi(app, headers("ping", body), pieces)
    assert (status, answer, pulled) == (200, {"status": "pong"}, 2)


def test_body_exactly_at_the_cap_is_accepted() -> None:
    body = json.dumps({"zen": "x"}).encode()
    test_client = client(make_app(webhook_max_body_bytes=len(body)))
    assert post(test_client, "ping", body).status_code == 200
    assert post(test_client, "ping", body + b" ").status_code == 413


@pytest.mark.parametrize("value", ["lots", "-1", "1e3", "\u00b2", " 2", ""])
def test_malformed_content_length_is_a_bad_request(value: str) -> None:
    app = make_app()
    request_headers = headers("ping", b"{}")
    request_headers["Content-Length"] = value
    status, answer, _ = call_asgi(app, request_headers, iter([b"{}"]))
    assert status == 400
    assert answer["detail"] == messages.BAD_CONTENT_LENGTH


def test_client_disconnecting_mid_body() -> None:
    app = make_app()
    sent: list[dict[str, Any]] = []
    messages_in = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> Any:
        return next(messages_in)

    async def send(message: Any) -> None:
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
        "headers": [(b"x-github-event", b"ping")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 400
    text = client(app).get("/metrics").text
    assert 'lockwarden_webhook_requests_total{event="ping",outcome="disconnected"} 1.0' in text


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "detail"),
    [
        ("X-GitHub-Event", None, "the X-GitHub-Event header is missing"),
        ("X-GitHub-Event", "", "the X-GitHub-Event header is missing"),
        ("X-GitHub-Event", "push event", "the X-GitHub-Event header is not valid"),
        ("X-GitHub-Delivery", None, "the X-GitHub-Delivery header is missing"),
        ("X-GitHub-Delivery", "a b", "the X-GitHub-Delivery header is not valid"),
        ("X-GitHub-Delivery", "x" * 201, "the X-GitHub-Delivery header is not valid"),
    ],
)
def test_missing_or_invalid_github_headers(header: str, value: str | None, detail: str) -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue))
    body = json.dumps(INSTALLED).encode()
    request_headers = headers("installation", body)
    del request_headers[header]
    if value is not None:
        request_headers[header] = value
    response = _post_raw(test_client, body, request_headers)
    assert response.status_code == 400
    assert response.json() == {"status": "error", "detail": detail}
    assert not queue.jobs


# -- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail_start"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"\xff\xfe\x00", "the body is not UTF-8 (byte 0)"),
        (b"payload=%7B%7D", "the body is not valid JSON"),
        (b"[1, 2]", messages.BODY_NOT_OBJECT),
        (b'"a string"', messages.BODY_NOT_OBJECT),
        (b"null", messages.BODY_NOT_OBJECT),
    ],
)
def test_malformed_json_is_a_bad_request(body: bytes, detail_start: str) -> None:
    response = post(client(make_app()), "push", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail_start)


# -- dedupe ----------------------------------------------------------------------------------


def test_repeated_delivery_is_a_duplicate_and_enqueued_once() -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue))
    delivery = new_delivery_id()
    first = post(test_client, "installation", INSTALLED, delivery=delivery)
    again = post(test_client, "installation", INSTALLED, delivery=delivery)
    assert first.json() == {"status": "queued", "jobs": ["1", "2"]}
    assert (again.status_code, again.json()) == (202, {"status": "duplicate"})
    assert len(queue.jobs) == 2


def test_the_queue_deduplicates_without_the_in_process_cache() -> None:
    queue = InMemoryQueue()
    test_client = client(make_app(queue, delivery_cache_size=0))
    delivery = new_delivery_id()
    post(test_client, "installation", INSTALLED, delivery=delivery)
    again = post(test_client, "installation", INSTALLED, delivery=delivery)
    assert again.json() == {"status": "duplicate"}
    assert len(queue.jobs) == 2


def test_a_second_receiver_on_the_same_queue_sees_the_duplicate() -> None:
    queue = InMemoryQueue()
    delivery = new_delivery_id()
    post(client(make_app(queue)), "installation", INSTALLED, delivery=delivery)
    again = post(client(make_app(queue)), "installation", INSTALLED, delivery=delivery)
    assert again.json() == {"status": "duplicate"}
    assert len(queue.jobs) == 2


def test_an_ignored_delivery_repeated_is_a_duplicate() -> None:
    test_client = client(make_app())
    delivery = new_delivery_id()
    assert post(test_client, "star", {"action": "created"}, delivery=delivery).json()["status"] == (
        "ignored"
    )
    assert post(test_client, "star", {}, delivery=delivery).json() == {"status": "duplicate"}


def test_delivery_cache_forgets_the_least_recently_seen() -> None:
    cache = DeliveryCache(2)
    cache.add("a")
    cache.add("b")
    assert "a" in cache  # "a" is now the most recent
    cache.add("c")
    assert "a" in cache
    assert "b" not in cache
    assert "c" in cache
    assert len(cache) == 2


def test_delivery_cache_of_size_zero_remembers_nothing() -> None:
    cache = DeliveryCache(0)
    cache.add("a")
    assert "a" not in cache
    assert len(cache) == 0


# -- ping, unknown events --------------------------------------------------------------------


def test_ping_is_answered_with_pong() -> None:
    response = post(client(make_app()), "ping", {"zen": "Design for failure.", "hook_id": 1})
    assert (response.status_code, response.json()) == (200, {"status": "pong"})


def test_unknown_event_is_ignored() -> None:
    queue = InMemoryQueue()
    response = post(client(make_app(queue)), "star", {"action": "created"})
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "event 'star' is not handled"}
    assert not queue.jobs


def test_unhandled_action_of_a_known_event_is_ignored() -> None:
    response = post(client(make_app()), "pull_request", {"action": "labeled"})
    assert response.json() == {
        "status": "ignored",
        "reason": "action 'labeled' of event 'pull_request' is not handled",
    }


# -- queue failures --------------------------------------------------------------------------


def test_queue_failure_is_503_and_a_redelivery_is_accepted() -> None:
    queue = FlakyQueue(failures=1)
    test_client = client(make_app(queue))
    delivery = new_delivery_id()
    failed = post(test_client, "installation", INSTALLED, delivery=delivery)
    assert failed.status_code == 503
    assert failed.json() == {"status": "unavailable", "detail": messages.QUEUE_UNAVAILABLE}
    assert failed.headers["Retry-After"] == "60"
    assert not queue.jobs
    retried = post(test_client, "installation", INSTALLED, delivery=delivery)
    assert (retried.status_code, retried.json()) == (202, {"status": "queued", "jobs": ["1", "2"]})
    assert [job.request.repo for job in queue.jobs] == ["acme/one", "acme/two"]


def test_a_delivery_whose_second_job_fails_leaves_no_job_behind() -> None:
    # One delivery, two repositories: the first job was stored when the second failed. It is
    # withdrawn, so a 503 always means "nothing kept" and the redelivery stores both.
    queue = FlakyQueue(failures=1, ok_first=1)
    test_client = client(make_app(queue))
    delivery = new_delivery_id()
    assert post(test_client, "installation", INSTALLED, delivery=delivery).status_code == 503
    assert not queue.jobs
    retried = post(test_client, "installation", INSTALLED, delivery=delivery)
    assert retried.status_code == 202
    assert [job.request.repo for job in queue.jobs] == ["acme/one", "acme/two"]
    assert retried.json() == {"status": "queued", "jobs": [job.id for job in queue.jobs]}
    assert post(test_client, "installation", INSTALLED, delivery=delivery).json() == {
        "status": "duplicate"
    }


# -- the pipeline and the router, below HTTP -------------------------------------------------


def _receiver(router: Router, queue: InMemoryQueue | None = None) -> WebhookReceiver:
    return WebhookReceiver(
        make_settings(), queue or InMemoryQueue(), router, WebhookMetrics(CollectorRegistry())
    )


def _signed(event: str, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    request_headers = {k.lower(): v for k, v in headers(event, body).items()}
    return request_headers, body


def test_a_handler_crash_is_a_500_and_not_remembered() -> None:
    router = Router()
    calls: list[str] = []

    @router.register("push")
    def crash(delivery: Delivery, context: Context) -> Ignore:
        calls.append(delivery.delivery_id)
        raise RuntimeError("bug")

    receiver = _receiver(router)
    request_headers, body = _signed("push", {"ref": "refs/heads/main"})
    answer = receiver.process(request_headers, body)
    assert (answer.status_code, answer.outcome) == (500, "error")
    assert answer.body == {"status": "error", "detail": messages.INTERNAL_ERROR}
    receiver.process(request_headers, body)
    assert len(calls) == 2


def test_handler_sees_the_event_action_and_context() -> None:
    router = Router()
    seen: list[tuple[Delivery, Context]] = []

    @router.register("push")
    def record(delivery: Delivery, context: Context) -> Ignore:
        seen.append((delivery, context))
        return Ignore("noted")

    receiver = _receiver(router)
    request_headers, body = _signed("push", {"action": 3, "ref": "x"})
    assert receiver.process(request_headers, body).body == {"status": "ignored", "reason": "noted"}
    delivery, context = seen[0]
    assert delivery.event == "push"
    assert delivery.action is None  # not a string: no action
    assert delivery.trigger == "push"
    assert delivery.payload == {"action": 3, "ref": "x"}
    assert context == Context(app_slug="lockwarden")


def test_an_action_route_wins_over_the_whole_event_route() -> None:
    router = Router()
    router.register("check_run")(lambda d, c: Ignore("any action"))
    router.register("check_run", "created")(lambda d, c: Ignore("created"))
    receiver = _receiver(router)
    for action, reason in [("created", "created"), ("completed", "any action")]:
        request_headers, body = _signed("check_run", {"action": action})
        assert receiver.process(request_headers, body).body["reason"] == reason


def test_a_route_registered_twice_is_an_error() -> None:
    router = Router()
    router.register("push")(lambda d, c: Ignore(""))
    with pytest.raises(ValueError, match="already registered"):
        router.register("push")(lambda d, c: Ignore(""))
    other = Router()
    other.register("push")(lambda d, c: Ignore(""))
    with pytest.raises(ValueError, match="already registered"):
        Router(router, other)


def test_enqueue_needs_a_job() -> None:
    with pytest.raises(ValueError, match="at least one job"):
        Enqueue(())


# -- the in-memory queue ---------------------------------------------------------------------


def test_in_memory_queue_is_fifo_and_keeps_accepted_keys() -> None:
    queue = InMemoryQueue()
    one = JobRequest("refresh", "acme/one", 1, "d1", {"mode": "minimal"})
    two = JobRequest("refresh", "acme/two", 1, "d1")
    assert queue.enqueue(one) == "1"
    assert queue.enqueue(two) == "2"
    assert queue.enqueue(one) is None
    assert queue.enqueue(JobRequest("forget", "acme/one", 1, "d1")) == "3"
    first = queue.pop()
    assert first is not None
    assert (first.id, first.request) == ("1", one)
    assert [job.id for job in queue.jobs] == ["1", "2", "3"]
    assert queue.pop() is not None
    assert queue.pop() is not None
    assert queue.pop() is None
    assert queue.enqueue(one) is None  # taken jobs still count as accepted
    queue.ping()


def test_in_memory_queue_stores_payloads_as_json() -> None:
    queue = InMemoryQueue()
    payload = {"sha": "abc", "tuple": (1, 2)}
    queue.enqueue(JobRequest("refresh", "acme/one", 1, "d1", payload))
    payload["sha"] = "changed"
    assert queue.jobs[0].request.payload == {"sha": "abc", "tuple": [1, 2]}
    with pytest.raises(TypeError):
        queue.enqueue(JobRequest("refresh", "acme/two", 1, "d1", {"bad": object()}))
