"""REST routes of the fake (paths relative to ``/api/v3``).

Each handler runs with ``FakeGitHub.lock`` held, after authentication: ``app`` routes take the
app's JWT, the others an installation token that covers the repository in the path and holds
one of the permissions the route ``needs``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tests.support.fake_github._errors import (
    DOCS,
    ApiError,
    check_body_length,
    invalid_field,
    missing_field,
    not_found,
    validation_failed,
)
from tests.support.fake_github._git import ZERO_SHA
from tests.support.fake_github._render import installation_level_ok, iso
from tests.support.fake_github._state import (
    JSON,
    PERMISSION_LEVELS,
    REACTIONS,
    CheckRun,
    Delivery,
    Installation,
    Issue,
    Label,
    PullRequest,
    Reaction,
    Repo,
    Token,
)

if TYPE_CHECKING:
    from tests.support.fake_github._fake import FakeGitHub
    from tests.support.fake_github._server import Auth

T = TypeVar("T")
Result = tuple[int, Any, dict[str, str]]
Need = tuple[str, str]

CHECK_TEXT_LIMIT = 65535
ANNOTATIONS_PER_REQUEST = 50
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")


@dataclass
class Ctx:
    fake: FakeGitHub
    method: str
    path: str
    params: dict[str, str]
    query: list[tuple[str, str]]
    body: bytes
    auth: Auth
    headers: Message
    repo_: Repo | None = None
    _json: Any = field(default=None, repr=False)

    @property
    def repo(self) -> Repo:
        assert self.repo_ is not None
        return self.repo_

    @property
    def token(self) -> Token:
        assert self.auth.token is not None
        return self.auth.token

    @property
    def actor(self) -> str:
        return self.fake.bot_login

    def arg(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def int_arg(self, name: str, default: int) -> int:
        value = self.arg(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    def json(self) -> Any:
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.body)
                except ValueError:
                    raise ApiError(400, "Problems parsing JSON") from None
        return self._json

    def obj(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def number(self, name: str = "number") -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise not_found() from None


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    func: Callable[[Ctx], Result]
    auth: Literal["app", "installation"]
    needs: tuple[Need, ...]


ROUTES: list[Route] = []


def _compile(pattern: str) -> re.Pattern[str]:
    def group(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition(":")
        return f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"

    return re.compile("^" + re.sub(r"\{([^}]+)\}", group, pattern) + "/?$")


def route(
    method: str,
    pattern: str,
    *,
    auth: Literal["app", "installation"] = "installation",
    needs: Sequence[Need] = (),
) -> Callable[[Callable[[Ctx], Result]], Callable[[Ctx], Result]]:
    def register(func: Callable[[Ctx], Result]) -> Callable[[Ctx], Result]:
        ROUTES.append(Route(method, _compile(pattern), func, auth, tuple(needs)))
        return func

    return register


def ok(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Result:
    return status, data, dict(headers or {})


READ_META: tuple[Need, ...] = (("metadata", "read"),)
READ_CONTENTS: tuple[Need, ...] = (("contents", "read"),)
WRITE_CONTENTS: tuple[Need, ...] = (("contents", "write"),)
READ_PULLS: tuple[Need, ...] = (("pull_requests", "read"),)
WRITE_PULLS: tuple[Need, ...] = (("pull_requests", "write"),)
READ_ISSUES: tuple[Need, ...] = (("issues", "read"), ("pull_requests", "read"))
WRITE_ISSUES: tuple[Need, ...] = (("issues", "write"), ("pull_requests", "write"))
READ_CHECKS: tuple[Need, ...] = (("checks", "read"),)
WRITE_CHECKS: tuple[Need, ...] = (("checks", "write"),)


def handle_rest(
    fake: FakeGitHub,
    method: str,
    api_path: str,
    query: str,
    body: bytes,
    auth: Auth,
    headers: Message,
) -> Result:
    try:
        return _dispatch(fake, method, api_path, query, body, auth, headers)
    except ApiError as exc:
        return exc.status, exc.body(), exc.headers


def _dispatch(
    fake: FakeGitHub,
    method: str,
    api_path: str,
    query: str,
    body: bytes,
    auth: Auth,
    headers: Message,
) -> Result:
    for candidate in ROUTES:
        match = candidate.regex.match(api_path)
        if match and candidate.method == method:
            found = candidate
            break
    else:
        raise not_found()
    params = {key: urllib.parse.unquote(value) for key, value in match.groupdict().items()}
    ctx = Ctx(
        fake=fake,
        method=method,
        path=api_path,
        params=params,
        query=urllib.parse.parse_qsl(query, keep_blank_values=True),
        body=body,
        auth=auth,
        headers=headers,
    )
    if found.auth == "app":
        if auth.kind != "jwt":
            raise ApiError(401, auth.error or "A JSON web token could not be decoded")
    else:
        if auth.kind == "none":
            raise ApiError(401, "Requires authentication")
        if auth.kind != "installation" or auth.token is None:
            raise ApiError(401, "Bad credentials")
        if "owner" in params:
            repo = fake.find_repo(params["owner"], params["repo"])
            if repo is None or not fake.token_covers(auth.token, repo):
                raise not_found()
            ctx.repo_ = repo
        if found.needs and not any(
            installation_level_ok(auth.token.permissions.get(name), level)
            for name, level in found.needs
        ):
            raise ApiError(403, "Resource not accessible by integration")
    with fake.lock:
        return found.func(ctx)


# -- helpers ---------------------------------------------------------------------------------


def paginate(ctx: Ctx, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """One page of ``items`` and GitHub's ``Link`` header (next, last, first, prev)."""
    per_page = min(max(ctx.int_arg("per_page", 30), 1), 100)
    page = max(ctx.int_arg("page", 1), 1)
    last = max(1, math.ceil(len(items) / per_page))
    chunk = list(items[(page - 1) * per_page : page * per_page])

    def url(number: int) -> str:
        params = [(k, v) for k, v in ctx.query if k not in ("page", "per_page")]
        params += [("per_page", str(per_page)), ("page", str(number))]
        return f"{ctx.fake.api_url}{ctx.path}?{urllib.parse.urlencode(params)}"

    links = []
    if page < last:
        links += [(url(page + 1), "next"), (url(last), "last")]
    if page > 1:
        links += [(url(1), "first"), (url(min(page - 1, last)), "prev")]
    headers = {"Link": ", ".join(f'<{u}>; rel="{rel}"' for u, rel in links)} if links else {}
    return chunk, headers


def page_of(ctx: Ctx, items: Sequence[Any]) -> Result:
    chunk, headers = paginate(ctx, items)
    return ok(chunk, headers=headers)


def location(ctx: Ctx, suffix: str) -> dict[str, str]:
    return {"Location": f"{ctx.fake.api_url}{suffix}"}


def require_str(data: Mapping[str, Any], key: str, resource: str) -> str:
    value = data.get(key)
    if value is None:
        raise missing_field(resource, key)
    if not isinstance(value, str):
        raise invalid_field(resource, key)
    return value


def optional_str(data: Mapping[str, Any], key: str, resource: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_field(resource, key)
    return value


def get_pull(ctx: Ctx) -> PullRequest:
    pr = ctx.repo.pulls.get(ctx.number())
    if pr is None:
        raise not_found()
    return pr


def _require_issues_permission(ctx: Ctx) -> None:
    """Plain issues (and their comments) take the ``issues`` permission: ``pull_requests``
    alone, which the issues routes accept for pull requests, does not cover them."""
    level = "read" if ctx.method == "GET" else "write"
    if not installation_level_ok(ctx.token.permissions.get("issues"), level):
        raise ApiError(403, "Resource not accessible by integration")


def get_issue_or_pull(ctx: Ctx) -> Issue | PullRequest:
    """What ``/issues/{number}`` names: a pull request or a plain issue (the same sequence)."""
    number = ctx.number()
    pr = ctx.repo.pulls.get(number)
    if pr is not None:
        return pr
    issue = ctx.repo.issues.get(number)
    if issue is None:
        raise not_found()
    _require_issues_permission(ctx)
    return issue


def parse_time(value: Any, name: str) -> float:
    """An ISO 8601 timestamp of a request body, as unix time."""
    if not isinstance(value, str):
        raise invalid_field("CheckRun", name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_field("CheckRun", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- the app (JWT) ---------------------------------------------------------------------------


@route("GET", "/app", auth="app")
def get_app(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.app())


@route("GET", "/app/hook/deliveries", auth="app")
def list_deliveries(ctx: Ctx) -> Result:
    """Newest first; GitHub pages these with an opaque ``cursor`` (here ``v1_<last id>``)."""
    per_page = min(max(ctx.int_arg("per_page", 30), 1), 100)
    found = sorted(ctx.fake.deliveries, key=lambda d: d.id, reverse=True)
    wanted = ctx.arg("status")
    if wanted in ("success", "failure"):
        found = [d for d in found if (d.status_text == "OK") == (wanted == "success")]
    cursor = ctx.arg("cursor")
    if cursor:
        prefix, _, last = cursor.partition("_")
        if prefix != "v1" or not last.isdigit():
            raise validation_failed("HookDelivery", "Invalid cursor")
        found = [d for d in found if d.id < int(last)]
    chunk = found[:per_page]
    headers: dict[str, str] = {}
    if len(found) > per_page:
        params = [(k, v) for k, v in ctx.query if k not in ("cursor", "per_page")]
        params += [("per_page", str(per_page)), ("cursor", f"v1_{chunk[-1].id}")]
        url = f"{ctx.fake.api_url}{ctx.path}?{urllib.parse.urlencode(params)}"
        headers["Link"] = f'<{url}>; rel="next"'
    return ok([ctx.fake.render.delivery(d) for d in chunk], headers=headers)


def _delivery(ctx: Ctx) -> Delivery:
    wanted = ctx.params["delivery_id"]
    found = next((d for d in ctx.fake.deliveries if str(d.id) == wanted), None)
    if found is None:
        raise not_found()
    return found


@route("GET", "/app/hook/deliveries/{delivery_id}", auth="app")
def get_delivery(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.delivery(_delivery(ctx), full=True))


@route("POST", "/app/hook/deliveries/{delivery_id}/attempts", auth="app")
def redeliver(ctx: Ctx) -> Result:
    """Sends the delivery again before answering, so a test sees its outcome at once. The
    fake's lock is held meanwhile: the receiver must not call the fake while handling it."""
    ctx.fake.redeliver(_delivery(ctx).id)
    return ok({}, 202)


@route("GET", "/app/installations", auth="app")
def list_installations(ctx: Ctx) -> Result:
    render = ctx.fake.render
    found = sorted(ctx.fake.installations.values(), key=lambda i: i.id)
    return page_of(ctx, [render.installation(inst) for inst in found])


def _installation(ctx: Ctx, name: str = "installation_id") -> Installation:
    try:
        inst = ctx.fake.installations.get(int(ctx.params[name]))
    except ValueError:
        inst = None
    if inst is None:
        raise not_found()
    return inst


@route("GET", "/app/installations/{installation_id}", auth="app")
def get_installation(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.installation(_installation(ctx)))


@route("POST", "/app/installations/{installation_id}/access_tokens", auth="app")
def create_token(ctx: Ctx) -> Result:
    """GitHub's narrowing: ``repositories`` (names) and ``repository_ids`` pick repositories
    of the installation (an empty list, or none, means all of them), ``permissions`` a subset
    of the installation's grant; anything beyond is a 422 with GitHub's message."""
    fake = ctx.fake
    inst = _installation(ctx)
    if inst.suspended:
        raise ApiError(403, "This installation has been suspended")
    data = ctx.obj()
    names = _token_repositories(ctx, inst, data)
    permissions = _token_permissions(inst, data.get("permissions"))
    token = fake.issue_token(inst, repositories=names, permissions=permissions)
    result: JSON = {
        "token": token.token,
        "expires_at": iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "selected" if names is not None else inst.repository_selection,
    }
    if names is not None:
        result["repositories"] = [fake.render.repo(fake.repo(n)) for n in names]
    return ok(result, 201)


TOKEN_DOCS = f"{DOCS}/apps/apps#create-an-installation-access-token-for-an-app"
NOT_IN_INSTALLATION = (
    "There is at least one repository that does not exist or is not accessible to the parent "
    "installation."
)
NOT_GRANTED = "The permissions requested are not granted to this installation."
MAX_TOKEN_REPOSITORIES = 500


def _token_repositories(ctx: Ctx, inst: Installation, data: Mapping[str, Any]) -> list[str] | None:
    wanted_names = data.get("repositories") or []
    wanted_ids = data.get("repository_ids") or []
    if not isinstance(wanted_names, list) or not isinstance(wanted_ids, list):
        raise invalid_field("Installation", "repositories")
    if not wanted_names and not wanted_ids:
        return None  # GitHub: no list, or an empty one, is every repository of the installation
    if len(wanted_names) + len(wanted_ids) > MAX_TOKEN_REPOSITORIES:
        raise ApiError(422, NOT_IN_INSTALLATION, documentation_url=TOKEN_DOCS)
    fake = ctx.fake
    covered = [r for r in fake.all_repos() if fake.installation_covers(inst, r)]
    names = {str(n).lower() for n in wanted_names}
    ids = {i for i in wanted_ids if isinstance(i, int)}
    chosen = [r for r in covered if r.name.lower() in names or r.id in ids]
    found_names, found_ids = {r.name.lower() for r in chosen}, {r.id for r in chosen}
    strays = any(not isinstance(i, int) for i in wanted_ids)
    if strays or not names <= found_names or not ids <= found_ids:
        raise ApiError(422, NOT_IN_INSTALLATION, documentation_url=TOKEN_DOCS)
    return [r.full_name for r in chosen]


def _token_permissions(inst: Installation, asked: Any) -> dict[str, str]:
    if not asked:
        return dict(inst.permissions)
    if not isinstance(asked, dict) or any(
        str(level) not in PERMISSION_LEVELS
        or not installation_level_ok(inst.permissions.get(str(name)), str(level))
        for name, level in asked.items()
    ):
        raise ApiError(422, NOT_GRANTED, documentation_url=TOKEN_DOCS)
    return {str(name): str(level) for name, level in asked.items()}


@route("GET", "/repos/{owner}/{repo}/installation", auth="app")
def get_repo_installation(ctx: Ctx) -> Result:
    inst = ctx.fake.installation_for(f"{ctx.params['owner']}/{ctx.params['repo']}")
    if inst is None:
        raise not_found()
    return ok(ctx.fake.render.installation(inst))


@route("GET", "/orgs/{org}/installation", auth="app")
@route("GET", "/users/{org}/installation", auth="app")
def get_account_installation(ctx: Ctx) -> Result:
    for inst in ctx.fake.installations.values():
        if inst.account.lower() == ctx.params["org"].lower():
            return ok(ctx.fake.render.installation(inst))
    raise not_found()


# -- the installation ----------------------------------------------------------------------


@route("GET", "/installation/repositories")
def list_installation_repos(ctx: Ctx) -> Result:
    fake = ctx.fake
    inst = fake.installations[ctx.token.installation_id]
    repos = [r for r in fake.all_repos() if fake.token_covers(ctx.token, r)]
    chunk, headers = paginate(ctx, repos)
    selection = "selected" if ctx.token.repositories is not None else inst.repository_selection
    return ok(
        {
            "total_count": len(repos),
            "repository_selection": selection,
            "repositories": [fake.render.repo(r, role=_role(ctx.token)) for r in chunk],
        },
        headers=headers,
    )


def _role(token: Token) -> str:
    level = token.permissions.get("contents", "read")
    return "write" if installation_level_ok(level, "write") else "read"


@route("GET", "/rate_limit")
def rate_limit(ctx: Ctx) -> Result:
    fake = ctx.fake
    used = fake.rate_used.get(ctx.auth.label or "", 0)
    reset = (int(time.time()) // 3600 + 1) * 3600

    def bucket(limit: int, used: int, resource: str) -> JSON:
        return {
            "limit": limit,
            "used": used,
            "remaining": max(0, limit - used),
            "reset": reset,
            "resource": resource,
        }

    core = bucket(fake.rate_limit, used, "core")
    return ok(
        {
            "resources": {
                "core": core,
                "search": bucket(30, 0, "search"),
                "graphql": bucket(5000, 0, "graphql"),
            },
            "rate": core,
        }
    )


# -- repositories ----------------------------------------------------------------------------


@route("GET", "/repos/{owner}/{repo}", needs=READ_META)
def get_repo(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.repo(ctx.repo, full=True, role=_role(ctx.token)))


@route("GET", "/repos/{owner}/{repo}/branches", needs=READ_CONTENTS)
def list_branches(ctx: Ctx) -> Result:
    render = ctx.fake.render
    branches = sorted(ctx.repo.git.branches().items())
    return page_of(ctx, [render.branch(ctx.repo, n, s, full=False) for n, s in branches])


@route("GET", "/repos/{owner}/{repo}/branches/{branch:path}", needs=READ_CONTENTS)
def get_branch(ctx: Ctx) -> Result:
    sha = ctx.repo.git.branch_sha(ctx.params["branch"])
    if sha is None:
        raise ApiError(404, "Branch not found")
    return ok(ctx.fake.render.branch(ctx.repo, ctx.params["branch"], sha, full=True))


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/check-runs", needs=READ_CHECKS)
def list_check_runs_for_ref(ctx: Ctx) -> Result:
    sha = ctx.repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise validation_failed("Commit", f"No commit found for SHA: {ctx.params['ref']}")
    runs = sorted(
        (r for r in ctx.repo.check_runs.values() if r.head_sha == sha), key=lambda r: -r.id
    )
    name = ctx.arg("check_name")
    status = ctx.arg("status")
    app_id = ctx.arg("app_id")
    if name is not None:
        runs = [r for r in runs if r.name == name]
    if status is not None:
        runs = [r for r in runs if r.status == status]
    if app_id is not None:
        runs = [r for r in runs if str(r.app_id) == app_id]
    if ctx.arg("filter", "latest") == "latest":
        seen: set[str] = set()
        latest = []
        for run in runs:
            if run.name not in seen:
                seen.add(run.name)
                latest.append(run)
        runs = latest
    chunk, headers = paginate(ctx, runs)
    return ok(
        {
            "total_count": len(runs),
            "check_runs": [ctx.fake.render.check_run(ctx.repo, r) for r in chunk],
        },
        headers=headers,
    )


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}", needs=READ_CONTENTS)
def get_commit(ctx: Ctx) -> Result:
    sha = ctx.repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise validation_failed("Commit", f"No commit found for SHA: {ctx.params['ref']}")
    return ok(ctx.fake.render.commit(ctx.repo, sha))


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/{ref}"


@route("GET", "/repos/{owner}/{repo}/git/ref/{ref:path}", needs=READ_CONTENTS)
def get_ref(ctx: Ctx) -> Result:
    ref = _full_ref(ctx.params["ref"])
    sha = ctx.repo.git.refs().get(ref)
    if sha is None:
        raise not_found()
    return ok(ctx.fake.render.git_ref(ctx.repo, ref, sha))


@route("POST", "/repos/{owner}/{repo}/git/refs", needs=WRITE_CONTENTS)
def create_ref(ctx: Ctx) -> Result:
    data = ctx.obj()
    ref = require_str(data, "ref", "Reference")
    sha = require_str(data, "sha", "Reference")
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise validation_failed(
            "Reference", "Reference name must start with 'refs/' and have at least two slashes."
        )
    if ctx.repo.git.resolve(sha) != sha:
        raise validation_failed("Reference", "Object does not exist")
    if ref in ctx.repo.git.refs():
        raise validation_failed("Reference", "Reference already exists")
    ctx.repo.git.update_ref(ref, sha, ZERO_SHA)
    ctx.repo.pushed_at = time.time()
    return ok(
        ctx.fake.render.git_ref(ctx.repo, ref, sha),
        201,
        location(ctx, f"/repos/{ctx.repo.full_name}/git/{ref}"),
    )


@route("PATCH", "/repos/{owner}/{repo}/git/refs/{ref:path}", needs=WRITE_CONTENTS)
def update_ref(ctx: Ctx) -> Result:
    ref = _full_ref(ctx.params["ref"])
    data = ctx.obj()
    sha = require_str(data, "sha", "Reference")
    current = ctx.repo.git.refs().get(ref)
    if current is None:
        raise validation_failed("Reference", "Reference does not exist")
    if ctx.repo.git.resolve(sha) != sha:
        raise validation_failed("Reference", "Object does not exist")
    if not data.get("force") and not ctx.repo.git.is_ancestor(current, sha):
        raise validation_failed("Reference", "Update is not a fast forward")
    ctx.repo.git.update_ref(ref, sha, current)
    ctx.repo.pushed_at = time.time()
    return ok(ctx.fake.render.git_ref(ctx.repo, ref, sha))


@route("DELETE", "/repos/{owner}/{repo}/git/refs/{ref:path}", needs=WRITE_CONTENTS)
def delete_ref(ctx: Ctx) -> Result:
    ref = _full_ref(ctx.params["ref"])
    sha = ctx.repo.git.refs().get(ref)
    if sha is None or not ctx.repo.git.delete_ref(ref):
        raise validation_failed("Reference", "Reference does not exist")
    if ref.startswith("refs/heads/"):
        ctx.fake.branch_deleted(ctx.repo, ref[len("refs/heads/") :], sha)
    return ok(None, 204)


@route("GET", "/repos/{owner}/{repo}/contents", needs=READ_CONTENTS)
@route("GET", "/repos/{owner}/{repo}/contents/{path:path}", needs=READ_CONTENTS)
def get_contents(ctx: Ctx) -> Result:
    repo = ctx.repo
    ref = ctx.arg("ref") or repo.default_branch
    commit = repo.git.resolve(ref)
    if commit is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    path = ctx.params.get("path", "").strip("/")
    kind = repo.git.object_type(commit, path)
    render = ctx.fake.render
    if kind == "tree":
        entries = [
            render.content_entry(
                repo,
                ref,
                f"{path}/{name}" if path else name,
                {"tree": "dir", "blob": "file", "commit": "submodule"}.get(otype, "file"),
                sha,
                size,
            )
            for _mode, otype, sha, size, name in repo.git.ls_tree(commit, path)
        ]
        return ok(entries)
    if kind != "blob":
        raise not_found()
    data = repo.git.read_blob(commit, path) or b""
    encoded = base64.b64encode(data).decode()
    wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    entry = render.content_entry(
        repo, ref, path, "file", repo.git.object_sha(commit, path), len(data)
    )
    entry.update({"content": wrapped, "encoding": "base64"})
    return ok(entry)


# -- collaborators -----------------------------------------------------------------------------


@route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", needs=READ_META)
def get_permission(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.collaborator_permission(ctx.repo, ctx.params["username"]))


@route("GET", "/repos/{owner}/{repo}/collaborators/{username}", needs=READ_META)
def check_collaborator(ctx: Ctx) -> Result:
    if ctx.fake.role_of(ctx.repo, ctx.params["username"]) == "none":
        raise not_found()
    return ok(None, 204)


# -- pull requests ---------------------------------------------------------------------------


@route("GET", "/repos/{owner}/{repo}/pulls", needs=READ_PULLS)
def list_pulls(ctx: Ctx) -> Result:
    state = ctx.arg("state", "open")
    if state not in ("open", "closed", "all"):
        raise invalid_field("PullRequest", "state")
    pulls = [pr for pr in ctx.repo.pulls.values() if state == "all" or pr.state == state]
    head = ctx.arg("head")
    if head:
        owner, sep, branch = head.partition(":")
        if sep:
            pulls = [
                pr for pr in pulls if owner.lower() == ctx.repo.owner.lower() and pr.head == branch
            ]
        else:
            pulls = [pr for pr in pulls if pr.head == head]
    base = ctx.arg("base")
    if base:
        pulls = [pr for pr in pulls if pr.base == base]
    sort = ctx.arg("sort", "created")
    direction = ctx.arg("direction", "desc" if sort == "created" else "asc")
    key: Callable[[PullRequest], Any] = {
        "updated": lambda pr: (pr.updated_at, pr.number),
        "popularity": lambda pr: (len(ctx.fake.comments(ctx.repo.full_name, pr.number)), pr.number),
        "long-running": lambda pr: (pr.created_at, pr.number),
    }.get(sort or "created", lambda pr: pr.number)
    pulls.sort(key=key, reverse=direction == "desc")
    chunk, headers = paginate(ctx, pulls)
    render = ctx.fake.render
    return ok([render.pull(ctx.repo, pr, full=False) for pr in chunk], headers=headers)


@route("POST", "/repos/{owner}/{repo}/pulls", needs=WRITE_PULLS)
def create_pull(ctx: Ctx) -> Result:
    data = ctx.obj()
    head = require_str(data, "head", "PullRequest")
    base = require_str(data, "base", "PullRequest")
    title = optional_str(data, "title", "PullRequest")
    if not title:
        raise missing_field("PullRequest", "title")
    body = optional_str(data, "body", "PullRequest")
    pr = ctx.fake.create_pull(
        ctx.repo, head, base, title, body, ctx.actor, bool(data.get("draft", False))
    )
    if "maintainer_can_modify" in data:
        pr.maintainer_can_modify = bool(data["maintainer_can_modify"])
    return ok(
        ctx.fake.render.pull(ctx.repo, pr, full=True),
        201,
        location(ctx, f"/repos/{ctx.repo.full_name}/pulls/{pr.number}"),
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{number}", needs=READ_PULLS)
def get_pull_route(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.pull(ctx.repo, get_pull(ctx), full=True))


@route("PATCH", "/repos/{owner}/{repo}/pulls/{number}", needs=WRITE_PULLS)
def update_pull(ctx: Ctx) -> Result:
    fake = ctx.fake
    pr = get_pull(ctx)
    data = ctx.obj()
    title = optional_str(data, "title", "PullRequest")
    body = optional_str(data, "body", "PullRequest")
    state = optional_str(data, "state", "PullRequest")
    base = optional_str(data, "base", "PullRequest")
    if state is not None and state not in ("open", "closed"):
        raise invalid_field("PullRequest", "state")
    if "title" in data and not title:
        raise missing_field("PullRequest", "title")
    check_body_length("PullRequest", body)
    if base is not None and ctx.repo.git.branch_sha(base) is None:
        raise validation_failed(
            "PullRequest", f"Proposed base branch '{base}' was not found", field="base"
        )
    pr.history.append(dict(data))
    if title is not None:
        pr.title = title
    if "body" in data:
        pr.body = body
    if base is not None:
        pr.base = base
    if "maintainer_can_modify" in data:
        pr.maintainer_can_modify = bool(data["maintainer_can_modify"])
    if state == "closed" and pr.state == "open":
        fake.pull_shas(ctx.repo, pr)
        fake.mark_closed(ctx.repo, pr)
    elif state == "open" and pr.state == "closed":
        if pr.merged:
            raise validation_failed(
                "PullRequest", "state cannot be changed. The pull request has been merged."
            )
        fake.reopen(ctx.repo, pr)
    pr.updated_at = time.time()
    return ok(fake.render.pull(ctx.repo, pr, full=True))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/merge", needs=READ_PULLS)
def check_merged(ctx: Ctx) -> Result:
    if not get_pull(ctx).merged:
        raise not_found()
    return ok(None, 204)


@route("PUT", "/repos/{owner}/{repo}/pulls/{number}/merge", needs=WRITE_PULLS)
def merge_pull(ctx: Ctx) -> Result:
    if not installation_level_ok(ctx.token.permissions.get("contents"), "write"):
        raise ApiError(403, "Resource not accessible by integration")
    pr = get_pull(ctx)
    data = ctx.obj()
    method = data.get("merge_method", "merge")
    if method not in ("merge", "squash", "rebase"):
        raise invalid_field("PullRequest", "merge_method")
    sha = ctx.fake.merge(
        ctx.repo,
        pr,
        method,
        ctx.actor,
        sha=optional_str(data, "sha", "PullRequest"),
        commit_title=optional_str(data, "commit_title", "PullRequest"),
        commit_message=optional_str(data, "commit_message", "PullRequest"),
    )
    return ok({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


def _reviewer_lists(data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    reviewers = data.get("reviewers") or []
    teams = data.get("team_reviewers") or []
    if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
        raise invalid_field("PullRequest", "reviewers")
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        raise invalid_field("PullRequest", "team_reviewers")
    return reviewers, teams


def _not_collaborator(repo: Repo) -> ApiError:
    return validation_failed(
        "PullRequest",
        "Reviews may only be requested from collaborators. One or more of the users or teams "
        f"you specified is not a collaborator of the {repo.full_name} repository.",
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", needs=READ_PULLS)
def list_reviewers(ctx: Ctx) -> Result:
    pr = get_pull(ctx)
    render = ctx.fake.render
    return ok(
        {
            "users": [render.user(u) for u in pr.requested_reviewers],
            "teams": [render.team(ctx.repo.owner, t) for t in pr.requested_teams],
        }
    )


@route("POST", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", needs=WRITE_PULLS)
def request_reviewers(ctx: Ctx) -> Result:
    fake = ctx.fake
    pr = get_pull(ctx)
    reviewers, teams = _reviewer_lists(ctx.obj())
    if not reviewers and not teams:
        raise validation_failed(
            "PullRequest", "Invalid request.\n\nNo reviewers or team_reviewers were supplied."
        )
    for login in reviewers:
        if login.lower() == pr.user.lower():
            raise validation_failed(
                "PullRequest", "Review cannot be requested from pull request author."
            )
        if fake.role_of(ctx.repo, login) == "none":
            raise _not_collaborator(ctx.repo)
    if teams and fake.user(ctx.repo.owner).type != "Organization":
        raise _not_collaborator(ctx.repo)
    for login in reviewers:
        canonical = fake.user(login).login
        if canonical not in pr.requested_reviewers:
            pr.requested_reviewers.append(canonical)
    for team in teams:
        if team not in pr.requested_teams:
            pr.requested_teams.append(team)
    pr.updated_at = time.time()
    return ok(fake.render.pull(ctx.repo, pr, full=False), 201)


@route("DELETE", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", needs=WRITE_PULLS)
def remove_reviewers(ctx: Ctx) -> Result:
    pr = get_pull(ctx)
    reviewers, teams = _reviewer_lists(ctx.obj())
    lowered = {r.lower() for r in reviewers}
    pr.requested_reviewers = [r for r in pr.requested_reviewers if r.lower() not in lowered]
    pr.requested_teams = [t for t in pr.requested_teams if t not in teams]
    return ok(ctx.fake.render.pull(ctx.repo, pr, full=False))


# -- issues: labels, comments, reactions -------------------------------------------------------


@route("GET", "/repos/{owner}/{repo}/issues/{number}", needs=READ_ISSUES)
def get_issue(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.issue_or_pull(ctx.repo, get_issue_or_pull(ctx)))


# GitHub refuses a label name longer than this.
MAX_LABEL_NAME = 50


def _label_names(data: Any) -> list[str]:
    items = data.get("labels") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise validation_failed("Label", 'Invalid request.\n\n"labels" wasn\'t supplied.')
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            raise invalid_field("Label", "name")
        if len(name.strip()) > MAX_LABEL_NAME:
            raise validation_failed(
                "Label",
                f"name is too long (maximum is {MAX_LABEL_NAME} characters)",
                field="name",
                code="custom",
            )
        names.append(name.strip())
    return names


def _ensure_label(ctx: Ctx, name: str) -> Label:
    label = ctx.repo.labels.get(name.lower())
    if label is None:
        label = Label(id=ctx.fake.new_id(), name=name)
        ctx.repo.labels[name.lower()] = label
    return label


def _labels_of(ctx: Ctx, item: Issue | PullRequest) -> list[JSON]:
    render = ctx.fake.render
    return [render.label(ctx.repo, ctx.repo.labels[n.lower()]) for n in item.labels]


@route("GET", "/repos/{owner}/{repo}/labels", needs=READ_ISSUES)
def list_repo_labels(ctx: Ctx) -> Result:
    """The repository's labels, those a pull request or issue created included."""
    labels = sorted(ctx.repo.labels.values(), key=lambda label: label.name.lower())
    return page_of(ctx, [ctx.fake.render.label(ctx.repo, label) for label in labels])


@route("GET", "/repos/{owner}/{repo}/labels/{name}", needs=READ_ISSUES)
def get_repo_label(ctx: Ctx) -> Result:
    label = ctx.repo.labels.get(ctx.params["name"].lower())
    if label is None:
        raise not_found()
    return ok(ctx.fake.render.label(ctx.repo, label))


@route("GET", "/repos/{owner}/{repo}/issues/{number}/labels", needs=READ_ISSUES)
def list_labels(ctx: Ctx) -> Result:
    return page_of(ctx, _labels_of(ctx, get_issue_or_pull(ctx)))


@route("POST", "/repos/{owner}/{repo}/issues/{number}/labels", needs=WRITE_ISSUES)
@route("PUT", "/repos/{owner}/{repo}/issues/{number}/labels", needs=WRITE_ISSUES)
def add_labels(ctx: Ctx) -> Result:
    item = get_issue_or_pull(ctx)
    names = _label_names(ctx.json())
    if ctx.method == "PUT":
        item.labels = []
    present = {n.lower() for n in item.labels}
    for name in names:
        label = _ensure_label(ctx, name)
        if label.name.lower() not in present:
            item.labels.append(label.name)
            present.add(label.name.lower())
    item.updated_at = time.time()
    return ok(_labels_of(ctx, item))


@route("DELETE", "/repos/{owner}/{repo}/issues/{number}/labels/{name}", needs=WRITE_ISSUES)
def remove_label(ctx: Ctx) -> Result:
    item = get_issue_or_pull(ctx)
    name = ctx.params["name"].lower()
    if name not in {n.lower() for n in item.labels}:
        raise ApiError(404, "Label does not exist")
    item.labels = [n for n in item.labels if n.lower() != name]
    return ok(_labels_of(ctx, item))


@route("GET", "/repos/{owner}/{repo}/issues/{number}/comments", needs=READ_ISSUES)
def list_comments(ctx: Ctx) -> Result:
    item = get_issue_or_pull(ctx)
    render = ctx.fake.render
    comments = sorted(
        (c for c in ctx.repo.comments.values() if c.number == item.number), key=lambda c: c.id
    )
    return page_of(ctx, [render.comment(ctx.repo, c) for c in comments])


@route("POST", "/repos/{owner}/{repo}/issues/{number}/comments", needs=WRITE_ISSUES)
def create_comment(ctx: Ctx) -> Result:
    item = get_issue_or_pull(ctx)
    if item.locked:
        raise ApiError(403, "Unable to create comment because issue is locked.")
    body = require_str(ctx.obj(), "body", "IssueComment")
    comment = ctx.fake.create_comment(ctx.repo, item.number, body, ctx.actor, via_app=True)
    return ok(
        ctx.fake.render.comment(ctx.repo, comment),
        201,
        location(ctx, f"/repos/{ctx.repo.full_name}/issues/comments/{comment.id}"),
    )


def _comment(ctx: Ctx) -> Any:
    comment = ctx.repo.comments.get(ctx.number("comment_id"))
    if comment is None:
        raise not_found()
    if comment.number in ctx.repo.issues:
        _require_issues_permission(ctx)
    return comment


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}", needs=READ_ISSUES)
def get_comment(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.comment(ctx.repo, _comment(ctx)))


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", needs=WRITE_ISSUES)
def update_comment(ctx: Ctx) -> Result:
    comment = _comment(ctx)
    ctx.fake.update_comment(comment, require_str(ctx.obj(), "body", "IssueComment"))
    return ok(ctx.fake.render.comment(ctx.repo, comment))


@route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}", needs=WRITE_ISSUES)
def delete_comment(ctx: Ctx) -> Result:
    comment = _comment(ctx)
    del ctx.repo.comments[comment.id]
    return ok(None, 204)


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", needs=READ_ISSUES)
def list_reactions(ctx: Ctx) -> Result:
    comment = _comment(ctx)
    content = ctx.arg("content")
    found = [r for r in comment.reactions if content is None or r.content == content]
    render = ctx.fake.render
    return page_of(ctx, [render.reaction(r) for r in found])


@route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", needs=WRITE_ISSUES)
def create_reaction(ctx: Ctx) -> Result:
    comment = _comment(ctx)
    content = ctx.obj().get("content")
    if content not in REACTIONS:
        raise invalid_field("Reaction", "content")
    for existing in comment.reactions:
        if existing.content == content and existing.user == ctx.actor:
            return ok(ctx.fake.render.reaction(existing), 200)
    reaction = Reaction(
        id=ctx.fake.new_id(), content=content, user=ctx.actor, created_at=time.time()
    )
    comment.reactions.append(reaction)
    return ok(ctx.fake.render.reaction(reaction), 201)


@route(
    "DELETE",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions/{reaction_id}",
    needs=WRITE_ISSUES,
)
def delete_reaction(ctx: Ctx) -> Result:
    comment = _comment(ctx)
    reaction_id = ctx.number("reaction_id")
    before = len(comment.reactions)
    comment.reactions = [r for r in comment.reactions if r.id != reaction_id]
    if len(comment.reactions) == before:
        raise not_found()
    return ok(None, 204)


# -- check runs ------------------------------------------------------------------------------


def _apply_check_fields(
    ctx: Ctx, run: CheckRun, data: Mapping[str, Any], *, creating: bool
) -> None:
    # Applied field by field: an invalid field leaves the ones before it set.
    for key in ("details_url", "external_id"):
        if key in data:
            setattr(run, key, optional_str(data, key, "CheckRun"))
    if "name" in data and not creating:
        run.name = require_str(data, "name", "CheckRun")
    _apply_check_status(run, data)
    output = data.get("output")
    if output is not None:
        _apply_check_output(run, output, creating=creating)
    actions = data.get("actions")
    if actions is not None:
        if not isinstance(actions, list) or len(actions) > 3:
            raise validation_failed("CheckRun", "Only 3 actions are allowed", field="actions")
        run.actions = [dict(a) for a in actions]


def _apply_check_status(run: CheckRun, data: Mapping[str, Any]) -> None:
    """``status``, ``conclusion`` and their times: a conclusion completes the run."""
    now = time.time()
    status = data.get("status")
    conclusion = data.get("conclusion")
    if status is not None and status not in CHECK_STATUSES:
        raise invalid_field("CheckRun", "status")
    if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
        raise invalid_field("CheckRun", "conclusion")
    if status == "completed" and conclusion is None and run.conclusion is None:
        raise ApiError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.')
    if "started_at" in data:
        run.started_at = parse_time(data["started_at"], "started_at")
    if conclusion is not None:
        run.status = "completed"
        run.conclusion = conclusion
    elif status is not None:
        run.status = status
        if status != "completed":
            run.conclusion = None
    if run.status == "completed":
        run.completed_at = (
            parse_time(data["completed_at"], "completed_at") if data.get("completed_at") else now
        )


def _apply_check_output(run: CheckRun, output: Any, *, creating: bool) -> None:
    annotations = _checked_output(output, creating=creating)
    if "title" in output:
        run.title = output["title"]
    run.summary = output.get("summary", run.summary)
    if "text" in output:
        run.text = output["text"]
    run.annotations.extend(dict(a) for a in annotations)


def _checked_output(output: Any, *, creating: bool) -> list[Any]:
    """``output`` checked as GitHub checks it; its annotations."""
    if not isinstance(output, dict):
        raise invalid_field("CheckRun", "output")
    missing = [k for k in (("title", "summary") if creating else ("summary",)) if not output.get(k)]
    if missing:
        names = ", ".join(f'"{k}"' for k in missing)
        verb = "wasn't" if len(missing) == 1 else "weren't"
        raise ApiError(422, f"Invalid request.\n\n{names} {verb} supplied.")
    for key in ("summary", "text"):
        value = output.get(key)
        if isinstance(value, str) and len(value) > CHECK_TEXT_LIMIT:
            raise validation_failed(
                "CheckRun",
                f"Only {CHECK_TEXT_LIMIT} characters are allowed; {len(value)} were supplied.",
                field=f"output.{key}",
            )
    annotations = output.get("annotations") or []
    if not isinstance(annotations, list):
        raise invalid_field("CheckRun", "output.annotations")
    if len(annotations) > ANNOTATIONS_PER_REQUEST:
        raise validation_failed(
            "CheckRun",
            f"Only {ANNOTATIONS_PER_REQUEST} annotations are allowed per request; "
            f"{len(annotations)} were supplied.",
            field="output.annotations",
        )
    for item in annotations:
        _check_annotation(item)
    return annotations


def _check_annotation(item: Any) -> None:
    if not isinstance(item, dict):
        raise invalid_field("CheckRun", "output.annotations")
    for key in ("path", "start_line", "end_line", "annotation_level", "message"):
        if item.get(key) is None:
            raise ApiError(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')
    if item["annotation_level"] not in ANNOTATION_LEVELS:
        raise invalid_field("CheckRun", "output.annotations.annotation_level")
    if not isinstance(item["start_line"], int) or not isinstance(item["end_line"], int):
        raise invalid_field("CheckRun", "output.annotations.start_line")


@route("POST", "/repos/{owner}/{repo}/check-runs", needs=WRITE_CHECKS)
def create_check_run(ctx: Ctx) -> Result:
    data = ctx.obj()
    name = require_str(data, "name", "CheckRun")
    head_sha = require_str(data, "head_sha", "CheckRun")
    resolved = ctx.repo.git.resolve(head_sha) if len(head_sha) == 40 else None
    if resolved != head_sha:
        raise validation_failed(
            "CheckRun", f"No commit found for SHA: {head_sha}", field="head_sha"
        )
    suite = ctx.repo.check_suites.setdefault(head_sha, ctx.fake.new_id())
    run = CheckRun(
        id=ctx.fake.new_id(),
        name=name,
        head_sha=head_sha,
        check_suite_id=suite,
        app_id=ctx.fake.app_id,
        started_at=time.time(),
    )
    _apply_check_fields(ctx, run, data, creating=True)
    run.history.append(dict(data))
    ctx.repo.check_runs[run.id] = run
    return ok(
        ctx.fake.render.check_run(ctx.repo, run),
        201,
        location(ctx, f"/repos/{ctx.repo.full_name}/check-runs/{run.id}"),
    )


def _check_run(ctx: Ctx) -> CheckRun:
    run = ctx.repo.check_runs.get(ctx.number("check_run_id"))
    if run is None:
        raise not_found()
    return run


@route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", needs=READ_CHECKS)
def get_check_run(ctx: Ctx) -> Result:
    return ok(ctx.fake.render.check_run(ctx.repo, _check_run(ctx)))


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", needs=WRITE_CHECKS)
def update_check_run(ctx: Ctx) -> Result:
    run = _check_run(ctx)
    if run.app_id != ctx.fake.app_id:
        raise ApiError(
            403,
            f"Invalid app_id `{ctx.fake.app_id}` - check run can only be modified by its creator",
        )
    data = ctx.obj()
    _apply_check_fields(ctx, run, data, creating=False)
    run.history.append(dict(data))
    return ok(ctx.fake.render.check_run(ctx.repo, run))


@route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", needs=READ_CHECKS)
def list_annotations(ctx: Ctx) -> Result:
    run = _check_run(ctx)
    return page_of(
        ctx, [{"blob_href": "", "title": None, "raw_details": None, **a} for a in run.annotations]
    )


__all__ = ["DOCS", "ROUTES", "handle_rest"]
