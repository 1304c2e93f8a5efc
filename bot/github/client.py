"""GitHub clients for the App and its installations, against github.com or GitHub Enterprise
Server (the API base URL is a setting).

Requests retry on 5xx with backoff and wait out primary and secondary rate limits
(``Retry-After``, ``x-ratelimit-reset``), through githubkit's retry chain. Installation tokens
for git are cached and renewed well before they expire, because a job can outlive the
one-hour token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException
from githubkit.retry import RetryChainDecision, RetryRateLimit, RetryServerError

from bot.errors import LockwardenError

# Wait out up to three rate limits and retry 5xx four times (1, 4, 9, 16 s) per request.
RETRY = RetryChainDecision(RetryRateLimit(max_retry=3), RetryServerError(max_retry=4))
# Renew a token this long before it expires: a clone or push must never start on a token
# that dies mid-transfer.
TOKEN_MARGIN_S = 600.0
USER_AGENT = "lockwarden"
A = TypeVar("A", bound=BaseAuthStrategy)


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


class GitHubApp:
    def __init__(self, credentials: AppCredentials, *, timeout_s: float = 30.0) -> None:
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._tokens: dict[int, InstallationToken] = {}
        self._lock = threading.Lock()
        # githubkit caches JWTs and tokens process-wide by default; keep this App's own.
        self._cache = MemCacheStrategy()

    @property
    def api_url(self) -> str:
        return self._credentials.api_url

    def app_client(self) -> GitHub[AppAuthStrategy]:
        return self._client(
            AppAuthStrategy(self._credentials.app_id, self._credentials.private_key)
        )

    def installation_client(self, installation_id: int) -> GitHub[AppInstallationAuthStrategy]:
        """A client acting as the installation; githubkit renews its token before expiry."""
        return self._client(
            AppInstallationAuthStrategy(
                self._credentials.app_id, self._credentials.private_key, installation_id
            )
        )

    def installation_token(self, installation_id: int, *, now: float | None = None) -> str:
        """A token for git over HTTPS, cached until ``TOKEN_MARGIN_S`` before it expires."""
        moment = time.time() if now is None else now
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - moment > TOKEN_MARGIN_S:
                return cached.token
            try:
                # githubkit's namespaces hold the client weakly: keep a reference.
                client = self.app_client()
                response = client.rest.apps.create_installation_access_token(installation_id)
            except GitHubException as exc:
                raise GitHubError(
                    f"could not get a token for installation {installation_id}: {exc}"
                ) from exc
            data = response.parsed_data
            expires = datetime.fromisoformat(str(data.expires_at).replace("Z", "+00:00"))
            token = InstallationToken(data.token, expires.timestamp())
            self._tokens[installation_id] = token
            return token.token

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


def installation_id_for(app: GitHubApp, full_name: str) -> int:
    """The installation of the App that covers ``owner/name`` (asked as the App itself)."""
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise GitHubError(f"{full_name!r} is not OWNER/NAME")
    client = app.app_client()  # held: githubkit's namespaces keep the client weakly
    try:
        return int(client.rest.apps.get_repo_installation(owner, name).parsed_data.id)
    except GitHubException as exc:
        raise GitHubError(
            f"{full_name}: the App is not installed there, or the repository does not exist ({exc})"
        ) from exc
