"""The durable job queue: Procrastinate on PostgreSQL, behind the :class:`~bot.jobs.queue.JobQueue`
interface.

Acceptance is one transaction: the delivery's ``dedupe_key`` goes into
``lockwarden_deliveries`` and the job into Procrastinate's ``procrastinate_jobs`` (through its
own ``procrastinate_defer_jobs_v1``), or neither does. A key already in the table means the
job was accepted before: ``enqueue`` returns ``None`` and inserts nothing. Concurrent
redeliveries of one key wait on the primary key, so exactly one of them wins.

Every job carries ``lock=<repo>`` (jobs of one repository run one at a time). A ``refresh``
(and a ``security`` job) also carries ``queueing_lock="<kind>:<repo>"``: at most one of each
kind per repository waits in the queue. A second one while the first still waits is merged
into it: the delivery is recorded against the waiting job and ``enqueue`` returns that job's
id.

The receiver uses a small synchronous connection pool that connects in the background, so
a database that is down makes ``enqueue`` raise after ``timeout_s`` (the receiver answers
503 and GitHub delivers again) instead of stopping start-up. Workers use Procrastinate's own
asynchronous pool, opened by :meth:`ProcrastinateQueue.run_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
import psycopg_pool
from procrastinate import (
    App,
    JobContext,
    PsycopgConnector,
    RetryStrategy,
    SyncPsycopgConnector,
)
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import JobDeferrer
from procrastinate.manager import JobManager
from procrastinate.schema import SchemaManager
from procrastinate.tasks import Task

from bot.closing import Closing
from bot.config import Schedule
from bot.jobs.payloads import RefreshPayload
from bot.jobs.queue import JOB_KINDS, JobId, JobKind, JobRequest, queueing_lock_of
from bot.observe import run_job
from bot.schedules import DueRepo, Pace, Recent, admit, next_run
from bot.watch.store import WATCH_TABLES, WATCH_TABLES_SQL

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

SCHEDULER_QUEUE = "lockwarden-scheduler"
TICK_TASK_NAME = "lockwarden.schedule_tick"
REDELIVER_TASK_NAME = "lockwarden.redeliver"
WATCH_TASK_NAME = "lockwarden.watch_releases"
TICK_BATCH = 1000
"""Due repositories looked at per tick; the rest are due at the next one."""

SCHEDULES_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS lockwarden_schedules (
    repo text PRIMARY KEY,
    installation_id bigint NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    next_run_at timestamptz NOT NULL,
    last_enqueued_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS lockwarden_schedules_due ON lockwarden_schedules (next_run_at);
CREATE TABLE IF NOT EXISTS lockwarden_schedule_runs (
    installation_id bigint NOT NULL,
    repo text NOT NULL,
    enqueued_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS lockwarden_schedule_runs_recent
    ON lockwarden_schedule_runs (installation_id, enqueued_at);
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


@functools.cache
def _required_schema() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tables, functions) of Procrastinate's schema for the installed version, and
    Lockwarden's own tables."""
    schema = SchemaManager.get_schema()
    tables = re.findall(r"CREATE TABLE (?:public\.)?(\w+)", schema)
    functions = re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (?:public\.)?(\w+)\(", schema)
    own = ("lockwarden_deliveries", "lockwarden_schedules", *WATCH_TABLES)
    return tuple(dict.fromkeys([*tables, *own])), tuple(dict.fromkeys(functions))


class ProcrastinateQueue(Closing):
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
        spread_s: int = 3600,
        pace: Pace | None = None,
        tick_cron: str = "* * * * *",
        heartbeat_s: float = 10.0,
        stalled_after_s: float = 60.0,
        redeliver: Callable[[], object] | None = None,
        redeliver_cron: str = "*/5 * * * *",
        watch: Callable[[ProcrastinateQueue], object] | None = None,
        watch_cron: str = "*/10 * * * *",
    ) -> None:
        self._database_url = database_url
        self._connect_timeout = max(1, int(timeout_s))
        self._handle: Callable[[JobRequest], object] | None = None
        self.app = App(connector=PsycopgConnector(conninfo=database_url))
        self.task = self.app.task(
            name=TASK_NAME,
            queue=QUEUE_NAME,
            pass_context=True,  # the job's id, for the log context
            retry=RetryStrategy(max_attempts=MAX_RETRIES, exponential_wait=retry_exponential_wait),
        )(self._run_job)
        self._spread_s = spread_s
        self._pace = pace or Pace()
        self._heartbeat_s = heartbeat_s
        self._stalled_after_s = stalled_after_s
        # One scheduling pass a minute across every process: Procrastinate defers a periodic
        # job once per period (a unique row per timestamp), the queueing lock keeps at most
        # one waiting and the lock runs them one at a time.
        self.tick_task = self._periodic(
            TICK_TASK_NAME, tick_cron, "schedules", "schedule-tick", self._tick
        )
        # Asking GitHub to redeliver failed webhooks, once per period across every process
        # (like the tick); only processes that can authenticate as the App register it.
        self._redeliver = redeliver
        self.redeliver_task = (
            None
            if redeliver is None
            else self._periodic(
                REDELIVER_TASK_NAME, redeliver_cron, "redeliver", "redeliver", self._redeliver_tick
            )
        )
        # The upstream release watch (bot.watch), once per period across every process.
        self._watch = watch
        self.watch_task = (
            None
            if watch is None
            else self._periodic(WATCH_TASK_NAME, watch_cron, "watch", "watch", self._watch_tick)
        )
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

    def _periodic(
        self, name: str, cron: str, periodic_id: str, lock: str, run: Callable[[int], None]
    ) -> Task[[int], None, ...]:
        """A task of the scheduler queue deferred once per ``cron`` period across every
        process; ``lock`` both runs them one at a time and keeps at most one waiting."""
        task = self.app.task(
            name=name, queue=SCHEDULER_QUEUE, lock=lock, queueing_lock=lock, pass_context=False
        )(run)
        return self.app.periodic(cron=cron, periodic_id=periodic_id)(task)

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of the pool, which starts connecting on first use."""
        self._pool.open(wait=False)  # no-op once open
        return self._pool.connection()

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    # -- the receiver's side ---------------------------------------------------------------

    def ping(self) -> None:
        """Raises when the database does not answer."""
        with self._connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def schema_ready(self) -> bool:
        """True when ``lockwarden migrate`` has created every table and function this
        version uses."""
        return not self.missing_schema()

    def missing_schema(self) -> tuple[str, ...]:
        """The tables and functions this version needs that the database lacks: all of them
        before ``lockwarden migrate``, the newer ones for a schema an older version made."""
        tables, functions = _required_schema()
        with self._connection() as conn:
            present_tables = {
                str(r[0])
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchall()
            }
            present_functions = {
                str(r[0])
                for r in conn.execute(
                    "SELECT proname FROM pg_proc "
                    "WHERE pronamespace = current_schema()::regnamespace"
                ).fetchall()
            }
        return tuple(
            [t for t in tables if t not in present_tables]
            + [f"{f}()" for f in functions if f not in present_functions]
        )

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
            conn.execute(SCHEDULES_TABLE_SQL)
            conn.execute(WATCH_TABLES_SQL)

    def enqueue(self, request: JobRequest) -> str | None:
        with self._connection() as conn, conn.transaction():
            return self._enqueue_in(conn, request)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside one transaction, for work that queues jobs together
        with rows of its own (the release watch)."""
        with self._connection() as conn, conn.transaction():
            yield conn

    def enqueue_in(self, conn: psycopg.Connection[Any], request: JobRequest) -> str | None:
        """``enqueue`` inside the caller's :meth:`transaction`."""
        return self._enqueue_in(conn, request)

    def enqueue_all(self, requests: Sequence[JobRequest]) -> tuple[str | None, ...]:
        """One delivery's jobs in one transaction: all stored, or none (a delivery answered
        503 must leave nothing behind, or its redelivery would find half of it done)."""
        with self._connection() as conn, conn.transaction():
            return tuple(self._enqueue_in(conn, request) for request in requests)

    def _enqueue_in(self, conn: psycopg.Connection[Any], request: JobRequest) -> str | None:
        """Record the key and insert the job inside the caller's transaction."""
        kwargs = request_to_kwargs(request)
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
            (int(job_id), request.dedupe_key),
        )
        return job_id

    def _defer(self, conn: psycopg.Connection[Any], request: JobRequest, kwargs: Any) -> JobId:
        """Insert the job; for a refresh merged into a waiting one, that job's id."""
        queueing_lock = queueing_lock_of(request)
        template = self.task.configure(lock=request.repo, queueing_lock=queueing_lock).job
        for _ in range(_MERGE_ATTEMPTS):
            deferrer = JobDeferrer(self._defer_manager, template, connection=conn)
            try:
                with conn.transaction():  # a savepoint: a refused insert leaves the rest
                    return JobId(deferrer.defer(**kwargs))
            except AlreadyEnqueued:
                waiting = conn.execute(
                    "SELECT id FROM procrastinate_jobs "
                    "WHERE queueing_lock = %s AND status = 'todo' ORDER BY id LIMIT 1",
                    (queueing_lock,),
                ).fetchone()
                if waiting is not None:
                    logger.info(
                        "%s of %s (delivery %s) merged into waiting job %s",
                        request.kind,
                        request.repo,
                        request.delivery_id,
                        waiting[0],
                    )
                    return JobId.of_joined(waiting[0])
                # The waiting job started in between: its queueing lock is free again.
        raise RuntimeError(
            f"could not queue a {request.kind} of {request.repo}: queueing lock busy"
        )

    # -- schedules -------------------------------------------------------------------------

    def upsert_schedule(
        self, repo: str, installation_id: int, schedule: Schedule, *, now: datetime | None = None
    ) -> None:
        """Remember ``repo``'s schedule (from its config); its next run is kept unless the
        schedule itself changed."""
        moment = now or datetime.now(UTC)
        due = next_run(schedule, repo, moment, spread_s=self._spread_s)
        with self._connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO lockwarden_schedules "
                "(repo, installation_id, cron, timezone, next_run_at) "
                "VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (repo) DO UPDATE SET "
                "installation_id = EXCLUDED.installation_id, cron = EXCLUDED.cron, "
                "timezone = EXCLUDED.timezone, updated_at = now(), next_run_at = CASE "
                "WHEN lockwarden_schedules.cron = EXCLUDED.cron "
                "AND lockwarden_schedules.timezone = EXCLUDED.timezone "
                "THEN lockwarden_schedules.next_run_at ELSE EXCLUDED.next_run_at END",
                (repo, installation_id, schedule.cron, schedule.timezone, due),
            )

    def forget_schedule(self, repo: str) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("DELETE FROM lockwarden_schedules WHERE repo = %s", (repo,))

    def run_schedules(self, now: datetime | None = None) -> tuple[str, ...]:
        """One scheduling pass: enqueue a full refresh for every due repository the pace
        admits and move each to its next run, in one transaction (a pass that fails
        enqueues nothing and moves nothing). Returns the repositories enqueued."""
        moment = now or datetime.now(UTC)
        with self._connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT repo, installation_id, cron, timezone, next_run_at "
                "FROM lockwarden_schedules WHERE next_run_at <= %s "
                "ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (moment, TICK_BATCH),
            ).fetchall()
            if not rows:
                return ()
            due = [DueRepo(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]
            recent = self.recent_runs(conn, {d.installation_id for d in due}, moment)
            enqueued = []
            for row in admit(due, recent, self._pace):
                request = JobRequest(
                    kind="refresh",
                    repo=row.repo,
                    installation_id=row.installation_id,
                    delivery_id=f"schedule:{row.repo}:{row.due_at.isoformat()}",
                    payload={**RefreshPayload(mode="full").to_json(), "trigger": "schedule"},
                )
                self._enqueue_in(conn, request)
                schedule = Schedule(cron=row.cron, timezone=row.timezone)
                conn.execute(
                    "UPDATE lockwarden_schedules SET next_run_at = %s, last_enqueued_at = %s "
                    "WHERE repo = %s",
                    (
                        next_run(schedule, row.repo, moment, spread_s=self._spread_s),
                        moment,
                        row.repo,
                    ),
                )
                self.count_run(conn, row.installation_id, row.repo, moment)
                enqueued.append(row.repo)
            conn.execute(
                "DELETE FROM lockwarden_schedule_runs WHERE enqueued_at < %s - interval '1 hour'",
                (moment,),
            )
        if enqueued:
            logger.info("scheduled refreshes enqueued: %s", ", ".join(enqueued))
        return tuple(enqueued)

    def recent_runs(
        self, conn: psycopg.Connection[Any], installations: Iterable[int], moment: datetime
    ) -> dict[int, Recent]:
        """Paced refreshes (scheduled or watched) each installation started in the minute
        and the hour before ``moment``: the budget both share."""
        counts = conn.execute(
            "SELECT installation_id, "
            "count(*) FILTER (WHERE enqueued_at > %s - interval '1 minute'), count(*) "
            "FROM lockwarden_schedule_runs "
            "WHERE installation_id = ANY(%s) AND enqueued_at > %s - interval '1 hour' "
            "GROUP BY installation_id",
            (moment, list(installations), moment),
        ).fetchall()
        return {int(r[0]): Recent(int(r[1]), int(r[2])) for r in counts}

    def count_run(
        self, conn: psycopg.Connection[Any], installation_id: int, repo: str, moment: datetime
    ) -> None:
        """Charge a paced refresh to its installation's budget."""
        conn.execute(
            "INSERT INTO lockwarden_schedule_runs (installation_id, repo, enqueued_at) "
            "VALUES (%s, %s, %s)",
            (installation_id, repo, moment),
        )

    def _tick(self, timestamp: int) -> None:
        self.run_schedules()

    def _watch_tick(self, timestamp: int) -> None:
        if self._watch is not None:
            self._watch(self)

    def _redeliver_tick(self, timestamp: int) -> None:
        if self._redeliver is not None:
            self._redeliver()

    # -- the worker's side -----------------------------------------------------------------

    def _run_job(self, context: JobContext, /, **kwargs: Any) -> None:
        if self._handle is None:
            raise _Unhandled("this process has no job handler")
        request = request_from_kwargs(kwargs)
        run_job(self._handle, request, str(context.job.id))

    def run_worker(
        self,
        handle: Callable[[JobRequest], object] | None,
        *,
        queues: tuple[str, ...] = (QUEUE_NAME, SCHEDULER_QUEUE),
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
                queues=queues,
                concurrency=concurrency,
                install_signal_handlers=install_signal_handlers,
                wait=wait,
                stop=stop,
            )
        )

    async def _work(
        self,
        *,
        queues: tuple[str, ...],
        concurrency: int,
        install_signal_handlers: bool,
        wait: bool,
        stop: threading.Event | None,
    ) -> None:
        async with self.app.open_async():
            # SIGTERM: Procrastinate stops taking jobs and lets the running ones finish; a
            # worker killed before that is noticed by its missing heartbeats, and another
            # worker's stalled-job check hands its job back to the queue.
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=list(queues),
                    concurrency=concurrency,
                    wait=wait,
                    install_signal_handlers=install_signal_handlers,
                    name="lockwarden",
                    update_heartbeat_interval=self._heartbeat_s,
                    stalled_worker_timeout=self._stalled_after_s,
                )
            )
            recovery = asyncio.create_task(self._retry_stalled_jobs(worker))
            while stop is not None and not worker.done():
                if stop.is_set():
                    worker.cancel()
                    break
                await asyncio.wait({worker}, timeout=0.2)
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery

    async def _retry_stalled_jobs(self, worker: asyncio.Task[None]) -> None:
        """Hand back the jobs of workers that stopped sending heartbeats (killed, or their
        machine gone): they run again, from the start, on a live worker."""
        interval = max(1.0, self._stalled_after_s / 2)
        while not worker.done():
            try:
                stalled = await self.app.job_manager.get_stalled_jobs(
                    queue=QUEUE_NAME, seconds_since_heartbeat=self._stalled_after_s
                )
                for job in stalled:
                    logger.warning("job %s stalled (its worker is gone): retrying it", job.id)
                    await self.app.job_manager.retry_job(job)
            except Exception:  # the database may be restarting: try again next time
                logger.warning("could not check for stalled jobs", exc_info=True)
            await asyncio.sleep(interval)

    # -- what the queue holds (metrics, `lockwarden jobs`) -----------------------------------

    def job_counts(self, *, timeout_s: float = 2.0) -> dict[str, int]:
        """Jobs of the ``lockwarden`` queue by state; states without jobs are left out.
        Raises ``psycopg.Error`` when the database does not answer within ``timeout_s``."""
        rows = self._read(
            "SELECT status::text, count(*) FROM procrastinate_jobs "
            "WHERE queue_name = %s GROUP BY status",
            (QUEUE_NAME,),
            timeout_s,
        )
        return {str(state): int(count) for state, count in rows}

    def recent_jobs(
        self,
        limit: int = 20,
        *,
        state: str | None = None,
        repo: str | None = None,
        timeout_s: float = 5.0,
    ) -> list[JobRow]:
        """The newest ``limit`` jobs of the ``lockwarden`` queue, newest first, optionally
        only those in ``state`` or of ``repo``. Times come from Procrastinate's event log."""
        params = (QUEUE_NAME, state, state, repo, repo, limit)
        rows = self._read(RECENT_JOBS_SQL, params, timeout_s, pooled=False)
        return [JobRow(*row) for row in rows]

    def _read(
        self, query: str, params: tuple[Any, ...], timeout_s: float, *, pooled: bool = True
    ) -> list[Any]:
        """Rows of a read-only query; connecting and running the query each give up after
        ``timeout_s`` (a scrape must not hang on a database that is down). ``pooled=False``:
        a connection of its own, for a one-off command, which then fails at once with the
        database's own reason instead of the pool's retries."""
        connection: contextlib.AbstractContextManager[psycopg.Connection[Any]]
        if pooled:
            self._pool.open(wait=False)  # no-op once open
            connection = self._pool.connection(timeout=timeout_s)
        else:
            connection = psycopg.connect(
                self._database_url, connect_timeout=max(1, math.ceil(timeout_s))
            )
        with connection as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout_s * 1000)}",)
            )
            return conn.execute(query, params).fetchall()


RECENT_JOBS_SQL = """
SELECT j.id, j.args->>'kind', j.args->>'repo', j.args->>'delivery_id', j.status::text,
    j.attempts, e.queued_at, j.scheduled_at, e.started_at,
    -- a failed job retried by hand is waiting again: its old end is no end
    CASE WHEN j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
        THEN e.finished_at END
FROM procrastinate_jobs j
LEFT JOIN LATERAL (
    SELECT min(at) FILTER (WHERE type = 'deferred') AS queued_at,
        max(at) FILTER (WHERE type = 'started') AS started_at,
        max(at) FILTER (WHERE type IN ('succeeded', 'failed', 'cancelled', 'aborted'))
            AS finished_at
    FROM procrastinate_events WHERE job_id = j.id
) e ON true
WHERE j.queue_name = %s
    AND (%s::procrastinate_job_status IS NULL OR j.status = %s::procrastinate_job_status)
    AND (%s::text IS NULL OR j.args->>'repo' = %s)
ORDER BY j.id DESC
LIMIT %s
"""


@dataclass(frozen=True)
class JobRow:
    """One job of the queue, as ``lockwarden jobs`` shows it."""

    id: int
    kind: str | None
    repo: str | None
    delivery_id: str | None
    state: str
    attempts: int
    queued_at: datetime | None
    scheduled_at: datetime | None
    """When a retry (or a deferred job) may run; None: as soon as possible."""
    started_at: datetime | None
    """The last start; a job waiting for its retry keeps it."""
    finished_at: datetime | None
