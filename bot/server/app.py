"""The FastAPI app factory: ``POST /webhook``, ``GET /healthz``, ``GET /metrics``.

Everything the app uses comes in through ``create_app``'s arguments; nothing is read from
the environment or kept in a module global, so a test builds as many apps as it likes.
"""

from __future__ import annotations

import logging

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


def create_app(settings: Settings, queue: JobQueue, *, sandbox: Sandbox | None = None) -> FastAPI:
    """The receiver. Raises ``SettingsError`` when ``LOCKWARDEN_WEBHOOK_SECRET`` is not set.
    ``sandbox``: the one this process runs jobs in; ``/healthz`` warns when it is off."""
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
        ping = getattr(queue, "ping", None)
        if not callable(ping):
            return JSONResponse({"status": messages.STATUS_OK, **warning})
        try:
            ready = await anyio.to_thread.run_sync(ping) is not False
        except Exception:
            log.exception("the job queue did not answer its ping")
            ready = False
        if ready:
            return JSONResponse(
                {"status": messages.STATUS_OK, "queue": messages.QUEUE_READY, **warning}
            )
        return JSONResponse(
            {"status": messages.STATUS_UNAVAILABLE, "queue": messages.QUEUE_NOT_READY, **warning},
            status_code=503,
        )

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        # The queue's numbers come from the database: never on the event loop.
        body = await anyio.to_thread.run_sync(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
