"""Redelivering failed webhook deliveries: the fake GitHub sends to the real receiver (served
by uvicorn on 127.0.0.1), whose queue is down for the first deliveries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from bot.cli import _queue
from bot.github import deliveries
from bot.github.client import AppCredentials, GitHubApp, GitHubError
from bot.github.deliveries import redeliver_failed
from bot.jobs.postgres import REDELIVER_TASK_NAME, ProcrastinateQueue
from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.server.app import create_app
from tests.server import make_settings
from tests.support.fake_github import FakeGitHub, Installation

REPO = "acme/svc"
HOUR = timedelta(hours=1)


class DownQueue(InMemoryQueue):
    """Refuses the next ``failures`` enqueues, as a queue whose database is down."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    def enqueue(self, request: JobRequest) -> str | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database is down")
        return super().enqueue(request)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path_factory.mktemp("github")) as github:
        yield github


@pytest.fixture(scope="module")
def installation(fake: FakeGitHub) -> Installation:
    inst = fake.create_installation("acme")
    fake.create_repo(REPO, files={"README.md": "hello\n"}, installation=inst)
    return inst


@pytest.fixture(autouse=True)
def _fresh_deliveries(fake: FakeGitHub) -> None:
    # The fake is shared by the module; each test sees only its own deliveries.
    with fake.lock:
        fake.deliveries.clear()


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))


@pytest.fixture
def queue() -> DownQueue:
    return DownQueue()


@pytest.fixture
def url(fake: FakeGitHub, queue: DownQueue) -> Iterator[str]:
    """The receiver's webhook URL, served by uvicorn in a thread."""
    web = create_app(make_settings(webhook_secret=SecretStr(fake.webhook_secret)), queue)
    server = uvicorn.Server(uvicorn.Config(web, log_config=None, access_log=False, lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def send(fake: FakeGitHub, url: str, installation: Installation, **kwargs: Any) -> str:
    """Deliver ``installation.created`` (one onboard job); returns its guid."""
    payload = fake.payload("installation", "created", installation=installation)
    fake.deliver(url, "installation", payload, **kwargs)
    return fake.deliveries[-1].guid


def attempts(fake: FakeGitHub, guid: str) -> list[tuple[int, bool]]:
    with fake.lock:
        return [(d.status, d.redelivery) for d in fake.deliveries if d.guid == guid]


def test_a_delivery_answered_503_is_redelivered_and_accepted(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, queue: DownQueue, url: str
) -> None:
    queue.failures = 1
    guid = send(fake, url, installation)
    assert attempts(fake, guid) == [(503, False)]
    assert not queue.jobs

    assert redeliver_failed(app, since=HOUR) == (guid,)

    assert attempts(fake, guid) == [(503, False), (202, True)]
    (job,) = queue.jobs
    assert (job.request.kind, job.request.repo, job.request.delivery_id) == (
        "onboard",
        REPO,
        guid,
    )
    assert redeliver_failed(app, since=HOUR) == ()  # it succeeded now
    assert len(queue.jobs) == 1


def test_a_delivery_that_succeeded_is_not_redelivered(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, queue: DownQueue, url: str
) -> None:
    guid = send(fake, url, installation)
    assert redeliver_failed(app, since=HOUR) == ()
    assert attempts(fake, guid) == [(202, False)]
    assert len(queue.jobs) == 1


def test_a_guid_redelivered_once_is_not_redelivered_again(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, queue: DownQueue, url: str
) -> None:
    queue.failures = 2
    guid = send(fake, url, installation)
    assert redeliver_failed(app, since=HOUR) == (guid,)
    assert attempts(fake, guid) == [(503, False), (503, True)]
    assert redeliver_failed(app, since=HOUR) == ()
    assert attempts(fake, guid) == [(503, False), (503, True)]
    assert not queue.jobs


def test_deliveries_older_than_the_window_are_left_alone(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, queue: DownQueue, url: str
) -> None:
    queue.failures = 2
    old = send(fake, url, installation, delivered_at=time.time() - 2 * 3600)
    recent = send(fake, url, installation)
    assert redeliver_failed(app, since=HOUR) == (recent,)
    assert attempts(fake, old) == [(503, False)]
    assert len(queue.jobs) == 1


def test_every_page_of_deliveries_is_read(
    fake: FakeGitHub,
    installation: Installation,
    app: GitHubApp,
    queue: DownQueue,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deliveries, "PER_PAGE", 2)
    queue.failures = 5
    guids = [send(fake, url, installation) for _ in range(5)]
    fake.requests.clear()

    assert sorted(redeliver_failed(app, since=HOUR)) == sorted(guids)

    listed = fake.requests_to("GET", r"/app/hook/deliveries$")
    assert len(listed) == 3  # 2 + 2 + 1
    assert all(attempts(fake, guid)[-1] == (202, True) for guid in guids)
    assert len(queue.jobs) == 5


def test_the_limit_bounds_the_attempts_looked_at(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, queue: DownQueue, url: str
) -> None:
    queue.failures = 3
    guids = [send(fake, url, installation) for _ in range(3)]
    assert redeliver_failed(app, since=HOUR, limit=2) == (guids[2], guids[1])


def test_a_refused_request_is_a_github_error(fake: FakeGitHub) -> None:
    stranger = GitHubApp(AppCredentials(fake.app_id + 1, fake.private_key_pem, fake.api_url))
    with pytest.raises(GitHubError, match="could not list the App's webhook deliveries"):
        redeliver_failed(stranger, since=HOUR)


# -- the periodic task ------------------------------------------------------------------------


def test_the_periodic_task_is_registered_only_with_a_redeliver_callable() -> None:
    url = "postgresql://127.0.0.1:1/none"  # never connected to: the pool opens on first use
    with ProcrastinateQueue(url) as without:
        assert without.redeliver_task is None
        names = {name for name, _ in without.app.periodic_registry.periodic_tasks}
        assert REDELIVER_TASK_NAME not in names
    with ProcrastinateQueue(url, redeliver=lambda: None, redeliver_cron="*/2 * * * *") as given:
        tasks = given.app.periodic_registry.periodic_tasks
        periodic = tasks[(REDELIVER_TASK_NAME, "redeliver")]
        assert periodic.cron == "*/2 * * * *"
        assert periodic.task.queue == "lockwarden-scheduler"


def test_the_cli_queue_redelivers_only_with_the_app_and_a_window(app: GitHubApp) -> None:
    url = SecretStr("postgresql://127.0.0.1:1/none")
    with _queue(make_settings(database_url=url), app) as queue:
        assert queue.redeliver_task is not None
    with _queue(make_settings(database_url=url, redeliver_window_s=0), app) as queue:
        assert queue.redeliver_task is None
    with _queue(make_settings(database_url=url)) as queue:
        assert queue.redeliver_task is None
