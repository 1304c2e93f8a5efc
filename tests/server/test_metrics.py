"""GET /metrics (Prometheus text) and GET /healthz."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.server.app import create_app
from tests.server import client, headers, make_app, make_settings, post

INSTALLED = {
    "action": "created",
    "installation": {"id": 7},
    "repositories": [{"full_name": "acme/one"}, {"full_name": "acme/two"}],
}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_total(values: Samples, event: str, outcome: str) -> float:
    key = ("lockwarden_webhook_requests_total", (("event", event), ("outcome", outcome)))
    return values.get(key, 0.0)


def jobs_total(values: Samples, kind: str) -> float:
    return values[("lockwarden_jobs_enqueued_total", (("kind", kind),))]


def test_metrics_count_requests_outcomes_jobs_and_latency() -> None:
    test_client = client(make_app())
    post(test_client, "installation", INSTALLED)
    post(test_client, "installation", {"action": "suspend", "installation": {"id": 7}})
    post(test_client, "ping", {"zen": "Half measures are as bad as nothing at all."})
    post(test_client, "star", {"action": "created"})
    post(test_client, "workflow_run", {"action": "completed"})
    post(test_client, "push", {"ref": "refs/heads/main"})  # no repository: 400
    body = json.dumps(INSTALLED).encode()
    unsigned = headers("installation", body)
    del unsigned["X-Hub-Signature-256"]
    test_client.post("/webhook", content=body, headers=unsigned)

    response = test_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert requests_total(values, "installation", "queued") == 1
    assert requests_total(values, "installation", "ignored") == 1
    assert requests_total(values, "installation", "unauthorized") == 1
    assert requests_total(values, "ping", "pong") == 1
    assert requests_total(values, "other", "ignored") == 2  # unknown events share one label
    assert requests_total(values, "push", "invalid_payload") == 1
    assert jobs_total(values, "onboard") == 2
    assert jobs_total(values, "refresh") == 0  # every kind is exported from the start
    assert values[("lockwarden_webhook_latency_seconds_count", ())] == 7
    assert values[("lockwarden_webhook_latency_seconds_bucket", (("le", "+Inf"),))] == 7


def test_duplicates_and_queue_failures_are_counted() -> None:
    class DownQueue(InMemoryQueue):
        def enqueue(self, request: JobRequest) -> str | None:
            raise OSError("no database")

    test_client = client(make_app())
    post(test_client, "installation", INSTALLED, delivery="d-1")
    post(test_client, "installation", INSTALLED, delivery="d-1")
    down = client(make_app(DownQueue()))
    post(down, "installation", INSTALLED)
    assert requests_total(samples(test_client.get("/metrics").text), "installation", "duplicate")
    assert requests_total(samples(down.get("/metrics").text), "installation", "unavailable") == 1


def test_each_app_has_its_own_registry() -> None:
    first, second = client(make_app()), client(make_app())
    post(first, "ping", {})
    assert requests_total(samples(first.get("/metrics").text), "ping", "pong") == 1
    assert requests_total(samples(second.get("/metrics").text), "ping", "pong") == 0


class NoPing:
    def enqueue(self, request: JobRequest) -> str | None:
        return "1"


class Pinging(InMemoryQueue):
    def __init__(self, answer: object = None, error: Exception | None = None) -> None:
        super().__init__()
        self.answer = answer
        self.error = error

    def ping(self) -> None:
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]


def test_healthz_without_a_queue_ping() -> None:
    response = client(make_app(NoPing())).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("queue", "status", "answer"),
    [
        (Pinging(), 200, {"status": "ok", "queue": "ready", "database": "ready"}),
        (Pinging(answer=True), 200, {"status": "ok", "queue": "ready", "database": "ready"}),
        (
            Pinging(answer=False),
            503,
            {"status": "unavailable", "queue": "not ready", "database": "not ready"},
        ),
        (
            Pinging(error=ConnectionError("no database")),
            503,
            {"status": "unavailable", "queue": "not ready", "database": "not ready"},
        ),
    ],
    ids=["none", "true", "false", "raises"],
)
def test_healthz_reports_the_queue(queue: Pinging, status: int, answer: dict[str, str]) -> None:
    response = client(make_app(queue)).get("/healthz")
    assert (response.status_code, response.json()) == (status, answer)


@pytest.mark.parametrize(
    ("states", "status", "answer"),
    [
        (
            {"lockwarden-worker": True},
            200,
            {"status": "ok", "workers": {"lockwarden-worker": "running"}},
        ),
        (
            {"lockwarden-worker": False},
            503,
            {"status": "unavailable", "workers": {"lockwarden-worker": "stopped"}},
        ),
    ],
    ids=["running", "stopped"],
)
def test_healthz_reports_the_worker_threads(
    states: dict[str, bool], status: int, answer: dict[str, object]
) -> None:
    app = create_app(make_settings(), NoPing(), workers=lambda: states)
    response = client(app).get("/healthz")
    assert (response.status_code, response.json()) == (status, answer)


def test_a_stopped_worker_makes_healthz_fail_even_with_a_healthy_database() -> None:
    app = create_app(make_settings(), Pinging(), workers=lambda: {"lockwarden-worker": False})
    response = client(app).get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ready"


def test_docs_are_not_served() -> None:
    test_client = client(make_app())
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert test_client.get(path).status_code == 404
