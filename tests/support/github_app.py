"""The App under test, wired to the fake GitHub: the receiver (FastAPI test client) and an
in-memory queue whose jobs a :class:`JobRunner` runs when the test says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.github.client import GitHubApp
from bot.jobs.branches import JobOutcome
from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.jobs.runner import JobRunner
from bot.server.app import create_app
from bot.settings import Settings, app_credentials
from tests.support.fake_github import FakeGitHub


class Bot:
    """The receiver and a worker, wired to the fake GitHub."""

    def __init__(self, fake: FakeGitHub, cache: Path, **settings: Any) -> None:
        self.fake = fake
        self.settings = Settings(
            app_id=fake.app_id,
            private_key=SecretStr(fake.private_key_pem),
            github_api_url=fake.api_url,
            webhook_secret=SecretStr(fake.webhook_secret),
            app_slug=fake.app_slug,
            cache_dir=cache,
            builder="none",
            **settings,
        )
        self.queue = InMemoryQueue()
        self.client = TestClient(create_app(self.settings, self.queue))
        self.runner = JobRunner(
            GitHubApp(app_credentials(self.settings)), self.settings, git_base_url=fake.git_url
        )

    def deliver(self, event: str, payload: dict[str, object]) -> list[JobRequest]:
        """Deliver a signed webhook; the jobs it enqueued (taken off the queue)."""
        body = self.fake.encode(payload)
        response = self.client.post(
            "/webhook", content=body, headers=self.fake.webhook_headers(event, body)
        )
        assert response.status_code in (200, 202), response.text
        jobs = []
        while (queued := self.queue.pop()) is not None:
            jobs.append(queued.request)
        return jobs

    def run_all(self, jobs: list[JobRequest]) -> list[JobOutcome]:
        return [self.runner.run(job) for job in jobs]
