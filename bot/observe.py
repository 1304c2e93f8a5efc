"""What a job and each stage of the pipeline leave behind: log context, log lines, metrics.

``with stage("compile"):`` (or ``@stage("publish")`` on a function) tags every line logged
inside with the stage and records its duration; ``run_job`` runs one job with its context
bound and counts how it ended. The queues call ``run_job``; the pipeline calls ``stage``.

A stage records only what its process has set up. ``run_job`` loads the log context and the
metrics; ``lockwarden run``, which neither configures logging nor serves metrics, never loads
them, and does not pay for importing structlog and prometheus-client (about 60 ms of a
three-second run).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)


class JobFields(Protocol):
    """The fields of a job that its log lines and metrics carry."""

    @property
    def kind(self) -> str: ...

    @property
    def repo(self) -> str: ...

    @property
    def delivery_id(self) -> str: ...


J = TypeVar("J", bound=JobFields)

DONE = "done"
"""The outcome of a job whose handler returns no action."""
ERROR = "error"
"""The outcome of a job that raised."""


@contextmanager
def stage(name: str) -> Iterator[None]:
    """One stage of the pipeline (checkout, configure, compile, build, test, publish): every
    line logged inside carries ``stage=<name>``, and the time it took goes into
    ``lockwarden_stage_duration_seconds``, also when it raised."""
    started = time.perf_counter()
    with _stage_context(name):
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            if "bot.metrics" in sys.modules:
                from bot.metrics import STAGE_DURATION

                STAGE_DURATION.labels(stage=name).observe(elapsed)
            log.info("stage %s took %.2f s", name, elapsed, extra={"duration_s": round(elapsed, 3)})


def run_job(handle: Callable[[J], object], request: J, job_id: str | None) -> object:
    """``handle(request)`` with the job's log context bound; its outcome is counted in
    ``lockwarden_jobs_total`` and, when it raises, ``lockwarden_job_failures_total``. The
    error is raised again, for the queue to log and retry."""
    from bot.logs import bind_job
    from bot.metrics import JOB_FAILURES, JOBS, failure_reason

    with bind_job(job_id, request.repo, request.delivery_id, kind=request.kind):
        log.info("job %s %s started", request.kind, request.repo)
        started = time.perf_counter()
        try:
            result = handle(request)
        except Exception as exc:
            elapsed = round(time.perf_counter() - started, 3)
            reason = failure_reason(exc)
            JOBS.labels(kind=request.kind, outcome=ERROR).inc()
            JOB_FAILURES.labels(kind=request.kind, reason=reason).inc()
            # The queue logs the traceback; this line ties the failure to the job's fields.
            log.warning(
                "job %s %s failed (%s): %s",
                request.kind,
                request.repo,
                reason,
                exc,
                extra={"outcome": ERROR, "reason": reason, "duration_s": elapsed},
            )
            raise
        elapsed = round(time.perf_counter() - started, 3)
        outcome = _outcome(result)
        JOBS.labels(kind=request.kind, outcome=outcome).inc()
        log.info(
            "job %s %s finished: %s",
            request.kind,
            request.repo,
            outcome,
            extra={"outcome": outcome, "duration_s": elapsed},
        )
        return result


def _outcome(result: object) -> str:
    """A :class:`~bot.jobs.branches.JobOutcome`'s action (a fixed set of words), else ``done``."""
    action = getattr(result, "action", None)
    return action if isinstance(action, str) and action else DONE


def _stage_context(name: str) -> AbstractContextManager[None]:
    if "bot.logs" not in sys.modules:
        return nullcontext()  # nothing configured logging in this process
    from bot.logs import bind_stage

    return bind_stage(name)
