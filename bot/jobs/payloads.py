"""One frozen, typed payload per job kind, parsed once from the JSON the queue stored.

The stored form stays a plain JSON object (jobs already in a queue keep running). Producers
(the webhook handlers, the CLI, the scheduler) build it with ``to_json``; the runner reads it
only through ``of``. A field of the wrong type is an error that names the job kind and the
field, not a ``KeyError`` deep inside a handler. ``trigger`` (what made the job) is the
envelope's, added by whoever enqueues it; an unknown field is ignored, so a job a newer
producer stored still runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar, cast, get_args

from bot.errors import LockwardenError
from bot.jobs.queue import JobRequest

RefreshMode = Literal["minimal", "full", "targeted"]
T = TypeVar("T")
_REQUIRED: Any = object()


class JobPayloadError(LockwardenError):
    """A stored job's payload lacks a field its kind needs, or has it in another type."""

    code = "job-payload"


def _read(request: JobRequest, name: str, kind: type[T], default: Any) -> T:
    """``payload[name]`` when it is a ``kind`` (``default`` when absent or null)."""
    value = request.payload.get(name)
    if value is None:
        if default is _REQUIRED:
            raise JobPayloadError(_problem(request, name, "is missing"))
        return cast("T", default)
    # bool is an int to isinstance; a flag is never a number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise JobPayloadError(_problem(request, name, f"is not a {kind.__name__}: {value!r}"))
    return value


def _strings(request: JobRequest, name: str) -> tuple[str, ...]:
    values: list[Any] = _read(request, name, list, [])
    if not all(isinstance(v, str) for v in values):
        raise JobPayloadError(_problem(request, name, f"must list strings: {values!r}"))
    return tuple(values)


def _problem(request: JobRequest, name: str, what: str) -> str:
    return (
        f"{request.kind} job for {request.repo} (delivery {request.delivery_id}): payload "
        f"field {name!r} {what}; the job cannot run: queue it again (redeliver the webhook "
        "or run `lockwarden enqueue`)"
    )


class _Stored:
    """``to_json``: every field, tuples as lists (what ``of`` reads back)."""

    def to_json(self) -> dict[str, Any]:
        return {
            item.name: list(value) if isinstance(value, tuple) else value
            for item in fields(self)  # type: ignore[arg-type]
            for value in (getattr(self, item.name),)
        }


@dataclass(frozen=True)
class Yank:
    """A locked version its index now marks as yanked (PEP 592), with the index's reason."""

    package: str
    version: str
    reason: str = ""


def _yanks(request: JobRequest) -> tuple[Yank, ...]:
    values: list[Any] = _read(request, "yanked", list, [])
    out = []
    for item in values:
        given = item if isinstance(item, dict) else {}
        parts = [given.get(key) for key in ("package", "version", "reason")]
        if not all(isinstance(part, str) for part in parts):
            raise JobPayloadError(
                _problem(request, "yanked", f"must list package/version/reason: {item!r}")
            )
        out.append(Yank(str(parts[0]), str(parts[1]), str(parts[2])))
    return tuple(out)


@dataclass(frozen=True)
class RefreshPayload(_Stored):
    mode: RefreshMode = "minimal"
    """``minimal`` keeps pins; ``full`` upgrades everything; ``targeted`` only ``packages``."""
    packages: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    branch: str = ""
    """The branch whose push or re-run asked for it (informational)."""
    sha: str = ""
    check_run_id: int | None = None
    """The check run whose re-run asked for it."""
    yanked: tuple[Yank, ...] = ()
    """Locked versions yanked upstream that made this refresh (quoted in the pull request)."""

    def to_json(self) -> dict[str, Any]:
        stored = super().to_json()
        stored["yanked"] = [asdict(y) for y in self.yanked]
        return stored

    @classmethod
    def of(cls, request: JobRequest) -> RefreshPayload:
        mode: str = _read(request, "mode", str, "minimal")
        if mode not in get_args(RefreshMode):
            raise JobPayloadError(_problem(request, "mode", f"is not a refresh mode: {mode!r}"))
        return cls(
            mode=cast("RefreshMode", mode),
            packages=_strings(request, "packages"),
            environments=_strings(request, "environments"),
            branch=_read(request, "branch", str, ""),
            sha=_read(request, "sha", str, ""),
            check_run_id=_read(request, "check_run_id", int, None),
            yanked=_yanks(request),
        )


@dataclass(frozen=True)
class CleanupPayload(_Stored):
    branch: str = ""
    number: int | None = None
    merged: bool = False
    head_sha: str = ""
    merge_commit_sha: str | None = None
    """None until the pull request is merged."""
    base: str = ""

    @classmethod
    def of(cls, request: JobRequest) -> CleanupPayload:
        return cls(
            branch=_read(request, "branch", str, ""),
            number=_read(request, "number", int, None),
            merged=_read(request, "merged", bool, False),
            head_sha=_read(request, "head_sha", str, ""),
            merge_commit_sha=_read(request, "merge_commit_sha", str, None),
            base=_read(request, "base", str, ""),
        )


@dataclass(frozen=True)
class CommandPayload(_Stored):
    comment_id: int
    issue_number: int
    body: str = ""
    author: str = ""
    author_type: str = ""
    is_pull_request: bool = False
    author_association: str = ""
    command_key: str = ""
    """A digest of the comment's command lines: an edit that keeps them is no new job."""

    @classmethod
    def of(cls, request: JobRequest) -> CommandPayload:
        return cls(
            comment_id=_read(request, "comment_id", int, _REQUIRED),
            issue_number=_read(request, "issue_number", int, _REQUIRED),
            body=_read(request, "body", str, ""),
            author=_read(request, "author", str, ""),
            author_type=_read(request, "author_type", str, ""),
            is_pull_request=_read(request, "is_pull_request", bool, False),
            author_association=_read(request, "author_association", str, ""),
            command_key=_read(request, "command_key", str, ""),
        )


@dataclass(frozen=True)
class RepositoryPayload(_Stored):
    """``onboard`` and ``forget``: the job's repository and installation are all they need."""

    @classmethod
    def of(cls, request: JobRequest) -> RepositoryPayload:
        return cls()


@dataclass(frozen=True)
class SecurityPayload(_Stored):
    """``security``: audit the default branch's locks and open the security pull request."""

    reason: str = ""
    """What asked for it (a refresh that found advisories, the release watch)."""
    packages: tuple[str, ...] = ()
    """The packages the trigger saw affected (informational: the job audits again)."""

    @classmethod
    def of(cls, request: JobRequest) -> SecurityPayload:
        return cls(
            reason=_read(request, "reason", str, ""),
            packages=_strings(request, "packages"),
        )


JobPayload = RefreshPayload | CleanupPayload | CommandPayload | RepositoryPayload | SecurityPayload
