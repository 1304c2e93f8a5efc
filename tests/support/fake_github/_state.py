"""What the fake remembers.  Tests read these objects directly (``fake.pull(...)``, ...).

Every mutable object here is changed only while ``FakeGitHub.lock`` is held; read them from a
test after the requests under test have completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.support.fake_github._git import BareRepo

JSON = dict[str, Any]

GHES_VERSION = "3.14.0"
"""The GitHub Enterprise Server version the fake claims to be."""

PERMISSION_LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}
"""Installation permission levels (``contents: write`` ...)."""

COLLABORATOR_ROLES = ("admin", "maintain", "write", "triage", "read", "none")
"""Repository roles, strongest first (``set_permission``)."""

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")

DEFAULT_APP_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "members": "read",
    "pull_requests": "write",
}
DEFAULT_APP_EVENTS = (
    "check_run",
    "check_suite",
    "issue_comment",
    "pull_request",
    "push",
)


@dataclass
class User:
    login: str
    id: int
    type: Literal["User", "Organization", "Bot"] = "User"
    name: str | None = None
    email: str | None = None


@dataclass
class Installation:
    id: int
    account: str
    account_type: Literal["User", "Organization"]
    repository_selection: Literal["all", "selected"]
    repositories: list[str]  # full names, for "selected"
    permissions: dict[str, str]
    events: list[str]
    created_at: float
    suspended: bool = False

    @property
    def login(self) -> str:
        return self.account


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: float  # unix time
    permissions: dict[str, str]
    repositories: list[str] | None  # narrowed at creation; None: all of the installation's


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Reaction:
    id: int
    content: str
    user: str
    created_at: float


@dataclass
class IssueComment:
    id: int
    number: int  # of the issue or pull request
    body: str
    user: str
    created_at: float
    updated_at: float
    via_app: bool = False  # made with an installation token
    reactions: list[Reaction] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)  # earlier bodies, oldest first


@dataclass
class Issue:
    """A plain issue; its number comes from the same sequence as pull requests'."""

    id: int
    number: int
    title: str
    body: str | None  # None when empty, as GitHub stores it
    user: str
    created_at: float
    updated_at: float
    state: Literal["open", "closed"] = "open"
    locked: bool = False
    closed_at: float | None = None
    labels: list[str] = field(default_factory=list)


@dataclass
class PullRequest:
    id: int
    issue_id: int  # the id of the pull request seen as an issue
    number: int
    title: str
    body: str | None
    head: str  # branch name
    base: str
    user: str
    created_at: float
    updated_at: float
    draft: bool = False
    state: Literal["open", "closed"] = "open"
    locked: bool = False
    maintainer_can_modify: bool = False
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    head_sha: str = ""  # kept current while open, frozen when closed
    base_sha: str = ""
    labels: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)
    history: list[JSON] = field(default_factory=list)  # PATCH bodies as received

    @property
    def merged(self) -> bool:
        return self.merged_at is not None


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    check_suite_id: int
    app_id: int
    status: str = "queued"
    conclusion: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    details_url: str | None = None
    external_id: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[JSON] = field(default_factory=list)
    actions: list[JSON] = field(default_factory=list)
    history: list[JSON] = field(default_factory=list)  # create and update bodies as received


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    created_at: float
    git: BareRepo
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)  # plain issues only
    comments: dict[int, IssueComment] = field(default_factory=dict)  # by comment id
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    check_suites: dict[str, int] = field(default_factory=dict)  # head sha -> suite id
    labels: dict[str, Label] = field(default_factory=dict)  # by lower-case name
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role
    next_number: int = 1  # of the next issue or pull request
    pushed_at: float = 0.0

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it.  ``headers`` has lower-case names and the credentials
    of ``authorization`` redacted;
    ``auth`` says who made it: ``"jwt"``, ``"installation:<id>"``, ``"invalid"`` or None."""

    method: str
    path: str  # without the query string, percent-decoded
    query: str
    headers: dict[str, str]
    status: int
    auth: str | None
    body: bytes = b""
    time: float = 0.0

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass(frozen=True)
class Push:
    """A ref update made over git smart HTTP."""

    repo: str
    ref: str
    before: str  # ZERO_SHA when created
    after: str  # ZERO_SHA when deleted
    installation_id: int | None


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery made by ``FakeGitHub.deliver`` (or a redelivery of one), with what
    ``/app/hook/deliveries`` shows of it and what resending it takes."""

    event: str
    delivery: str
    """The guid (``X-GitHub-Delivery``), shared by a delivery and its redeliveries."""
    url: str
    status: int
    """The receiver's HTTP status code; 0 when it could not be reached."""
    id: int = 0
    delivered_at: float = 0.0
    redelivery: bool = False
    action: str | None = None
    installation_id: int | None = None
    repository_id: int | None = None
    duration: float = 0.0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    @property
    def guid(self) -> str:
        return self.delivery

    @property
    def status_text(self) -> str:
        """GitHub's ``status``: ``OK`` for a 2xx answer."""
        if 200 <= self.status < 300:
            return "OK"
        if self.status == 0:
            return "failed to connect to host"
        return f"Invalid HTTP Response: {self.status}"


@dataclass
class Fault:
    method: str
    path_regex: str
    status: int
    headers: dict[str, str]
    body: JSON | None
    times: int
