"""Lenient typed views of the webhook payloads: only the fields the handlers read.

GitHub's payloads differ between event actions, between github.com and GitHub Enterprise
Server, and over the years: an installation without ``app_slug``, a check run's app without
``permissions``, a label without ``archived_by``, a comment without ``reactions``. A complete
schema rejects a third of real deliveries, so these models declare only what a handler
needs, ignore every other field, and make optional whatever some shape lacks. A field a
handler cannot do without is required: its absence is a :class:`PayloadError` naming it
(the receiver answers 400).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import LockwardenError

FULL_NAME_PATTERN = r"^[^/\s]+/[^/\s]+$"


class PayloadError(LockwardenError):
    """A payload lacks a field a handler needs, or has it in an unusable form."""

    code = "webhook-payload"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# -- shared ----------------------------------------------------------------------------------


class Account(_Lenient):
    """The user or organization an installation belongs to."""

    login: str
    id: int | None = None
    type: str | None = None


class User(Account):
    """A person or a bot (``type == "Bot"``, login ``<slug>[bot]``)."""

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot"


class RepositoryRef(_Lenient):
    """A repository as installation events list it: no default branch."""

    full_name: str = Field(pattern=FULL_NAME_PATTERN)
    id: int | None = None
    name: str | None = None
    private: bool | None = None


class Repository(RepositoryRef):
    default_branch: str | None = None


class Installation(_Lenient):
    """Most events carry only ``id`` (and ``node_id``); installation events carry more."""

    id: int
    app_slug: str | None = None
    account: Account | None = None


class App(_Lenient):
    id: int | None = None
    slug: str | None = None


class _RepositoryEvent(_Lenient):
    """What every event about one repository carries besides its subject."""

    action: str
    repository: Repository
    installation: Installation | None = None
    sender: User | None = None


# -- push ------------------------------------------------------------------------------------


class PushCommit(_Lenient):
    id: str | None = None
    added: list[str] | None = None
    modified: list[str] | None = None
    removed: list[str] | None = None

    def paths(self) -> set[str] | None:
        """Every path the commit touched; ``None`` when the payload does not say."""
        lists = (self.added, self.modified, self.removed)
        if all(files is None for files in lists):
            return None
        return {path for files in lists for path in files or ()}


class PushRepository(Repository):
    default_branch: str


class PushEvent(_Lenient):
    ref: str
    after: str | None = None
    deleted: bool = False
    forced: bool = False
    commits: list[PushCommit] | None = None
    head_commit: PushCommit | None = None
    size: int | None = None
    """Number of commits pushed (not in webhook deliveries; kept for other sources)."""
    repository: PushRepository
    installation: Installation | None = None
    sender: User | None = None


# -- installation, installation_repositories -------------------------------------------------


class InstallationEvent(_Lenient):
    action: str
    installation: Installation
    repositories: list[RepositoryRef] | None = None
    sender: User | None = None


class InstallationRepositoriesEvent(_Lenient):
    action: str
    installation: Installation
    repository_selection: str | None = None
    repositories_added: list[RepositoryRef] = []
    repositories_removed: list[RepositoryRef] = []
    sender: User | None = None


# -- pull_request ----------------------------------------------------------------------------


class Branch(_Lenient):
    ref: str
    sha: str | None = None
    repo: RepositoryRef | None = None
    """``None`` when the fork it came from was deleted."""


class PullRequest(_Lenient):
    number: int
    state: str | None = None
    merged: bool | None = None
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    head: Branch
    base: Branch

    @property
    def was_merged(self) -> bool:
        return bool(self.merged) or self.merged_at is not None


class PullRequestEvent(_RepositoryEvent):
    pull_request: PullRequest


# -- issue_comment ---------------------------------------------------------------------------


class Issue(_Lenient):
    number: int
    pull_request: dict[str, Any] | None = None
    """Present when the issue is a pull request (its content is not read)."""

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class Comment(_Lenient):
    id: int
    body: str | None = None
    user: User
    author_association: str | None = None


class BodyChange(_Lenient):
    previous: str | None = Field(default=None, alias="from")


class CommentChanges(_Lenient):
    body: BodyChange | None = None


class IssueCommentEvent(_RepositoryEvent):
    issue: Issue
    comment: Comment
    changes: CommentChanges | None = None


# -- check_run -------------------------------------------------------------------------------


class CheckSuite(_Lenient):
    """A check suite as ``check_suite`` events carry it, or nested in a check run (where
    GitHub leaves out its ``app`` in some shapes)."""

    id: int | None = None
    head_branch: str | None = None
    """None for a suite on a fork's pull request or on a branch deleted since."""
    head_sha: str | None = None
    app: App | None = None


class RepoId(_Lenient):
    id: int | None = None


class CheckRunBranch(_Lenient):
    """A branch as a check run's ``pull_requests`` list it (its repo has no full name)."""

    ref: str
    sha: str | None = None
    repo: RepoId | None = None


class CheckRunPullRequest(_Lenient):
    number: int
    head: CheckRunBranch


class CheckRun(_Lenient):
    id: int
    name: str
    head_sha: str | None = None
    check_suite: CheckSuite | None = None
    app: App | None = None
    pull_requests: list[CheckRunPullRequest] = []


class CheckRunEvent(_RepositoryEvent):
    check_run: CheckRun


# -- check_suite -----------------------------------------------------------------------------


class CheckSuiteEvent(_RepositoryEvent):
    check_suite: CheckSuite


# -- ping ------------------------------------------------------------------------------------


class PingEvent(_Lenient):
    zen: str | None = None
    hook_id: int | None = None


MODELS: dict[str, type[BaseModel]] = {
    "push": PushEvent,
    "installation": InstallationEvent,
    "installation_repositories": InstallationRepositoriesEvent,
    "pull_request": PullRequestEvent,
    "issue_comment": IssueCommentEvent,
    "check_run": CheckRunEvent,
    "check_suite": CheckSuiteEvent,
    "ping": PingEvent,
}
"""The model of each event the receiver reads."""

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], payload: dict[str, Any]) -> M:
    """Validate ``payload``; the first problem becomes a :class:`PayloadError` naming the
    field as a dotted path (``repository.full_name``, ``repositories_added[0].full_name``)."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise PayloadError(_dotted(error["loc"]), error["msg"]) from exc


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(body)"
