"""JSON shapes of GitHub's REST resources, as GitHub (Enterprise Server) sends them.

Field sets follow GitHub's REST description (the schemas githubkit validates against): every
field that the description marks required is present, with the same null-ness.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from tests.support.fake_github._state import (
    JSON,
    PERMISSION_LEVELS,
    CheckRun,
    Delivery,
    Installation,
    Issue,
    IssueComment,
    Label,
    PullRequest,
    Reaction,
    Repo,
)

if TYPE_CHECKING:
    from tests.support.fake_github._fake import FakeGitHub


def iso(ts: float | None) -> str | None:
    """GitHub's timestamp format: whole seconds, UTC, ``Z``."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def node_id(kind: str, number: int) -> str:
    raw = f"0:{kind}{number}".encode()
    return f"{kind}_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}

_ROLE_PERMISSIONS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "write": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "read": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
    "none": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": False},
}


class Renderer:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    @property
    def api(self) -> str:
        return self.fake.api_url

    @property
    def web(self) -> str:
        return self.fake.git_url

    # -- people --------------------------------------------------------------------------

    def user(self, login: str) -> JSON:
        user = self.fake.user(login)
        api_user = f"{self.api}/users/{q(login)}"
        html = (
            f"{self.web}/apps/{self.fake.app_slug}" if user.type == "Bot" else f"{self.web}/{login}"
        )
        return {
            "login": login,
            "id": user.id,
            "node_id": node_id("U" if user.type != "Bot" else "BOT", user.id),
            "avatar_url": f"{self.web}/avatars/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": api_user,
            "html_url": html,
            "followers_url": f"{api_user}/followers",
            "following_url": f"{api_user}/following{{/other_user}}",
            "gists_url": f"{api_user}/gists{{/gist_id}}",
            "starred_url": f"{api_user}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api_user}/subscriptions",
            "organizations_url": f"{api_user}/orgs",
            "repos_url": f"{api_user}/repos",
            "events_url": f"{api_user}/events{{/privacy}}",
            "received_events_url": f"{api_user}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def organization(self, login: str) -> JSON:
        user = self.fake.user(login)
        api_org = f"{self.api}/orgs/{q(login)}"
        return {
            "login": login,
            "id": user.id,
            "node_id": node_id("O", user.id),
            "url": api_org,
            "repos_url": f"{api_org}/repos",
            "events_url": f"{api_org}/events",
            "hooks_url": f"{api_org}/hooks",
            "issues_url": f"{api_org}/issues",
            "members_url": f"{api_org}/members{{/member}}",
            "public_members_url": f"{api_org}/public_members{{/member}}",
            "avatar_url": f"{self.web}/avatars/u/{user.id}?v=4",
            "description": None,
        }

    def team(self, org: str, slug: str) -> JSON:
        team_id = self.fake.team_id(org, slug)
        url = f"{self.api}/organizations/{self.fake.user(org).id}/team/{team_id}"
        return {
            "id": team_id,
            "node_id": node_id("T", team_id),
            "url": url,
            "html_url": f"{self.web}/orgs/{org}/teams/{slug}",
            "name": slug,
            "slug": slug,
            "description": None,
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "members_url": f"{url}/members{{/member}}",
            "repositories_url": f"{url}/repos",
            "type": "organization",
            "parent": None,
        }

    # -- app and installations -----------------------------------------------------------

    def delivery(self, item: Delivery, *, full: bool = False) -> JSON:
        """An entry of ``/app/hook/deliveries``; ``full``: with its request and response."""
        result: JSON = {
            "id": item.id,
            "guid": item.guid,
            "delivered_at": iso(item.delivered_at),
            "redelivery": item.redelivery,
            "duration": round(item.duration, 3),
            "status": item.status_text,
            "status_code": item.status,
            "event": item.event,
            "action": item.action,
            "installation_id": item.installation_id,
            "repository_id": item.repository_id,
            "throttled_at": None,
        }
        if full:
            try:
                payload: Any = json.loads(item.body) if item.body else None
            except ValueError:
                payload = None
            result["url"] = item.url
            result["request"] = {"headers": dict(item.headers), "payload": payload}
            result["response"] = {
                "headers": dict(item.response_headers),
                "payload": item.response_body,
            }
        return result

    def app(self) -> JSON:
        fake = self.fake
        return {
            "id": fake.app_id,
            "client_id": fake.client_id,
            "slug": fake.app_slug,
            "node_id": node_id("A", fake.app_id),
            "owner": self.user(fake.app_owner),
            "name": fake.app_name,
            "description": "Keeps lockfiles fresh.",
            "external_url": f"{self.web}/{fake.app_owner}",
            "html_url": f"{self.web}/apps/{fake.app_slug}",
            "created_at": iso(fake.created_at),
            "updated_at": iso(fake.created_at),
            "permissions": dict(fake.app_permissions),
            "events": list(fake.app_events),
            "installations_count": len(fake.installations),
        }

    def installation(self, inst: Installation) -> JSON:
        fake = self.fake
        account = fake.user(inst.account)
        settings = (
            f"{self.web}/organizations/{inst.account}/settings/installations/{inst.id}"
            if inst.account_type == "Organization"
            else f"{self.web}/settings/installations/{inst.id}"
        )
        return {
            "id": inst.id,
            "client_id": fake.client_id,
            "account": self.user(inst.account),
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": settings,
            "app_id": fake.app_id,
            "app_slug": fake.app_slug,
            "target_id": account.id,
            "target_type": inst.account_type,
            "permissions": dict(inst.permissions),
            "events": list(inst.events),
            "created_at": iso(inst.created_at),
            "updated_at": iso(inst.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    # -- repositories --------------------------------------------------------------------

    def repo(self, repo: Repo, *, full: bool = False, role: str | None = None) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.web}/{repo.full_name}"
        host = urllib.parse.urlsplit(self.web).netloc
        open_count = sum(1 for pr in repo.pulls.values() if pr.state == "open") + sum(
            1 for issue in repo.issues.values() if issue.state == "open"
        )
        data: JSON = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": html,
            "description": None,
            "fork": False,
            "url": api_repo,
            **{key: api_repo + suffix for key, suffix in _REPO_URL_TEMPLATES.items()},
            "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host}:{repo.full_name}.git",
            "clone_url": self.fake.clone_url(repo.full_name),
            "svn_url": html,
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 1,
            "default_branch": repo.default_branch,
            "open_issues_count": open_count,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": iso(repo.pushed_at or repo.created_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.pushed_at or repo.created_at),
            "permissions": dict(_ROLE_PERMISSIONS[role or "admin"]),
            "allow_rebase_merge": True,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
            "allow_update_branch": False,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "temp_clone_token": None,
            "license": None,
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
        }
        if full:
            data["subscribers_count"] = 1
            data["network_count"] = 0
            data["squash_merge_commit_title"] = "COMMIT_OR_PR_TITLE"
            data["squash_merge_commit_message"] = "COMMIT_MESSAGES"
            data["merge_commit_title"] = "MERGE_MESSAGE"
            data["merge_commit_message"] = "PR_TITLE"
            if self.fake.user(repo.owner).type == "Organization":
                data["organization"] = self.user(repo.owner)
        return data

    def repo_for_push(self, repo: Repo) -> JSON:
        """The ``repository`` of a push event: timestamps as unix seconds, ``owner`` with
        ``name``/``email``, ``url`` = the web page (GitHub's own quirks for this event)."""
        data = self.repo(repo)
        owner = data["owner"]
        owner["name"] = repo.owner
        owner["email"] = None
        data["created_at"] = int(repo.created_at)
        data["pushed_at"] = int(repo.pushed_at or repo.created_at)
        data["url"] = data["html_url"]
        data["stargazers"] = 0
        data["master_branch"] = repo.default_branch
        data.pop("permissions", None)
        if self.fake.user(repo.owner).type == "Organization":
            data["organization"] = repo.owner
        return data

    def repo_brief(self, repo: Repo) -> JSON:
        return {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
        }

    # -- git data ------------------------------------------------------------------------

    def commit(self, repo: Repo, sha: str) -> JSON:
        info = repo.git.commit(sha)
        api_repo = f"{self.api}/repos/{repo.full_name}"
        return {
            "sha": info.sha,
            "node_id": node_id("C", int(info.sha[:12], 16)),
            "url": f"{api_repo}/commits/{info.sha}",
            "html_url": f"{self.web}/{repo.full_name}/commit/{info.sha}",
            "comments_url": f"{api_repo}/commits/{info.sha}/comments",
            "commit": {
                "url": f"{api_repo}/git/commits/{info.sha}",
                "author": {
                    "name": info.author.name,
                    "email": info.author.email,
                    "date": iso(info.authored_at),
                },
                "committer": {
                    "name": info.committer.name,
                    "email": info.committer.email,
                    "date": iso(info.committed_at),
                },
                "message": info.message,
                "comment_count": 0,
                "tree": {"sha": info.tree, "url": f"{api_repo}/git/trees/{info.tree}"},
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": None,
            "committer": None,
            "parents": [
                {
                    "sha": parent,
                    "url": f"{api_repo}/commits/{parent}",
                    "html_url": f"{self.web}/{repo.full_name}/commit/{parent}",
                }
                for parent in info.parents
            ],
        }

    def branch(self, repo: Repo, name: str, sha: str, *, full: bool) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        if not full:
            return {
                "name": name,
                "commit": {"sha": sha, "url": f"{api_repo}/commits/{sha}"},
                "protected": False,
            }
        return {
            "name": name,
            "commit": self.commit(repo, sha),
            "_links": {
                "self": f"{api_repo}/branches/{q(name)}",
                "html": f"{self.web}/{repo.full_name}/tree/{name}",
            },
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {
                    "enforcement_level": "off",
                    "contexts": [],
                    "checks": [],
                },
            },
            "protection_url": f"{api_repo}/branches/{q(name)}/protection",
        }

    def git_ref(self, repo: Repo, ref: str, sha: str) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        return {
            "ref": ref,
            "node_id": node_id("REF", abs(hash((repo.id, ref))) % 10**9),
            "url": f"{api_repo}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{api_repo}/git/commits/{sha}"},
        }

    def content_entry(
        self, repo: Repo, ref: str, path: str, kind: str, sha: str, size: int
    ) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        quoted = urllib.parse.quote(path)
        url = f"{api_repo}/contents/{quoted}?ref={urllib.parse.quote(ref, safe='')}"
        git_url = f"{api_repo}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
        html_url = (
            f"{self.web}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{quoted}"
        )
        download = None if kind == "dir" else f"{self.web}/{repo.full_name}/raw/{ref}/{quoted}"
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": download,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    # -- issues and pulls ----------------------------------------------------------------

    def label(self, repo: Repo, label: Label) -> JSON:
        return {
            "id": label.id,
            "node_id": node_id("LA", label.id),
            "url": f"{self.api}/repos/{repo.full_name}/labels/{q(label.name)}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
            "archived_at": None,
            "archived_by": None,
        }

    def author_association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        role = self.fake.role_of(repo, login)
        if role != "none":
            return "MEMBER" if self.fake.user(repo.owner).type == "Organization" else "COLLABORATOR"
        if any(pr.user == login and pr.merged for pr in repo.pulls.values()):
            return "CONTRIBUTOR"
        return "NONE"

    def pull(self, repo: Repo, pr: PullRequest, *, full: bool) -> JSON:
        fake = self.fake
        head_sha, base_sha = fake.pull_shas(repo, pr)
        api_repo = f"{self.api}/repos/{repo.full_name}"
        url = f"{api_repo}/pulls/{pr.number}"
        html = f"{self.web}/{repo.full_name}/pull/{pr.number}"
        issue_url = f"{api_repo}/issues/{pr.number}"
        repo_json = self.repo(repo)
        owner_json = self.user(repo.owner)
        merged_by = self.user(pr.merged_by) if pr.merged_by else None
        data: JSON = {
            "url": url,
            "id": pr.id,
            "node_id": node_id("PR", pr.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{api_repo}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{api_repo}/statuses/{head_sha}",
            "number": pr.number,
            "state": pr.state,
            "locked": pr.locked,
            "title": pr.title,
            "user": self.user(pr.user),
            "body": pr.body,
            "labels": [self.label(repo, repo.labels[name.lower()]) for name in pr.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "merged_at": iso(pr.merged_at),
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self.user(login) for login in pr.requested_reviewers],
            "requested_teams": [self.team(repo.owner, slug) for slug in pr.requested_teams],
            "head": {
                "label": f"{repo.owner}:{pr.head}",
                "ref": pr.head,
                "sha": head_sha,
                "user": owner_json,
                "repo": repo_json,
            },
            "base": {
                "label": f"{repo.owner}:{pr.base}",
                "ref": pr.base,
                "sha": base_sha,
                "user": owner_json,
                "repo": repo_json,
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue_url},
                "comments": {"href": f"{issue_url}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{api_repo}/pulls/comments{{/number}}"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{api_repo}/statuses/{head_sha}"},
            },
            "author_association": self.author_association(repo, pr.user),
            "auto_merge": None,
            "draft": pr.draft,
        }
        if full:
            mergeable, state = fake.mergeability(repo, pr, head_sha, base_sha)
            additions, deletions, changed = (0, 0, 0)
            commits = 0
            if head_sha and base_sha:
                additions, deletions, changed = repo.git.diff_stats(base_sha, head_sha)
                commits = repo.git.count_commits(base_sha, head_sha)
            data.update(
                {
                    "merged": pr.merged,
                    "mergeable": mergeable,
                    "rebaseable": mergeable,
                    "mergeable_state": state,
                    "merged_by": merged_by,
                    "comments": sum(1 for c in repo.comments.values() if c.number == pr.number),
                    "review_comments": 0,
                    "maintainer_can_modify": pr.maintainer_can_modify,
                    "commits": commits,
                    "additions": additions,
                    "deletions": deletions,
                    "changed_files": changed,
                }
            )
        return data

    def pull_minimal(self, repo: Repo, pr: PullRequest) -> JSON:
        head_sha, base_sha = self.fake.pull_shas(repo, pr)
        brief = {"id": repo.id, "url": f"{self.api}/repos/{repo.full_name}", "name": repo.name}
        return {
            "id": pr.id,
            "number": pr.number,
            "url": f"{self.api}/repos/{repo.full_name}/pulls/{pr.number}",
            "head": {"ref": pr.head, "sha": head_sha, "repo": brief},
            "base": {"ref": pr.base, "sha": base_sha, "repo": brief},
        }

    def issue_of_pull(self, repo: Repo, pr: PullRequest) -> JSON:
        """A pull request seen through the issues API (as in ``issue_comment`` events)."""
        api_repo = f"{self.api}/repos/{repo.full_name}"
        issue_url = f"{api_repo}/issues/{pr.number}"
        html = f"{self.web}/{repo.full_name}/pull/{pr.number}"
        comments = sum(1 for c in repo.comments.values() if c.number == pr.number)
        return {
            "url": issue_url,
            "repository_url": api_repo,
            "labels_url": f"{issue_url}/labels{{/name}}",
            "comments_url": f"{issue_url}/comments",
            "events_url": f"{issue_url}/events",
            "html_url": html,
            "id": pr.issue_id,
            "node_id": node_id("I", pr.issue_id),
            "number": pr.number,
            "title": pr.title,
            "user": self.user(pr.user),
            "labels": [self.label(repo, repo.labels[name.lower()]) for name in pr.labels],
            "state": pr.state,
            "locked": pr.locked,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "closed_at": iso(pr.closed_at),
            "author_association": self.author_association(repo, pr.user),
            "active_lock_reason": None,
            "draft": pr.draft,
            "pull_request": {
                "url": f"{api_repo}/pulls/{pr.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": iso(pr.merged_at),
            },
            "body": pr.body,
            "reactions": self._reaction_rollup(f"{issue_url}/reactions", []),
            "timeline_url": f"{issue_url}/timeline",
            "performed_via_github_app": None,
            "state_reason": None,
        }

    def issue(self, repo: Repo, issue: Issue) -> JSON:
        """A plain issue: the issues API's shape without the ``pull_request`` key."""
        api_repo = f"{self.api}/repos/{repo.full_name}"
        issue_url = f"{api_repo}/issues/{issue.number}"
        comments = sum(1 for c in repo.comments.values() if c.number == issue.number)
        return {
            "url": issue_url,
            "repository_url": api_repo,
            "labels_url": f"{issue_url}/labels{{/name}}",
            "comments_url": f"{issue_url}/comments",
            "events_url": f"{issue_url}/events",
            "html_url": f"{self.web}/{repo.full_name}/issues/{issue.number}",
            "id": issue.id,
            "node_id": node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": [self.label(repo, repo.labels[name.lower()]) for name in issue.labels],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": comments,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self.author_association(repo, issue.user),
            "active_lock_reason": None,
            "draft": False,
            "body": issue.body,
            "reactions": self._reaction_rollup(f"{issue_url}/reactions", []),
            "timeline_url": f"{issue_url}/timeline",
            "performed_via_github_app": None,
            "state_reason": "completed" if issue.state == "closed" else None,
        }

    def issue_or_pull(self, repo: Repo, item: Issue | PullRequest) -> JSON:
        """``item`` through the issues API (``GET .../issues/{number}``, ``issue_comment``)."""
        if isinstance(item, PullRequest):
            return self.issue_of_pull(repo, item)
        return self.issue(repo, item)

    def _reaction_rollup(self, url: str, reactions: list[Reaction]) -> JSON:
        counts: dict[str, Any] = {"url": url, "total_count": len(reactions)}
        for content in ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"):
            counts[content] = sum(1 for r in reactions if r.content == content)
        return counts

    def comment(self, repo: Repo, comment: IssueComment) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        url = f"{api_repo}/issues/comments/{comment.id}"
        is_pull = comment.number in repo.pulls
        page = "pull" if is_pull else "issues"
        return {
            "id": comment.id,
            "node_id": node_id("IC", comment.id),
            "url": url,
            "html_url": f"{self.web}/{repo.full_name}/{page}/{comment.number}"
            f"#issuecomment-{comment.id}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "issue_url": f"{api_repo}/issues/{comment.number}",
            "author_association": self.author_association(repo, comment.user),
            "performed_via_github_app": self.app() if comment.via_app else None,
            "reactions": self._reaction_rollup(f"{url}/reactions", comment.reactions),
        }

    def reaction(self, reaction: Reaction) -> JSON:
        return {
            "id": reaction.id,
            "node_id": node_id("REA", reaction.id),
            "user": self.user(reaction.user),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    # -- checks --------------------------------------------------------------------------

    def check_run(self, repo: Repo, run: CheckRun, *, for_webhook: bool = False) -> JSON:
        api_repo = f"{self.api}/repos/{repo.full_name}"
        url = f"{api_repo}/check-runs/{run.id}"
        html = f"{self.web}/{repo.full_name}/runs/{run.id}"
        pulls = [
            self.pull_minimal(repo, pr)
            for pr in repo.pulls.values()
            if pr.state == "open" and self.fake.pull_shas(repo, pr)[0] == run.head_sha
        ]
        suite: JSON = {"id": run.check_suite_id}
        if for_webhook:
            heads = [name for name, sha in repo.git.branches().items() if sha == run.head_sha]
            suite.update(
                {
                    "node_id": node_id("CS", run.check_suite_id),
                    "head_branch": heads[0] if heads else None,
                    "head_sha": run.head_sha,
                    "status": run.status,
                    "conclusion": run.conclusion,
                    "url": f"{api_repo}/check-suites/{run.check_suite_id}",
                    "before": None,
                    "after": run.head_sha,
                    "pull_requests": pulls,
                    "app": self.app(),
                    "created_at": iso(run.started_at),
                    "updated_at": iso(run.completed_at or run.started_at),
                }
            )
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("CR", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id or "",
            "url": url,
            "html_url": html,
            "details_url": run.details_url or html,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": iso(run.started_at),
            "completed_at": iso(run.completed_at),
            "output": {
                "title": run.title,
                "summary": run.summary,
                "text": run.text,
                "annotations_count": len(run.annotations),
                "annotations_url": f"{url}/annotations",
            },
            "check_suite": suite,
            "app": self.app(),
            "pull_requests": pulls,
        }

    # -- collaborators -------------------------------------------------------------------

    def collaborator_permission(self, repo: Repo, login: str) -> JSON:
        role = self.fake.role_of(repo, login)
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        user = self.user(login)
        user["permissions"] = dict(_ROLE_PERMISSIONS[role])
        user["role_name"] = role
        return {"permission": legacy, "role_name": role, "user": user}


def installation_level_ok(granted: str | None, needed: str) -> bool:
    return PERMISSION_LEVELS.get(granted or "none", 0) >= PERMISSION_LEVELS[needed]
