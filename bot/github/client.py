"""GitHub clients for the App and its installations, against github.com or GitHub Enterprise
Server (the API base URL is a setting).

Requests retry on 5xx with backoff and wait out primary and secondary rate limits
(``Retry-After``, ``x-ratelimit-reset``), through githubkit's retry chain.

Every installation token is narrowed when it is made: to one repository (the job's) and to the
permissions of what the job does (:mod:`bot.github.scopes`), and GitHub's answer is checked to
grant no more. Tokens are cached per (installation, repository, permissions) and renewed well
before they expire, because a job can outlive the one-hour token; a job's REST client and its
git commands share the one token of its scope.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed
from githubkit.retry import RetryChainDecision, RetryRateLimit, RetryServerError

from bot.errors import LockwardenError
from bot.github.scopes import Access

if TYPE_CHECKING:
    from githubkit_schemas.latest.types import (
        AppInstallationsInstallationIdAccessTokensPostBodyType as TokenRequest,
    )

# Wait out up to three rate limits and retry 5xx four times (1, 4, 9, 16 s) per request.
RETRY = RetryChainDecision(RetryRateLimit(max_retry=3), RetryServerError(max_retry=4))
# Renew a token this long before it expires: a clone or push must never start on a token
# that dies mid-transfer.
TOKEN_MARGIN_S = 600.0
USER_AGENT = "lockwarden"
A = TypeVar("A", bound=BaseAuthStrategy)

Client: TypeAlias = GitHub[Any]
"""A REST client, as the rest of the bot names it: only ``bot.github`` imports githubkit."""


class GitHubError(LockwardenError):
    code = "github"


@dataclass(frozen=True)
class AppCredentials:
    app_id: int
    private_key: str
    api_url: str = "https://api.github.com"


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: float
    """Unix time."""


@dataclass(frozen=True)
class TokenScope:
    """What one installation token may reach."""

    installation_id: int
    repository: str | None
    """``owner/name``; None only for calls about the installation itself (listing its
    repositories), never for a job's work on a repository."""
    access: Access

    @property
    def key(self) -> tuple[int, str | None, tuple[tuple[str, str], ...]]:
        """The token cache's key: one token per installation, repository and permissions."""
        repository = self.repository.lower() if self.repository is not None else None
        return (self.installation_id, repository, self.access.grants)

    def describe(self) -> str:
        where = self.repository or "every repository of the installation"
        return f"installation {self.installation_id}, {where}, {self.access.describe()}"

    def request_body(self) -> dict[str, Any]:
        """The body of ``POST /app/installations/{id}/access_tokens`` for this scope."""
        body: dict[str, Any] = {"permissions": self.access.as_dict()}
        if self.repository is not None:
            _, name = split_full_name(self.repository)
            # Names, not full names: the installation belongs to one account. Never an empty
            # list, which GitHub reads as "every repository".
            body["repositories"] = [name]
        return body


def split_full_name(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise GitHubError(f"{full_name!r} is not OWNER/NAME")
    return owner, name


class GitHubApp:
    def __init__(self, credentials: AppCredentials, *, timeout_s: float = 30.0) -> None:
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._tokens: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], InstallationToken]
        self._tokens = {}
        self._lock = threading.Lock()
        # githubkit caches JWTs process-wide by default; keep this App's own.
        self._cache = MemCacheStrategy()

    @property
    def api_url(self) -> str:
        return self._credentials.api_url

    def app_client(self) -> GitHub[AppAuthStrategy]:
        return self._client(
            AppAuthStrategy(self._credentials.app_id, self._credentials.private_key)
        )

    def installation_client(self, scope: TokenScope) -> GitHub[ScopedTokenAuthStrategy]:
        """A client acting as the installation within ``scope``; every request takes the
        scope's current token (made on the first request, renewed before it expires)."""
        return self._client(ScopedTokenAuthStrategy(lambda: self._current(scope)))

    def installation_token(self, scope: TokenScope, *, now: float | None = None) -> str:
        """The token of ``scope``, cached until ``TOKEN_MARGIN_S`` before it expires."""
        try:
            return self._current(scope, now=now)
        except GitHubException as exc:
            raise GitHubError(f"could not get a token for {scope.describe()}: {exc}") from exc

    def _current(self, scope: TokenScope, *, now: float | None = None) -> str:
        """Like :meth:`installation_token`, raising githubkit's errors: inside a client's
        request they are what callers catch."""
        moment = time.time() if now is None else now
        with self._lock:
            cached = self._tokens.get(scope.key)
            if cached is not None and cached.expires_at - moment > TOKEN_MARGIN_S:
                return cached.token
            token = self._mint(scope)
            self._tokens[scope.key] = token
            return token.token

    def _mint(self, scope: TokenScope) -> InstallationToken:
        # githubkit's namespaces hold the client weakly: keep a reference.
        client = self.app_client()
        try:
            response = client.rest.apps.create_installation_access_token(
                scope.installation_id, data=cast("TokenRequest", scope.request_body())
            )
        except RequestFailed as exc:
            raise GitHubError(
                f"could not get a token for {scope.describe()}: {_refusal(exc)}"
            ) from exc
        data = response.json()
        _check_grant(scope, data)
        expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        return InstallationToken(str(data["token"]), expires.timestamp())

    def _client(self, auth: A) -> GitHub[A]:
        return GitHub(
            auth,
            base_url=self._credentials.api_url.rstrip("/") + "/",
            user_agent=USER_AGENT,
            timeout=self._timeout_s,
            auto_retry=RETRY,
            cache_strategy=self._cache,
            # Re-runs read what they just wrote (the PR they opened): no HTTP cache.
            http_cache=False,
        )


class _TokenSourceAuth(httpx.Auth):
    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"token {self._source()}"
        yield request


@dataclass(frozen=True)
class ScopedTokenAuthStrategy(BaseAuthStrategy):
    """githubkit auth that asks ``source`` for the token before every request."""

    source: Callable[[], str]

    def get_auth_flow(self, github: Any) -> httpx.Auth:
        return _TokenSourceAuth(self.source)


def _refusal(exc: RequestFailed) -> str:
    """GitHub's reason for refusing a token, and what to do about it."""
    status = exc.response.status_code
    try:
        body = exc.response.json()
    except ValueError:
        body = None
    message = str(body.get("message") or exc) if isinstance(body, dict) else str(exc)
    if status == 422:
        return (
            f"{message} (422): the installation does not cover the repository or does not "
            "grant these permissions; add the repository to the installation, or accept the "
            "App's requested permissions in the installation's settings"
        )
    if status == 404:
        return f"{message} (404): the App is not installed there (any more)"
    return f"{message} ({status})"


def _check_grant(scope: TokenScope, data: Mapping[str, Any]) -> None:
    """GitHub echoes what the token may reach: refuse a token wider than was asked."""
    granted = data.get("permissions") or {}
    if not isinstance(granted, Mapping) or not scope.access.covers(granted):
        raise GitHubError(
            f"GitHub granted {granted} for {scope.describe()}: more than was asked; "
            "the token is not used"
        )
    if scope.repository is None:
        return
    names = [str(r.get("full_name", "")).lower() for r in data.get("repositories") or []]
    if data.get("repository_selection") != "selected" or names != [scope.repository.lower()]:
        raise GitHubError(
            f"GitHub granted repositories {names or 'all'} for {scope.describe()}: not just "
            "the job's repository; the token is not used"
        )


def installation_id_for(app: GitHubApp, full_name: str) -> int:
    """The installation of the App that covers ``owner/name`` (asked as the App itself)."""
    owner, name = split_full_name(full_name)
    client = app.app_client()  # held: githubkit's namespaces keep the client weakly
    try:
        return int(client.rest.apps.get_repo_installation(owner, name).parsed_data.id)
    except GitHubException as exc:
        raise GitHubError(
            f"{full_name}: the App is not installed there, or the repository does not exist ({exc})"
        ) from exc
