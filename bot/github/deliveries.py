"""Ask GitHub to redeliver the webhook deliveries that never got a 2xx.

GitHub does not redeliver a failed delivery by itself (a 503 from a receiver whose database
is down included): it is sent again only when asked through the App's delivery API. A guid
(``X-GitHub-Delivery``) that failed every attempt within the window is redelivered once; a
guid with any redelivery already is left alone, so a receiver that keeps failing is not
flooded with attempts of the same delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import GitHubException
from githubkit.utils import UNSET

from bot.github.client import GitHubApp, GitHubError

logger = logging.getLogger(__name__)

PER_PAGE = 100
"""GitHub's largest page of deliveries."""


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt at a delivery, as ``GET /app/hook/deliveries`` lists it."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status_code: int
    event: str
    action: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def redeliver_failed(
    app: GitHubApp, *, since: timedelta, limit: int = 500, now: datetime | None = None
) -> tuple[str, ...]:
    """Redeliver every guid delivered within ``since`` that no attempt succeeded for and that
    was not redelivered already, looking at no more than ``limit`` attempts (newest first).
    Returns the guids redelivered."""
    cutoff = (now or datetime.now(UTC)) - since
    # One connection for the whole sweep, closed when it ends (on errors too).
    with app.pool() as pool:
        client = pool.app()
        by_guid: dict[str, list[DeliveryAttempt]] = {}
        for attempt in _recent_attempts(client, cutoff, limit):
            by_guid.setdefault(attempt.guid, []).append(attempt)
        redelivered: list[str] = []
        for guid, attempts in by_guid.items():
            if not any(a.ok or a.redelivery for a in attempts):
                _redeliver(client, attempts)
                redelivered.append(guid)
    return tuple(redelivered)


def _redeliver(client: GitHub[AppAuthStrategy], attempts: list[DeliveryAttempt]) -> None:
    """Ask GitHub to redeliver the newest of one guid's attempts."""
    newest = max(attempts, key=lambda a: (a.delivered_at, a.id))
    try:
        client.rest.apps.redeliver_webhook_delivery(newest.id)
    except GitHubException as exc:
        raise GitHubError(
            f"could not ask GitHub to redeliver delivery {newest.guid} (attempt {newest.id}): {exc}"
        ) from exc
    logger.info(
        "asked GitHub to redeliver %s%s (delivery %s, status %s)",
        newest.event,
        f".{newest.action}" if newest.action else "",
        newest.guid,
        newest.status_code,
    )


def _recent_attempts(
    client: GitHub[AppAuthStrategy], cutoff: datetime, limit: int
) -> Iterator[DeliveryAttempt]:
    """Attempts newest first, until one older than ``cutoff`` or ``limit`` of them."""
    cursor: str | None = None
    seen = 0
    while True:
        try:
            response = client.rest.apps.list_webhook_deliveries(
                per_page=PER_PAGE, cursor=cursor if cursor is not None else UNSET
            )
        except GitHubException as exc:
            raise GitHubError(f"could not list the App's webhook deliveries: {exc}") from exc
        for item in response.parsed_data:
            delivered_at = item.delivered_at
            if delivered_at.tzinfo is None:
                delivered_at = delivered_at.replace(tzinfo=UTC)
            if delivered_at < cutoff or seen >= limit:
                return
            seen += 1
            yield DeliveryAttempt(
                id=item.id,
                guid=item.guid,
                delivered_at=delivered_at,
                redelivery=item.redelivery,
                status_code=item.status_code,
                event=item.event,
                action=item.action,
            )
        cursor = _next_cursor(response.headers.get("link", ""))
        if cursor is None:
            return


def _next_cursor(link: str) -> str | None:
    """The ``cursor`` of the ``rel="next"`` URL of a ``Link`` header."""
    for part in link.split(","):
        url, _, rel = part.partition(";")
        if rel.strip().replace(" ", "") != 'rel="next"':
            continue
        values = parse_qs(urlsplit(url.strip().strip("<>")).query).get("cursor")
        if values:
            return values[0]
    return None
