"""Progress of a refresh as it happens: which environment is in which stage.

The pipeline reports each step of each environment as a :class:`ProgressEvent` to a
:class:`Progress` callback: queued, then compiling, then done or failed; the same for the
image pins, the image build and the tests. ``lockwarden run`` draws them (live on a terminal,
plain lines elsewhere); jobs log them with :class:`LoggedProgress`. Nothing here knows how
they are shown: the core stages only call the callback.

Compiles run on threads, so a callback may be called from several threads at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

Stage = Literal["compile", "signals", "pins", "build", "test"]
State = Literal["queued", "running", "done", "failed", "skipped"]

FINISHED: frozenset[State] = frozenset({"done", "failed", "skipped"})
"""The states after which an environment's stage reports nothing more."""

_RUNNING = {
    "compile": "compiling",
    "signals": "checking advisories",
    "pins": "pinning",
    "build": "building",
    "test": "testing",
}
_DONE = {
    "compile": "compiled",
    "signals": "checked advisories",
    "pins": "pinned",
    "build": "built",
    "test": "tested",
}


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one environment."""

    environment: str
    stage: Stage
    state: State
    elapsed_s: float | None = None
    """How long the stage took, once it finished."""
    detail: str = ""
    """A few words on the outcome: ``unchanged``, ``3 changed``, ``passed``, a reason."""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def describe(self) -> str:
        """The step in a few words, without the environment: ``compiling``,
        ``compiled in 2.4s (unchanged)``, ``build failed after 31.0s (...)``."""
        if self.state == "queued":
            return "queued"
        if self.state == "running":
            return _RUNNING[self.stage]
        took = f" {self.elapsed_s:.1f}s" if self.elapsed_s is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        if self.state == "skipped":
            return f"{self.stage} skipped{detail}"
        if self.state == "failed":
            return f"{self.stage} failed{' after' + took if took else ''}{detail}"
        return f"{_DONE[self.stage]}{' in' + took if took else ''}{detail}"

    def line(self) -> str:
        """The plain progress line: ``serve: compiled in 2.4s (unchanged)``."""
        return f"{self.environment}: {self.describe()}"


class Progress(Protocol):
    """Where the pipeline reports its steps; must be safe to call from several threads."""

    def __call__(self, event: ProgressEvent, /) -> None: ...


def no_progress(event: ProgressEvent, /) -> None:
    """Reports nothing (the default of every stage)."""


class LoggedProgress:
    """Each step as a log line (at INFO; failures at WARNING), with the environment, stage
    and state as fields, so a job's log shows how far each environment got."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(__name__)

    def __call__(self, event: ProgressEvent, /) -> None:
        level = logging.WARNING if event.state == "failed" else logging.INFO
        fields: dict[str, object] = {
            "environment": event.environment,
            "progress_stage": event.stage,
            "progress_state": event.state,
        }
        if event.elapsed_s is not None:
            fields["duration_s"] = round(event.elapsed_s, 3)
        self._log.log(level, "%s", event.line(), extra=fields)
