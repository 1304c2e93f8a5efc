"""``POST /webhook``: read, verify, deduplicate, parse, route, enqueue; in that order.

1. The body is read with a hard cap: a ``Content-Length`` or a stream over the cap is
   refused (413) before another byte is read.
2. ``X-Hub-Signature-256`` is checked (constant-time) before anything of the body is
   parsed; the previous secret is accepted too while it is being rotated out (401 otherwise).
3. ``X-GitHub-Event`` and ``X-GitHub-Delivery`` are required (400).
4. A delivery id seen recently is a duplicate (202); the in-process cache is only a first
   filter, the queue refuses a job twice durably.
5. The body must be a JSON object (400).
6. ``ping`` is answered (200); an event or action no handler registered for is ignored (202).
7. The handler validates the payload into its model (400 naming the field) and decides:
   jobs to enqueue, or a reason to ignore the delivery. The jobs are enqueued here, and
   a 2xx is sent only once every job is stored; a queue failure answers 503, so a
   redelivery of the same delivery completes what is missing.

Handlers are pure functions of the delivery: they never do I/O, which is what keeps the
answer within milliseconds and makes the routing table-testable. Everything after the body
is read runs in a worker thread, so neither hashing a large body nor the queue's round trip
blocks the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from bot.jobs.payloads import JobPayload
from bot.jobs.queue import JOB_KINDS, JobId, JobKind, JobQueue, JobRequest
from bot.server import messages
from bot.server.events import Installation, PayloadError
from bot.settings import Settings, SettingsError

# Bodies up to this size are verified and parsed on the event loop when the queue allows it.
INLINE_BODY_BYTES = 256 * 1024

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,200}")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
OTHER_EVENT = "other"
"""The metrics label of every event without a handler (keeps the label set bounded)."""


# -- what handlers see and return ------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery, its JSON body parsed but not validated."""

    event: str
    action: str | None
    delivery_id: str
    payload: dict[str, Any]

    @property
    def trigger(self) -> str:
        """``event.action`` (or just ``event``): what asked for a job, for the job's payload."""
        return f"{self.event}.{self.action}" if self.action else self.event


@dataclass(frozen=True)
class Context:
    """What a handler may know besides the delivery."""

    app_slug: str | None = None


@dataclass(frozen=True)
class Enqueue:
    jobs: tuple[JobRequest, ...]

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ValueError("Enqueue needs at least one job; return Ignore(reason) instead")


@dataclass(frozen=True)
class Ignore:
    reason: str


Decision: TypeAlias = Enqueue | Ignore
Handler: TypeAlias = Callable[[Delivery, Context], Decision]


def make_job(
    delivery: Delivery,
    kind: JobKind,
    repo: str,
    installation: Installation,
    payload: JobPayload,
) -> JobRequest:
    return JobRequest(
        kind=kind,
        repo=repo,
        installation_id=installation.id,
        delivery_id=delivery.delivery_id,
        payload={"trigger": delivery.trigger, **payload.to_json()},
    )


class Router:
    """Handlers by event and action (an action of ``None`` takes every action of the event).

    Each handler module has its own router; the app combines them: ``Router(push.router,
    installation.router, ...)``. A route registered twice is an error, so one delivery has
    exactly one handler.
    """

    def __init__(self, *routers: Router) -> None:
        self._routes: dict[tuple[str, str | None], Handler] = {}
        for router in routers:
            for key, handler in router._routes.items():
                self._add(key, handler)

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self._add((event, action), handler)
            return handler

        return decorator

    def _add(self, key: tuple[str, str | None], handler: Handler) -> None:
        if key in self._routes:
            raise ValueError(f"a handler is already registered for {key}")
        self._routes[key] = handler

    @property
    def events(self) -> frozenset[str]:
        return frozenset(event for event, _ in self._routes)

    @property
    def routes(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(self._routes)

    def dispatch(self, delivery: Delivery, context: Context) -> Decision:
        handler = self._routes.get((delivery.event, delivery.action)) or self._routes.get(
            (delivery.event, None)
        )
        if handler is not None:
            return handler(delivery, context)
        if delivery.event in self.events:
            return Ignore(
                messages.ACTION_NOT_HANDLED.format(event=delivery.event, action=delivery.action)
            )
        return Ignore(messages.EVENT_NOT_HANDLED.format(event=delivery.event))


# -- the in-process first filter -------------------------------------------------------------


class DeliveryCache:
    """The most recent ``size`` delivery ids (least recently seen dropped first)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, delivery_id: str) -> bool:
        with self._lock:
            if delivery_id in self._ids:
                self._ids.move_to_end(delivery_id)
                return True
            return False

    def add(self, delivery_id: str) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._ids[delivery_id] = None
            self._ids.move_to_end(delivery_id)
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


# -- metrics ---------------------------------------------------------------------------------


class WebhookMetrics:
    """The receiver's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "lockwarden_webhook_requests",
            "Webhook deliveries answered, by event and outcome.",
            ["event", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "lockwarden_webhook_latency_seconds",
            "Time from a delivery's arrival to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.jobs = Counter(
            "lockwarden_jobs_enqueued",
            "Jobs accepted by the queue, by kind.",
            ["kind"],
            registry=registry,
        )
        for kind in JOB_KINDS:
            self.jobs.labels(kind=kind)


# -- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    outcome: str
    """The metrics label: queued, coalesced, ignored, duplicate, pong, too_large, unauthorized,
    bad_request, invalid_payload, unavailable, error, disconnected."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status_code, headers=dict(self.headers))


def _error(status_code: int, outcome: str, detail: str) -> Answer:
    return Answer(status_code, {"status": messages.STATUS_ERROR, "detail": detail}, outcome)


_DUPLICATE = Answer(202, {"status": messages.STATUS_DUPLICATE}, "duplicate")


class _Reject(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.get("detail", ""))
        self.answer = answer


class WebhookReceiver:
    """The ``POST /webhook`` endpoint. One per app; it holds no state but the delivery cache."""

    def __init__(
        self,
        settings: Settings,
        queue: JobQueue,
        router: Router,
        metrics: WebhookMetrics,
    ) -> None:
        if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
            raise SettingsError(messages.SIGNING_NOT_CONFIGURED)
        self._secrets = tuple(
            secret.get_secret_value().encode()
            for secret in (settings.webhook_secret, settings.webhook_secret_previous)
            if secret is not None and secret.get_secret_value()
        )
        self._max_body = settings.webhook_max_body_bytes
        self._queue = queue
        self._router = router
        self._context = Context(app_slug=settings.app_slug or None)
        self._seen = DeliveryCache(settings.delivery_cache_size)
        self._metrics = metrics
        self._known_events = router.events | {"ping"}
        # Queues that block (a database) are called from a worker thread; in-memory ones,
        # which say ``blocking = False``, inline.
        self._inline = getattr(queue, "blocking", True) is False

    async def __call__(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            body = await self._read_body(request)
            if self._inline and len(body) <= INLINE_BODY_BYTES:
                # Sub-millisecond work with a queue that does no I/O: a hop to a worker
                # thread and back would cost more than the work itself.
                answer = self.process(request.headers, body)
            else:
                answer = await anyio.to_thread.run_sync(self.process, request.headers, body)
        except _Reject as rejected:
            answer = rejected.answer
        event = request.headers.get(EVENT_HEADER, "")
        self._metrics.requests.labels(
            event=event if event in self._known_events else OTHER_EVENT, outcome=answer.outcome
        ).inc()
        self._metrics.latency.observe(time.perf_counter() - started)
        return answer.response()

    async def _read_body(self, request: Request) -> bytes:
        limit = self._max_body
        too_large = _error(413, "too_large", messages.BODY_TOO_LARGE.format(limit=limit))
        declared = request.headers.get("content-length")
        if declared is not None:
            if _CONTENT_LENGTH.fullmatch(declared) is None:
                raise _Reject(_error(400, "bad_request", messages.BAD_CONTENT_LENGTH))
            if int(declared) > limit:
                raise _Reject(too_large)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise _Reject(too_large)
        except ClientDisconnect:
            raise _Reject(_error(400, "disconnected", messages.CLIENT_DISCONNECTED)) from None
        return bytes(body)

    def process(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Steps 2 to 7 on a body already read; runs in a worker thread."""
        try:
            return self._process(headers, body)
        except _Reject as rejected:
            return rejected.answer
        except Exception:
            log.exception("webhook delivery %s failed", headers.get(DELIVERY_HEADER))
            return _error(500, "error", messages.INTERNAL_ERROR)

    def _process(self, headers: Mapping[str, str], body: bytes) -> Answer:
        self._verify(headers.get(SIGNATURE_HEADER), body)
        event = self._header(headers, EVENT_HEADER, "X-GitHub-Event", _EVENT_NAME)
        delivery_id = self._header(headers, DELIVERY_HEADER, "X-GitHub-Delivery", _DELIVERY_ID)
        if delivery_id in self._seen:
            return self._done(delivery_id, event, None, _DUPLICATE)
        payload = _parse_json(body)
        action = payload.get("action")
        delivery = Delivery(
            event=event,
            action=action if isinstance(action, str) else None,
            delivery_id=delivery_id,
            payload=payload,
        )
        if event == "ping":
            return self._done(
                delivery_id, event, None, Answer(200, {"status": messages.STATUS_PONG}, "pong")
            )
        try:
            decision = self._router.dispatch(delivery, self._context)
        except PayloadError as exc:
            log.warning("webhook delivery %s (%s): %s", delivery_id, delivery.trigger, exc)
            return Answer(
                400,
                {
                    "status": messages.STATUS_INVALID,
                    "field": exc.field,
                    "detail": messages.PAYLOAD_INVALID.format(field=exc.field, error=exc.message),
                },
                "invalid_payload",
            )
        if isinstance(decision, Ignore):
            answer = Answer(
                202, {"status": messages.STATUS_IGNORED, "reason": decision.reason}, "ignored"
            )
            return self._done(delivery_id, event, delivery.action, answer)
        return self._done(delivery_id, event, delivery.action, self._enqueue(decision.jobs))

    def _verify(self, header: str | None, body: bytes) -> None:
        if header is None:
            raise _Reject(_error(401, "unauthorized", messages.SIGNATURE_MISSING))
        match = _SIGNATURE.fullmatch(header.strip())
        if match is None:
            raise _Reject(_error(401, "unauthorized", messages.SIGNATURE_MALFORMED))
        given = match.group(1).lower().encode()
        valid = False
        for secret in self._secrets:
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            valid |= hmac.compare_digest(expected, given)
        if not valid:
            raise _Reject(_error(401, "unauthorized", messages.SIGNATURE_MISMATCH))

    @staticmethod
    def _header(headers: Mapping[str, str], key: str, name: str, pattern: re.Pattern[str]) -> str:
        value = headers.get(key)
        if not value:
            raise _Reject(_error(400, "bad_request", messages.HEADER_MISSING.format(header=name)))
        if pattern.fullmatch(value) is None:
            raise _Reject(_error(400, "bad_request", messages.HEADER_INVALID.format(header=name)))
        return value

    def _enqueue(self, jobs: Iterable[JobRequest]) -> Answer:
        requests = tuple(jobs)
        try:
            job_ids = self._store(requests)
        except Exception:
            first = requests[0]
            log.exception(
                "enqueue failed for delivery %s (%d jobs, first %s %s)",
                first.delivery_id,
                len(requests),
                first.kind,
                first.repo,
            )
            return Answer(
                503,
                {"status": messages.STATUS_UNAVAILABLE, "detail": messages.QUEUE_UNAVAILABLE},
                "unavailable",
                headers={"Retry-After": "60"},
            )
        accepted: list[str] = []
        joined: list[str] = []
        for job, job_id in zip(requests, job_ids, strict=True):
            if isinstance(job_id, JobId) and job_id.joined:
                joined.append(str(job_id))  # merged into a waiting job: no new job
            elif job_id is not None:
                accepted.append(str(job_id))
                self._metrics.jobs.labels(kind=job.kind).inc()
        if accepted:
            return Answer(202, {"status": messages.STATUS_QUEUED, "jobs": accepted}, "queued")
        if joined:
            body = {"status": messages.STATUS_COALESCED, "jobs": joined}
            return Answer(202, body, "coalesced")
        return _DUPLICATE

    def _store(self, requests: tuple[JobRequest, ...]) -> tuple[str | None, ...]:
        """All of a delivery's jobs, or none where the queue can promise it: a delivery
        answered 503 then leaves nothing behind for its redelivery to find half done."""
        enqueue_all = getattr(self._queue, "enqueue_all", None)
        if callable(enqueue_all):
            return tuple(enqueue_all(requests))
        return tuple(self._queue.enqueue(request) for request in requests)

    def _done(self, delivery_id: str, event: str, action: str | None, answer: Answer) -> Answer:
        """Log what became of a delivery, and remember it once it is fully handled."""
        if answer.status_code < 300:
            self._seen.add(delivery_id)
        log.info(
            "webhook delivery %s %s%s: %s %s",
            delivery_id,
            event,
            f".{action}" if action else "",
            answer.body["status"],
            answer.body.get("reason") or answer.body.get("jobs") or "",
        )
        return answer


MAX_JSON_DEPTH = 64
"""Deepest nesting of a payload accepted; GitHub's are about ten levels deep."""


def _parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 naming what is wrong: never an exception that
    would end as a 500 (not UTF-8, invalid or too deeply nested JSON, not an object)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(
            _error(400, "bad_request", messages.BODY_NOT_UTF8.format(offset=exc.start))
        ) from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise _Reject(
            _error(400, "bad_request", messages.BODY_NOT_JSON.format(error=exc))
        ) from None
    except RecursionError:  # deeper than the interpreter's stack allows
        raise _Reject(_too_deep()) from None
    if not isinstance(payload, dict):
        raise _Reject(_error(400, "bad_request", messages.BODY_NOT_OBJECT))
    if _depth_exceeds(payload, MAX_JSON_DEPTH):
        raise _Reject(_too_deep())
    return payload


def _too_deep() -> Answer:
    return _error(400, "bad_request", messages.BODY_TOO_DEEP.format(limit=MAX_JSON_DEPTH))


def _depth_exceeds(value: object, limit: int) -> bool:
    """True when ``value`` nests objects/arrays more than ``limit`` deep. Iterative, so that
    handlers and models that walk the payload recursively never meet a deeper one."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
