"""Jobs: what the receiver asks the workers to do, and the queue that carries the requests.

The receiver turns a webhook delivery into zero or more :class:`JobRequest` values and hands
each to a :class:`JobQueue`. ``enqueue`` is synchronous and quick, and it is durable: when
it returns, the job survives a restart. That is what lets the receiver answer GitHub with a
2xx; when the queue raises, the receiver answers 503 and GitHub delivers again.

Deduplication is the queue's job, keyed by :attr:`JobRequest.dedupe_key` (the delivery id,
the job kind and the repository). One delivery can fan out into several jobs (an
installation with three repositories gives three ``onboard`` jobs), so the key is per job,
not per delivery: a redelivery after a half-finished enqueue adds exactly the jobs that were
missing, and a redelivery after a complete one adds nothing.

:class:`InMemoryQueue` is the implementation for tests and single-process runs; the
PostgreSQL one keeps the same contract.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from bot.observe import run_job

logger = logging.getLogger(__name__)

JobKind: TypeAlias = Literal["refresh", "onboard", "cleanup", "command", "forget", "security"]
JOB_KINDS: tuple[JobKind, ...] = ("refresh", "onboard", "cleanup", "command", "forget", "security")


@dataclass(frozen=True)
class JobRequest:
    """One unit of work for a worker.

    ``payload`` is small and JSON-serialisable (branch names, ids, a comment body); the worker
    fetches anything larger from GitHub itself.
    """

    kind: JobKind
    repo: str
    """``owner/name``."""
    installation_id: int
    delivery_id: str
    """The ``X-GitHub-Delivery`` that asked for this job."""
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """The identity the queue refuses to accept twice."""
        key = self.payload.get("command_key") if self.kind == "command" else None
        if key:
            # A command runs once per (comment, command text), whichever delivery carries it:
            # a redelivery, or an edit that leaves the command lines as they were, adds nothing.
            return f"command:{self.repo}:{self.payload.get('comment_id')}:{key}"
        return f"{self.delivery_id}:{self.kind}:{self.repo}"


COALESCED_KINDS: frozenset[JobKind] = frozenset({"refresh", "security"})
"""Kinds of which one job per repository waits at a time: a later request joins it (the
job reads the repository when it runs, so one run serves every request made before)."""


def queueing_lock_of(request: JobRequest) -> str | None:
    """The lock that keeps a second job of ``request``'s kind and repository from waiting."""
    if request.kind in COALESCED_KINDS:
        return f"{request.kind}:{request.repo}"
    return None


class JobId(str):
    """A queued job's id; ``joined``: the request was merged into a job already waiting (a
    refresh of the same repository), whose id this is."""

    joined: bool = False

    @classmethod
    def of_joined(cls, job_id: object) -> JobId:
        made = cls(job_id)
        made.joined = True
        return made


class JobQueue(Protocol):
    """Where the receiver puts jobs. Implementations are safe to call from several threads.

    A queue may also offer ``ping() -> None`` (raises, or returns ``False``, when it cannot
    take jobs); the receiver's ``/healthz`` reports it as readiness.
    """

    def enqueue(self, request: JobRequest) -> str | None:
        """Store the job durably and return its id; ``None`` when a job with the same
        ``dedupe_key`` was already accepted. A queue that merges a request into a waiting
        job returns that job's id as a ``JobId`` with ``joined`` set. Raises when the job
        could not be stored.

        A queue may also offer ``enqueue_all(requests) -> tuple[str | None, ...]``: all of
        one delivery's jobs stored, or none (the receiver prefers it)."""
        ...


class ScheduleBook(Protocol):
    """Where the workers record each repository's refresh schedule (read from its config by
    every refresh), for the scheduler to act on."""

    def upsert_schedule(self, repo: str, installation_id: int, schedule: Any) -> None: ...

    def forget_schedule(self, repo: str) -> None: ...


@dataclass(frozen=True)
class QueuedJob:
    id: str
    request: JobRequest


class InMemoryQueue:
    """A thread-safe, process-local queue: jobs in FIFO order, accepted keys kept for ever.

    "Durable" here means "for the life of the process", which is what tests and
    ``serve --with-worker`` need.
    """

    blocking = False
    """Enqueueing does no I/O: the receiver may call it on its event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, str] = {}
        self._pending: deque[QueuedJob] = deque()
        self._all: list[QueuedJob] = []
        self._next_id = 1

    def enqueue(self, request: JobRequest) -> str | None:
        # A round trip through JSON: the payload is stored as the PostgreSQL queue would store
        # it, so a payload that cannot be serialised fails here too, not only in production.
        stored = JobRequest(
            kind=request.kind,
            repo=request.repo,
            installation_id=request.installation_id,
            delivery_id=request.delivery_id,
            payload=json.loads(json.dumps(dict(request.payload))),
        )
        with self._lock:
            if request.dedupe_key in self._accepted:
                return None
            waiting = self._waiting(request)
            if waiting is not None:
                self._accepted[request.dedupe_key] = waiting
                return JobId.of_joined(waiting)
            job_id = str(self._next_id)
            self._next_id += 1
            self._accepted[request.dedupe_key] = job_id
            job = QueuedJob(job_id, stored)
            self._pending.append(job)
            self._all.append(job)
            return job_id

    def _waiting(self, request: JobRequest) -> str | None:
        """The waiting job ``request`` joins: a security job of the same repository. (Only
        the PostgreSQL queue merges refreshes too; here each one stays a job of its own.)"""
        if request.kind != "security":
            return None
        for job in self._pending:
            if job.request.kind == request.kind and job.request.repo == request.repo:
                return job.id
        return None

    def enqueue_all(self, requests: Sequence[JobRequest]) -> tuple[str | None, ...]:
        """Every job of one delivery, or none: a failure withdraws those already taken."""
        answers: list[str | None] = []
        try:
            for request in requests:
                answers.append(self.enqueue(request))
        except BaseException:
            # A joined answer is the waiting job's id: that job stays.
            self._withdraw(
                {j for j in answers if j is not None and not (isinstance(j, JobId) and j.joined)}
            )
            raise
        return tuple(answers)

    def _withdraw(self, job_ids: set[str]) -> None:
        with self._lock:
            self._accepted = {k: v for k, v in self._accepted.items() if v not in job_ids}
            self._pending = deque(j for j in self._pending if j.id not in job_ids)
            self._all = [j for j in self._all if j.id not in job_ids]

    def pop(self) -> QueuedJob | None:
        """The oldest job not taken yet, or ``None``."""
        with self._lock:
            return self._pending.popleft() if self._pending else None

    @property
    def jobs(self) -> tuple[QueuedJob, ...]:
        """Every job accepted so far, in order (taken or not)."""
        with self._lock:
            return tuple(self._all)

    def ping(self) -> None:
        """Always ready."""


def run_worker(
    queue: InMemoryQueue,
    handle: Callable[[JobRequest], object],
    stop: threading.Event,
    *,
    poll_s: float = 0.5,
) -> None:
    """Take jobs off ``queue`` one at a time until ``stop`` is set. A failing job is logged
    and the worker goes on with the next one."""
    while not stop.is_set():
        job = queue.pop()
        if job is None:
            stop.wait(poll_s)
            continue
        try:
            run_job(handle, job.request, job.id)
        except Exception:
            logger.exception("job %s (%s %s) failed", job.id, job.request.kind, job.request.repo)
