"""GitHub clients for the App and its installations, against github.com or GitHub Enterprise
Server (the API base URL is a setting).

Requests retry on 5xx with backoff and wait out primary and secondary rate limits
(``Retry-After``, ``x-ratelimit-reset``), through githubkit's retry chain.

Every installation token is narrowed when it is made: to one repository (the job's) and to the
permissions of what the job does (:mod:`bot.github.scopes`), and GitHub's answer is checked to
grant no more. Tokens are cached per (installation, repository, permissions) and renewed well
before they expire, because a job can outlive the one-hour token; a job's REST client and its
git commands share the one token of its scope.

A githubkit client used without ``with`` opens a new HTTP client, and a new connection, for
every request. A unit of work (a job, a redelivery sweep) therefore takes its clients from a
:class:`ClientPool`, which keeps each client's one connection pool open until the work ends;
tokens are made through one App client whose connection pool lives as long as the App.
"""

from __future__ import annotations

import contextlib
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

from bot.closing import Closing
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


class _KeptTransport(httpx.HTTPTransport):
    """A connection pool shared by the short-lived httpx clients githubkit makes for each
    request outside ``with``: their ``close()`` leaves it open, :meth:`shutdown` closes it.
    httpcore's pool is thread-safe, so threads may share it."""

    def close(self) -> None:
        pass

    def shutdown(self) -> None:
        super().close()


class GitHubApp:
    def __init__(self, credentials: AppCredentials, *, timeout_s: float = 30.0) -> None:
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._tokens: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], InstallationToken]
        self._tokens = {}
        self._lock = threading.Lock()
        # githubkit caches JWTs process-wide by default; keep this App's own.
        self._cache = MemCacheStrategy()
        # Tokens are made from any job's thread, so their client cannot use githubkit's
        # ``with`` (its pool is visible only to the thread that opened it): it shares one
        # transport instead, opened on the first token.
        self._minting_transport: _KeptTransport | None = None
        self._minter: GitHub[AppAuthStrategy] | None = None

    @property
    def api_url(self) -> str:
        return self._credentials.api_url

    def app_client(self) -> GitHub[AppAuthStrategy]:
        return self._client(
            AppAuthStrategy(self._credentials.app_id, self._credentials.private_key)
        )

    def installation_client(self, scope: TokenScope) -> GitHub[ScopedTokenAuthStrategy]:
        """A client acting as the installation within ``scope``; every request takes the
        scope's current token (made on the first request, renewed before it expires).
        Without ``with`` (or a :class:`ClientPool`) each request opens a connection."""
        return self._client(ScopedTokenAuthStrategy(lambda: self._current(scope)))

    def pool(self) -> ClientPool:
        """Clients for one unit of work, each keeping its connections until it ends."""
        return ClientPool(self)

    def close(self) -> None:
        """Close the connections tokens were made on (opened again if one is needed)."""
        with self._lock:
            if self._minting_transport is not None:
                self._minting_transport.shutdown()
            self._minting_transport = None
            self._minter = None

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
        """Called with ``self._lock`` held: one token request at a time on the one client."""
        if self._minter is None:
            # githubkit's namespaces hold the client weakly: the App keeps this reference.
            self._minting_transport = _KeptTransport(trust_env=True)
            self._minter = self._client(
                AppAuthStrategy(self._credentials.app_id, self._credentials.private_key),
                transport=self._minting_transport,
            )
        client = self._minter
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

    def _client(self, auth: A, *, transport: httpx.BaseTransport | None = None) -> GitHub[A]:
        return GitHub(
            auth,
            base_url=self._credentials.api_url.rstrip("/") + "/",
            user_agent=USER_AGENT,
            timeout=self._timeout_s,
            auto_retry=RETRY,
            cache_strategy=self._cache,
            # Re-runs read what they just wrote (the PR they opened): no HTTP cache.
            http_cache=False,
            transport=transport,
        )


class ClientPool(Closing):
    """The REST clients of one unit of work (a job, a redelivery sweep): one per token scope
    and one App client, each inside githubkit's ``with``, so that each keeps one connection
    pool until :meth:`close` (or the end of a ``with`` block on the pool) closes them all,
    on errors too.

    A pool belongs to the thread that opened it: githubkit keeps a client's connections in a
    context variable, so another thread using the same client would open a connection per
    request (correct, only slower). Each job opens its own pool in its own thread.
    """

    def __init__(self, app: GitHubApp) -> None:
        self._app = app
        self._stack = contextlib.ExitStack()
        # Strong references: githubkit's namespaces hold their client weakly.
        self._clients: dict[object, GitHub[Any]] = {}

    def installation(self, scope: TokenScope) -> GitHub[ScopedTokenAuthStrategy]:
        """The client of ``scope``, opened on first use and kept until the pool closes."""
        client = self._clients.get(scope.key)
        if client is None:
            client = self._open(scope.key, self._app.installation_client(scope))
        return cast("GitHub[ScopedTokenAuthStrategy]", client)

    def app(self) -> GitHub[AppAuthStrategy]:
        """A client acting as the App itself (a JWT per request), kept until the pool closes."""
        client = self._clients.get("app")
        if client is None:
            client = self._open("app", self._app.app_client())
        return cast("GitHub[AppAuthStrategy]", client)

    def _open(self, key: object, client: GitHub[Any]) -> GitHub[Any]:
        self._stack.enter_context(client)
        self._clients[key] = client
        return client

    def close(self) -> None:
        self._clients.clear()
        self._stack.close()


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
        with client:  # its connection is closed when this returns
            return int(client.rest.apps.get_repo_installation(owner, name).parsed_data.id)
    except GitHubException as exc:
        raise GitHubError(
            f"{full_name}: the App is not installed there, or the repository does not exist ({exc})"
        ) from exc
