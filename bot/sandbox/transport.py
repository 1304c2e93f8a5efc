"""The egress policy for the fetches Lockwarden makes itself, with httpx.

Apart from ``egress.py`` because importing httpx (which loads its command line's rich and
pygments when they are installed) costs more than the rest of the sandbox: a compile needs
the sandbox, and only these fetches need httpx.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.sandbox.egress import EgressPolicy, url_refusal


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that refuses every request (redirects included) to a destination
    the egress policy refuses: for the fetches the bot makes itself with repository-chosen
    URLs (index pages for the wheel check, registries of base images)."""

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        refusal = url_refusal(self._policy, str(request.url))
        if refusal is not None:
            raise httpx.ConnectError(f"refused by Lockwarden: {refusal}", request=request)
        return super().handle_request(request)
