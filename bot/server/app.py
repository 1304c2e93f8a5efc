"""The FastAPI app factory: ``POST /webhook``, ``GET /healthz``, ``GET /metrics``.

Everything the app uses comes in through ``create_app``'s arguments; nothing is read from
the environment or kept in a module global, so a test builds as many apps as it likes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import anyio.to_thread
from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import JSONResponse, Response

from bot.jobs.queue import JobQueue
from bot.metrics import expose
from bot.sandbox import Sandbox
from bot.server import (
    check_run,
    check_suite,
    installation,
    issue_comment,
    messages,
    pull_request,
    push,
)
from bot.server.webhook import Router, WebhookMetrics, WebhookReceiver
from bot.settings import Settings

log = logging.getLogger(__name__)


async def _answers(ping: Callable[[], object]) -> bool:
    """The database answered the queue's ping (off the event loop)."""
    try:
        return await anyio.to_thread.run_sync(ping) is not False
    except Exception:
        log.exception("the job queue did not answer its ping")
        return False


def build_router() -> Router:
    """Every handler, by event and action."""
    return Router(
        push.router,
        installation.router,
        pull_request.router,
        issue_comment.router,
        check_run.router,
        check_suite.router,
    )


WorkerStates = Callable[[], Mapping[str, bool]]
"""The threads that run beside the receiver in this process (worker, scheduler): alive?"""


def create_app(
    settings: Settings,
    queue: JobQueue,
    *,
    sandbox: Sandbox | None = None,
    workers: WorkerStates | None = None,
) -> FastAPI:
    """The receiver. Raises ``SettingsError`` when ``LOCKWARDEN_WEBHOOK_SECRET`` is not set.
    ``sandbox``: the one this process runs jobs in; ``/healthz`` warns when it is off.
    ``workers``: this process's worker threads, which ``/healthz`` reports too."""
    metrics = WebhookMetrics(CollectorRegistry(auto_describe=True))
    # One /metrics: the receiver's, the jobs run in this process, and the queue's state.
    expose(metrics.registry, queue)
    receiver = WebhookReceiver(settings, queue, build_router(), metrics)

    app = FastAPI(title="Lockwarden", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver
    app.state.metrics = metrics

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        return await receiver(request)

    warning = {"sandbox": sandbox.reason} if sandbox is not None and not sandbox.isolated else {}

    @app.get("/healthz")
    async def healthz() -> Response:
        body: dict[str, object] = {}
        healthy = True
        ping = getattr(queue, "ping", None)
        if callable(ping):
            ready = await _answers(ping)
            state = messages.QUEUE_READY if ready else messages.QUEUE_NOT_READY
            body |= {"queue": state, "database": state}
            healthy = ready
        if workers is not None:
            states = dict(workers())
            body["workers"] = {
                name: messages.WORKER_RUNNING if alive else messages.WORKER_STOPPED
                for name, alive in states.items()
            }
            healthy = healthy and all(states.values())
        status = messages.STATUS_OK if healthy else messages.STATUS_UNAVAILABLE
        return JSONResponse(
            {"status": status, **body, **warning}, status_code=200 if healthy else 503
        )

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        # The queue's numbers come from the database: never on the event loop.
        body = await anyio.to_thread.run_sync(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
