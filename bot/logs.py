"""Log lines: one JSON object per line on stderr (or aligned text for people), with the job's
context on every line.

``configure_logging`` sends the standard library's ``logging`` (ours, uvicorn's,
Procrastinate's, psycopg's) through structlog's ``ProcessorFormatter``, so every line a
process writes has the same shape::

    {"timestamp": "...", "level": "info", "logger": "bot.observe", "message": "...",
     "job_id": "42", "kind": "refresh", "repo": "acme/app", "delivery_id": "...",
     "stage": "compile"}

``bind_job`` and ``bind_stage`` put those fields into ``structlog.contextvars``: every line
logged inside them, by any logger, carries them. Context variables follow a job into the
thread that runs it, and each binding is undone when its ``with`` block ends, so nothing
leaks into the next job a thread runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from structlog.typing import Processor

if TYPE_CHECKING:
    from bot.settings import Settings

HANDLER_NAME = "lockwarden"
LEADING_FIELDS = ("timestamp", "level", "logger", "message")
JOB_FIELDS = ("job_id", "kind", "repo", "delivery_id", "stage")
EXTRA_FIELDS = ("duration_s", "outcome", "reason")
"""``extra=`` keys of a stdlib call that become fields (others, such as Procrastinate's bulky
job dumps, are left out)."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Route every logger of the process to ``stream`` (stderr) in ``settings.log_format`` at
    ``settings.log_level``. Called once at start-up; calling it again replaces its handler."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _queue_job_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(allow=EXTRA_FIELDS),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    out = stream if stream is not None else sys.stderr
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if settings.log_format == "json":
        final += [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _leading_fields,
            structlog.processors.JSONRenderer(),
        ]
    else:
        final.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    handler = logging.StreamHandler(out)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Warnings would otherwise go to stderr as bare text, between the JSON lines.
    logging.captureWarnings(True)
    # structlog's own loggers (structlog.get_logger()) end in the same handler.
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def bind_job(
    job_id: str | None, repo: str, delivery_id: str, *, kind: str | None = None
) -> AbstractContextManager[None]:
    """Inside the block, every log line carries ``job_id``, ``repo``, ``delivery_id`` (and
    ``kind``)."""
    fields: dict[str, Any] = {"job_id": job_id, "repo": repo, "delivery_id": delivery_id}
    if kind is not None:
        fields["kind"] = kind
    return structlog.contextvars.bound_contextvars(**fields)


def bind_stage(stage: str) -> AbstractContextManager[None]:
    """Inside the block, every log line carries ``stage``."""
    return structlog.contextvars.bound_contextvars(stage=stage)


def _queue_job_fields(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Procrastinate's own lines about a job (started, ended, retried) are logged outside the
    job's thread; they name the job in ``extra={"job": ...}``, which gives them our fields."""
    job = getattr(event_dict.get("_record"), "job", None)
    if not isinstance(job, dict):
        return event_dict
    if job.get("id") is not None:
        event_dict.setdefault("job_id", str(job["id"]))
    kwargs = job.get("task_kwargs")
    if isinstance(kwargs, dict):
        for field in ("kind", "repo", "delivery_id"):
            if isinstance(kwargs.get(field), str):
                event_dict.setdefault(field, kwargs[field])
    return event_dict


def _leading_fields(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """When, how bad, who and what first: a JSON line stays readable for a person too."""
    message = event_dict.get("message")
    if isinstance(message, str):
        event_dict["message"] = message.rstrip("\n")  # warnings end in a newline
    first = {key: event_dict.pop(key) for key in LEADING_FIELDS if key in event_dict}
    return {**first, **event_dict}
