"""The durable job queue: Procrastinate on PostgreSQL, behind the :class:`~bot.jobs.JobQueue`
interface.

Acceptance is one transaction: the delivery's ``dedupe_key`` goes into
``lockwarden_deliveries`` and the job into Procrastinate's ``procrastinate_jobs`` (through its
own ``procrastinate_defer_jobs_v1``), or neither does. A key already in the table means the
job was accepted before: ``enqueue`` returns ``None`` and inserts nothing. Concurrent
redeliveries of one key wait on the primary key, so exactly one of them wins.

Every job carries ``lock=<repo>`` (jobs of one repository run one at a time). A ``refresh``
also carries ``queueing_lock="refresh:<repo>"``: at most one refresh of a repository waits in
the queue. A second one while the first still waits is merged into it: the delivery is
recorded against the waiting job and ``enqueue`` returns that job's id.

The receiver uses a small synchronous connection pool that connects in the background, so
a database that is down makes ``enqueue`` raise after ``timeout_s`` (the receiver answers
503 and GitHub delivers again) instead of stopping start-up. Workers use Procrastinate's own
asynchronous pool, opened by :meth:`ProcrastinateQueue.run_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, cast

import psycopg
import psycopg_pool
from procrastinate import App, PsycopgConnector, RetryStrategy, SyncPsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import JobDeferrer
from procrastinate.manager import JobManager
from procrastinate.schema import SchemaManager

from bot.jobs import JOB_KINDS, JobKind, JobRequest

logger = logging.getLogger(__name__)

QUEUE_NAME = "lockwarden"
TASK_NAME = "lockwarden.run_job"
MAX_RETRIES = 5
"""Procrastinate's ``max_attempts``: retries after the first run (6 runs in all)."""
EXPONENTIAL_WAIT_S = 5
"""Backoff base: the retries wait 5, 25, 125, 625 and 3125 s (about 65 min in all)."""

_MIGRATION_LOCK = 0x4C6F636B  # pg_advisory_xact_lock key: one migration at a time
_MERGE_ATTEMPTS = 3

DELIVERIES_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS lockwarden_deliveries (
    dedupe_key text PRIMARY KEY,
    job_id bigint,
    accepted_at timestamptz NOT NULL DEFAULT now()
)
"""


class _Unhandled(RuntimeError):
    """A job was fetched by a process that was not given a handler."""


def request_to_kwargs(request: JobRequest) -> dict[str, Any]:
    """The task's JSON arguments."""
    return {
        "kind": request.kind,
        "repo": request.repo,
        "installation_id": request.installation_id,
        "delivery_id": request.delivery_id,
        "payload": dict(request.payload),
    }


def request_from_kwargs(kwargs: dict[str, Any]) -> JobRequest:
    """The inverse of :func:`request_to_kwargs`; raises ``ValueError`` on an unknown kind."""
    kind = kwargs["kind"]
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    return JobRequest(
        kind=cast("JobKind", kind),
        repo=str(kwargs["repo"]),
        installation_id=int(kwargs["installation_id"]),
        delivery_id=str(kwargs["delivery_id"]),
        payload=dict(kwargs.get("payload") or {}),
    )


class ProcrastinateQueue:
    """Jobs in PostgreSQL: ``enqueue`` for the receiver, ``run_worker`` for the workers.

    ``retry_exponential_wait`` is the backoff base in seconds (0: retry at once).
    """

    def __init__(
        self,
        database_url: str,
        *,
        timeout_s: float = 5.0,
        max_pool_size: int = 4,
        retry_exponential_wait: int = EXPONENTIAL_WAIT_S,
    ) -> None:
        self._database_url = database_url
        self._connect_timeout = max(1, int(timeout_s))
        self._handle: Callable[[JobRequest], object] | None = None
        self.app = App(connector=PsycopgConnector(conninfo=database_url))
        self.task = self.app.task(
            name=TASK_NAME,
            queue=QUEUE_NAME,
            pass_context=False,
            retry=RetryStrategy(max_attempts=MAX_RETRIES, exponential_wait=retry_exponential_wait),
        )(self._run_job)
        # Deferring goes through Procrastinate's job manager on a connection of this pool, so
        # the job insert joins the transaction that records the delivery.
        self._defer_manager = JobManager(SyncPsycopgConnector())
        self._pool = psycopg_pool.ConnectionPool(
            database_url,
            min_size=1,
            max_size=max_pool_size,
            timeout=timeout_s,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"connect_timeout": self._connect_timeout},
        )

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of the pool, which starts connecting on first use."""
        self._pool.open(wait=False)  # no-op once open
        return self._pool.connection()

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the receiver's side ---------------------------------------------------------------

    def ping(self) -> None:
        """Raises when the database does not answer."""
        with self._connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def migrate(self) -> None:
        """Apply Procrastinate's schema (once) and create the deliveries table."""
        with (
            psycopg.connect(self._database_url, connect_timeout=self._connect_timeout) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if not (row and row[0]):
                conn.execute(SchemaManager.get_schema())
                logger.info("applied the Procrastinate schema")
            conn.execute(DELIVERIES_TABLE_SQL)

    def enqueue(self, request: JobRequest) -> str | None:
        kwargs = request_to_kwargs(request)
        with self._connection() as conn, conn.transaction():
            inserted = conn.execute(
                "INSERT INTO lockwarden_deliveries (dedupe_key) VALUES (%s) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
                (request.dedupe_key,),
            ).fetchone()
            if inserted is None:
                return None
            job_id = self._defer(conn, request, kwargs)
            conn.execute(
                "UPDATE lockwarden_deliveries SET job_id = %s WHERE dedupe_key = %s",
                (job_id, request.dedupe_key),
            )
        return str(job_id)

    def _defer(self, conn: psycopg.Connection[Any], request: JobRequest, kwargs: Any) -> int:
        """Insert the job; for a refresh merged into a waiting one, that job's id."""
        queueing_lock = f"refresh:{request.repo}" if request.kind == "refresh" else None
        template = self.task.configure(lock=request.repo, queueing_lock=queueing_lock).job
        for _ in range(_MERGE_ATTEMPTS):
            deferrer = JobDeferrer(self._defer_manager, template, connection=conn)
            try:
                with conn.transaction():  # a savepoint: a refused insert leaves the rest
                    return deferrer.defer(**kwargs)
            except AlreadyEnqueued:
                waiting = conn.execute(
                    "SELECT id FROM procrastinate_jobs "
                    "WHERE queueing_lock = %s AND status = 'todo' ORDER BY id LIMIT 1",
                    (queueing_lock,),
                ).fetchone()
                if waiting is not None:
                    logger.info(
                        "refresh of %s (delivery %s) merged into waiting job %s",
                        request.repo,
                        request.delivery_id,
                        waiting[0],
                    )
                    return int(waiting[0])
                # The waiting job started in between: its queueing lock is free again.
        raise RuntimeError(f"could not queue a refresh of {request.repo}: queueing lock busy")

    # -- the worker's side -----------------------------------------------------------------

    def _run_job(self, **kwargs: Any) -> None:
        if self._handle is None:
            raise _Unhandled("this process has no job handler")
        request = request_from_kwargs(kwargs)
        logger.info("job %s %s (delivery %s)", request.kind, request.repo, request.delivery_id)
        self._handle(request)

    def run_worker(
        self,
        handle: Callable[[JobRequest], object],
        *,
        concurrency: int = 1,
        install_signal_handlers: bool = True,
        wait: bool = True,
        stop: threading.Event | None = None,
    ) -> None:
        """Run jobs through ``handle`` until interrupted (SIGINT/SIGTERM when
        ``install_signal_handlers``), until ``stop`` is set, or, with ``wait=False``, until
        no job is ready. A job that raises is retried with backoff, at most
        :data:`MAX_RETRIES` times."""
        self._handle = handle
        asyncio.run(
            self._work(
                concurrency=concurrency,
                install_signal_handlers=install_signal_handlers,
                wait=wait,
                stop=stop,
            )
        )

    async def _work(
        self,
        *,
        concurrency: int,
        install_signal_handlers: bool,
        wait: bool,
        stop: threading.Event | None,
    ) -> None:
        async with self.app.open_async():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE_NAME],
                    concurrency=concurrency,
                    wait=wait,
                    install_signal_handlers=install_signal_handlers,
                    name="lockwarden",
                )
            )
            while stop is not None and not worker.done():
                if stop.is_set():
                    worker.cancel()
                    break
                await asyncio.wait({worker}, timeout=0.2)
            with contextlib.suppress(asyncio.CancelledError):
                await worker
