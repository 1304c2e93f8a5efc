"""Webhook receiver benchmark: ``POST /webhook`` under a steady stream of signed deliveries.

Run from the repository root (it is not a test and pytest never collects it)::

    python -m tests.benchmarks.webhook [--rate R] [--duration S] [--clients N]
        [--closed-duration S] [--client httpx|raw] [--stages] [--out FILE.json]

The receiver is the production one, ``create_app(settings, InMemoryQueue())`` served by real
uvicorn on a free loopback port, in a child process so that the load generator does not share
its interpreter lock. The load is a fixed, interleaved mix of deliveries, each with its own
``X-GitHub-Delivery`` and a valid ``X-Hub-Signature-256``:

* 16 in 20: ``push`` to the default branch modifying ``requirements/serve.in`` (one
  ``refresh`` job each);
* 1 in 20 each: ``issue_comment.created`` with a ``/lockwarden`` command (one ``command``
  job), ``issue_comment.created`` without one (ignored), ``pull_request.closed`` of a
  merged ``lockwarden/...`` branch (one ``cleanup`` job), ``pull_request.closed`` of another
  branch (ignored).

The bodies are GitHub's example payloads from ``../shared/realdata/webhooks`` (octokit/webhooks)
with the fields above set, re-serialised compactly as GitHub sends them; when that folder is
absent, payloads of the same shape are synthesised.

Phases:

1. **warm-up**: a few hundred deliveries, not measured.
2. **open loop**: deliveries at a fixed rate (default 200/s for 30 s). Each has a planned send
   time, and its latency runs from that time to the end of the answer, so a stall of the server
   (or of the load generator) is counted in full for every delivery it delays, not only the one
   in flight (no coordinated omission).
3. **closed loop**: N clients (default 16) send back to back for a few seconds: the most the
   receiver answers per second.

The load generator is httpx (one ``AsyncClient`` with one keep-alive connection per worker
coroutine) or, with ``--client raw``, a minimal HTTP/1.1 client on asyncio streams that needs
about a third of httpx's CPU per request; on a machine of few cores, shared with the receiver,
that difference shows in the latencies. How late the load generator sent each delivery (its
send lag) is reported, with a warning when it is large enough to matter.

After each phase the ``/metrics`` counters are compared with the answers: every accepted
delivery is counted once, every accepted ``push`` enqueued exactly one ``refresh`` job, no
delivery was a duplicate or failed, and the job ids answered are all distinct.

``--stages`` instruments the served app (timing wrappers around the receiver's steps, the
thread hop and the ASGI call, and an event-loop lag probe) and prints where the server's time
goes during the open loop.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import hashlib
import hmac
import json
import math
import os
import platform
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot import __version__ as lockwarden_version

REPO_ROOT = Path(__file__).resolve().parents[2]
REALDATA = REPO_ROOT.parent / "shared" / "realdata" / "webhooks"
HOST = "127.0.0.1"
SECRET_ENV = "WEBHOOK_BENCH_SECRET"
"""How the child process gets the signing secret (never on its command line)."""
APP_SLUG = "lockwarden"
OWNER = "bench-org"
REPOSITORIES = 8
"""Deliveries go round-robin to this many repositories of one installation."""
INSTALLATION_ID = 4242
DEFAULT_BRANCH = "main"
SPEC_PATH = "requirements/serve.in"
TOKEN = "b" * 40
"""Placeholder in the body templates, replaced by a unique 40-hex value per delivery."""
REPO_TOKEN = "placeholder-owner/placeholder-repository"
COMMENT_ID_TOKEN = "987654321987"
"""Stands for the comment id in a template; each delivery gets ``COMMENT_ID_BASE + n``."""
COMMENT_ID_BASE = 100_000_000_000
"""Placeholder for the repository's full name, replaced per delivery."""

DEFAULT_RATE = 200.0
DEFAULT_DURATION_S = 30.0
DEFAULT_CLIENTS = 16
DEFAULT_CLOSED_DURATION_S = 10.0
WARMUP_DELIVERIES = 300
WARMUP_CLIENTS = 4
WARMUP_TIMEOUT_S = 60.0
OPEN_LOOP_WORKERS = 32
"""Deliveries in flight at most in the open loop (each worker has its own connection)."""
REQUEST_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 30.0
"""How long the open loop waits for answers after its last planned send."""
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
MAX_OPEN_LOOP_DELIVERIES = 200_000
MAX_CLOSED_LOOP_DELIVERIES = 200_000
LAG_PROBE_INTERVAL_S = 0.005
SEND_LAG_WARN_MS = 5.0
"""Above this p99 send lag the load generator, not only the receiver, shapes the latencies."""

TARGET_RATE = 200.0
TARGET_DURATION_S = 30.0
P99_TARGET_MS = 50.0

Outcome = Literal["queued", "ignored"]
T = TypeVar("T")


class BenchmarkError(Exception):
    """The server did not start, or answered so that the figures would be meaningless."""


# ---------------------------------------------------------------------------------------------
# Deliveries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One sort of delivery in the mix."""

    name: str
    event: str
    expect: Outcome
    job_kind: str | None
    """The job an accepted delivery of this kind enqueues (one), or None when it is ignored."""
    template: bytes
    """The JSON body, with :data:`TOKEN` where each delivery puts its own value."""
    source: str


@dataclass(frozen=True)
class Delivery:
    kind: Kind
    body: bytes
    headers: Mapping[str, str]


def load_example(event: str, name: str) -> dict[str, Any] | None:
    path = REALDATA / event / name
    if not path.is_file():
        return None
    loaded = json.loads(path.read_text("utf-8"))
    return loaded if isinstance(loaded, dict) else None


USER_LINKS = ("followers", "following", "gists", "starred", "subscriptions", "orgs", "repos")


def synthetic_user(login: str, user_type: str = "User") -> dict[str, Any]:
    api = f"https://api.github.com/users/{login}"
    user: dict[str, Any] = {"login": login, "id": 21031067, "node_id": "MDQ6VXNlcjIxMDMxMDY3"}
    user |= {f"{name}_url": f"{api}/{name}" for name in USER_LINKS}
    user |= {"url": api, "html_url": f"https://github.com/{login}", "type": user_type}
    return user | {"site_admin": False}


def synthetic_repository(full_name: str) -> dict[str, Any]:
    """A repository as webhook payloads carry it: mostly API URLs (~3 KB)."""
    api = f"https://api.github.com/repos/{full_name}"
    names = (
        "forks keys collaborators teams hooks issue_events events assignees branches tags blobs "
        "git_tags git_refs trees statuses languages stargazers contributors subscribers "
        "subscription commits git_commits comments issue_comment contents compare merges archive "
        "downloads issues pulls milestones notifications labels releases deployments"
    )
    repository: dict[str, Any] = {"id": 186853002, "name": full_name.split("/")[1]}
    repository |= {"full_name": full_name, "private": False, "fork": False, "url": api}
    repository["owner"] = synthetic_user(full_name.split("/")[0], "Organization")
    repository |= {f"{name}_url": f"{api}/{name}{{/id}}" for name in names.split()}
    repository |= {
        "html_url": f"https://github.com/{full_name}",
        "clone_url": f"https://github.com/{full_name}.git",
        "created_at": "2019-05-15T15:19:25Z",
        "pushed_at": "2019-05-15T15:20:57Z",
        "default_branch": DEFAULT_BRANCH,
        "visibility": "public",
    }
    return repository


def _compact(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def push_kind() -> Kind:
    """One commit pushed to the default branch, modifying ``requirements/serve.in``."""
    example = load_example("push", "with-new-branch.payload.json")
    source = "octokit push/with-new-branch" if example is not None else "synthesised"
    payload = example or {
        "pusher": {"name": "Codertocat", "email": "codertocat@example.com"},
        "sender": synthetic_user("Codertocat"),
    }
    payload["repository"] = payload.get("repository") or synthetic_repository(REPO_TOKEN)
    payload["repository"].update(
        full_name=REPO_TOKEN, name=REPO_TOKEN.split("/")[1], default_branch=DEFAULT_BRANCH
    )
    commits = payload.get("commits") or [{}]
    commit = dict(commits[0])
    commit.update(
        id=TOKEN,
        distinct=True,
        message="Raise the serving stack's FastAPI floor",
        timestamp="2024-05-15T15:19:25Z",
        url=f"https://github.com/{REPO_TOKEN}/commit/{TOKEN}",
        added=[],
        removed=[],
        modified=[SPEC_PATH],
    )
    commit.setdefault("author", {"name": "Codertocat", "email": "codertocat@example.com"})
    payload.update(
        ref=f"refs/heads/{DEFAULT_BRANCH}",
        before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        after=TOKEN,
        created=False,
        deleted=False,
        forced=False,
        compare=f"https://github.com/{REPO_TOKEN}/compare/6113728f27ae...{TOKEN}",
        commits=[commit],
        head_commit=commit,
        installation={"id": INSTALLATION_ID},
    )
    return Kind("push", "push", "queued", "refresh", _compact(payload), source)


def comment_kinds() -> tuple[Kind, Kind]:
    """A comment with a ``/lockwarden`` command line (a ``command`` job), and one without."""
    example = load_example("issue_comment", "created.with-installation.payload.json")
    source = "octokit issue_comment/created.with-installation" if example else "synthesised"
    user = synthetic_user("Codertocat")
    payload = example or {
        "action": "created",
        "issue": {"number": 1, "title": "Bump the serve lock", "user": user, "state": "open"},
        "comment": {"id": 492700400, "user": user, "author_association": "OWNER"},
        "repository": synthetic_repository(REPO_TOKEN),
        "sender": user,
    }
    payload["repository"].update(full_name=REPO_TOKEN, default_branch=DEFAULT_BRANCH)
    payload["installation"] = {"id": INSTALLATION_ID}
    # Each delivery is another comment (its own id): a command runs once per comment, so
    # the same comment delivered again is rightly answered "duplicate".
    payload["comment"].update(
        id=int(COMMENT_ID_TOKEN),
        node_id=TOKEN,
        body="Looks good.\r\n\r\n/lockwarden refresh serve\r\n",
    )
    command = _compact(payload)
    payload["comment"]["body"] = "Thanks, the new serve lock looks right to me."
    return (
        Kind("comment, command", "issue_comment", "queued", "command", command, source),
        Kind("comment, plain", "issue_comment", "ignored", None, _compact(payload), source),
    )


def pull_request_kinds() -> tuple[Kind, Kind]:
    """A merged pull request of a ``lockwarden/`` branch (a ``cleanup`` job), and another."""
    example = load_example("pull_request", "closed.payload.json")
    source = "octokit pull_request/closed" if example is not None else "synthesised"
    repository = synthetic_repository(REPO_TOKEN)
    user = synthetic_user("Codertocat")
    payload = example or {
        "action": "closed",
        "number": 2,
        "pull_request": {
            "number": 2,
            "state": "closed",
            "title": "Update the README with new information.",
            "user": user,
            "head": {"ref": "changes", "repo": copy.deepcopy(repository), "user": user},
            "base": {"ref": DEFAULT_BRANCH, "repo": copy.deepcopy(repository), "user": user},
        },
        "repository": repository,
        "sender": user,
    }
    pull = payload["pull_request"]
    for repo in (payload["repository"], pull["head"]["repo"], pull["base"]["repo"]):
        repo.update(full_name=REPO_TOKEN, default_branch=DEFAULT_BRANCH)
    payload["installation"] = {"id": INSTALLATION_ID}
    pull.update(merged=False, merged_at=None, merge_commit_sha=None)
    pull["head"].update(ref="changes", sha=TOKEN)
    pull["base"]["ref"] = DEFAULT_BRANCH
    other = _compact(payload)
    pull.update(merged=True, merged_at="2024-05-15T15:30:00Z", merge_commit_sha=TOKEN)
    pull["head"]["ref"] = "lockwarden/refresh-serve"
    return (
        Kind(
            "PR closed, lockwarden/", "pull_request", "queued", "cleanup", _compact(payload), source
        ),
        Kind("PR closed, other", "pull_request", "ignored", None, other, source),
    )


def make_kinds() -> tuple[Kind, ...]:
    push = push_kind()
    command, plain = comment_kinds()
    cleanup, other = pull_request_kinds()
    return (push, command, plain, cleanup, other)


def mix_pattern(kinds: Sequence[Kind]) -> tuple[Kind, ...]:
    """One cycle of 20 deliveries: pushes, with the four others spread evenly among them."""
    push, command, plain, cleanup, other = kinds
    pattern = [push] * 20
    for slot, kind in zip((4, 9, 14, 19), (command, cleanup, plain, other), strict=True):
        pattern[slot] = kind
    return tuple(pattern)


class DeliverySource:
    """Signed deliveries in the mix's order, each with its own delivery id, commit or node id
    (a 40-hex token) and, round-robin, one of :data:`REPOSITORIES` repositories."""

    def __init__(self, kinds: Sequence[Kind], secret: bytes) -> None:
        self._pattern = mix_pattern(kinds)
        self._secret = secret
        self._salt = secrets.token_hex(8)
        self.made = 0

    def next(self) -> Delivery:
        index = self.made
        self.made += 1
        kind = self._pattern[index % len(self._pattern)]
        token = hashlib.sha1(f"{self._salt}:{index}".encode(), usedforsecurity=False).hexdigest()
        repo = f"{OWNER}/service-{index % REPOSITORIES:02d}"
        body = kind.template.replace(TOKEN.encode(), token.encode())
        body = body.replace(REPO_TOKEN.encode(), repo.encode())
        body = body.replace(COMMENT_ID_TOKEN.encode(), str(COMMENT_ID_BASE + index).encode())
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/benchmark",
            "X-GitHub-Event": kind.event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        return Delivery(kind, body, headers)


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    kind: Kind
    latency_s: float
    status: int | None
    """None: no answer (the exception is in ``error``)."""
    outcome: str | None
    """The ``status`` field of the answer."""
    jobs: tuple[str, ...]
    error: str | None


class SendError(Exception):
    """No answer: the text says why (``timeout``, ``exception ConnectError``...)."""


class HttpxSender:
    """An httpx client of one keep-alive connection (one per worker coroutine)."""

    def __init__(self, base_url: str, context: ssl.SSLContext) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            verify=context,
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,
        )

    async def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            response = await self._client.post("/webhook", content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SendError(f"timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise SendError(f"exception {type(exc).__name__}") from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class RawSender:
    """A minimal HTTP/1.1 client over one keep-alive asyncio connection: the request written
    in one piece, the answer read by its ``Content-Length``. It costs the load generator a
    fraction of httpx's CPU per request, which matters when both share a few cores."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(body, headers), REQUEST_TIMEOUT_S)
        except TimeoutError as exc:
            await self.aclose()
            raise SendError("timeout") from exc
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.aclose()
            raise SendError(f"exception {type(exc).__name__}") from exc

    async def _exchange(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(HOST, self._port)
        reader, writer = self._streams
        lines = ["POST /webhook HTTP/1.1", f"Host: {HOST}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        status_line = await reader.readline()
        parts = status_line.split(maxsplit=2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        length = None
        close = False
        for _ in range(100):
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            raise ValueError("an answer without Content-Length")
        content = await reader.readexactly(length)
        if close:
            await self.aclose()
        return int(parts[1]), content

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


Sender = HttpxSender | RawSender
ClientKind = Literal["httpx", "raw"]
CLIENT_KINDS: tuple[ClientKind, ...] = ("httpx", "raw")


@asynccontextmanager
async def connections(
    client: ClientKind, server: Server, count: int
) -> AsyncIterator[list[Sender]]:
    """``count`` senders of one keep-alive connection each, one per worker coroutine.

    With httpx, one client per worker rather than one shared pool: httpcore's pool scans every
    connection it holds several times per request, which with a few dozen connections costs
    the load generator more CPU than the request itself."""
    senders: list[Sender] = []
    if client == "httpx":
        context = ssl.create_default_context()  # one for all: each costs ~30 ms to make
        senders += [HttpxSender(server.base_url, context) for _ in range(count)]
    else:
        senders += [RawSender(server.port) for _ in range(count)]
    try:
        yield senders
    finally:
        for sender in senders:
            await sender.aclose()


async def send(
    sender: Sender, delivery: Delivery, planned: float, clock: Callable[[], float]
) -> Result:
    kind = delivery.kind
    try:
        status, content = await sender.post(delivery.body, delivery.headers)
    except SendError as exc:
        return Result(kind, clock() - planned, None, None, (), str(exc))
    latency = clock() - planned
    try:
        answer = json.loads(content)
    except ValueError:
        answer = {}
    outcome = answer.get("status") if isinstance(answer, dict) else None
    jobs = answer.get("jobs") if isinstance(answer, dict) else None
    job_ids = tuple(str(j) for j in jobs) if isinstance(jobs, list) else ()
    error = None
    if not 200 <= status < 300:
        error = f"HTTP {status} {outcome or ''}".rstrip()
    elif outcome != kind.expect:
        error = f"HTTP {status} {outcome} (expected {kind.expect})"
    elif kind.expect == "queued" and len(job_ids) != 1:
        error = f"{len(job_ids)} jobs answered (expected 1)"
    return Result(kind, latency, status, outcome, job_ids, error)


def fast_httpcore_import() -> None:
    """httpcore imports ``sniffio`` for every request; when it is not installed, each failed
    import searches the whole ``sys.path`` again (~0.5 ms of the load generator's CPU per
    request). Marking it absent makes the import fail at once, and httpcore then assumes
    asyncio, which is what the load generator runs on."""
    if "sniffio" not in sys.modules and find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


@dataclass
class Phase:
    name: str
    results: list[Result] = field(default_factory=list)
    elapsed_s: float = 0.0
    """From the start of the phase to its last answer."""
    send_span_s: float = 0.0
    """Open loop: from the first planned send to the last actual one."""
    planned: int = 0
    """Deliveries the phase meant to send (open loop) or started (closed loop)."""
    unfinished: int = 0
    lag_s: list[float] = field(default_factory=list)
    """Open loop: how late the load generator sent each delivery (part of its latency)."""
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    wall_start: float = 0.0
    wall_end: float = 0.0

    @property
    def errors(self) -> Counter[str]:
        found = Counter(r.error for r in self.results if r.error is not None)
        if self.unfinished:
            found["no answer before the phase's time limit"] += self.unfinished
        return found

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.error is None]

    async def run(self, workers: Sequence[Awaitable[None]], timeout_s: float) -> None:
        """Run ``workers`` to their end, or cancel them after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        self.wall_start, cpu, started = time.time(), time.process_time(), loop.time()
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*workers), timeout=timeout_s)
        self.unfinished = self.planned - len(self.results)
        self.elapsed_s = loop.time() - started
        self.client_cpu_s = time.process_time() - cpu
        self.wall_end = time.time()


async def open_loop(
    clients: Sequence[Sender], source: DeliverySource, rate: float, duration_s: float
) -> Phase:
    """Delivery ``i`` is due at ``start + i / rate``; a free worker takes the next one due,
    waits for its time and sends it. When every worker is busy the next delivery goes late,
    and its latency, counted from when it was due, shows it."""
    loop = asyncio.get_running_loop()
    count = min(MAX_OPEN_LOOP_DELIVERIES, max(1, round(rate * duration_s)))
    phase = Phase("open loop", planned=count)
    due = iter(range(count))
    start = loop.time() + 0.05

    async def worker(client: Sender) -> None:
        for index in due:
            delivery = source.next()
            planned = start + index / rate
            delay = planned - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = loop.time()
            phase.lag_s.append(sent - planned)
            phase.send_span_s = max(phase.send_span_s, sent - start)
            phase.results.append(await send(client, delivery, planned, loop.time))

    await phase.run([worker(c) for c in clients], duration_s + DRAIN_TIMEOUT_S)
    return phase


async def closed_loop(
    clients: Sequence[Sender],
    source: DeliverySource,
    duration_s: float,
    name: str,
    limit: int,
) -> Phase:
    """Each worker sends its next delivery as soon as the previous one is answered, until
    ``duration_s`` is over or ``limit`` deliveries were sent; latency runs from each send."""
    loop = asyncio.get_running_loop()
    phase = Phase(name)
    end = loop.time() + duration_s

    async def worker(client: Sender) -> None:
        while loop.time() < end and phase.planned < limit:
            phase.planned += 1
            delivery = source.next()
            phase.results.append(await send(client, delivery, loop.time(), loop.time))

    await phase.run([worker(c) for c in clients], duration_s + REQUEST_TIMEOUT_S + 5)
    return phase


# ---------------------------------------------------------------------------------------------
# The server, in a child process
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    stages_file: Path | None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_s(self) -> float | None:
        """User + system CPU time of the server process so far (Linux only)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def child_env(secret: str) -> dict[str, str]:
    """This environment without ``LOCKWARDEN_*`` (the settings under test are explicit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWARDEN_")}
    env[SECRET_ENV] = secret
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running_server(secret: str, *, stages: bool, lifetime_s: float) -> Iterator[Server]:
    """The receiver on a free port, healthy; stopped (and its scratch files removed) after."""
    with tempfile.TemporaryDirectory(prefix="lockwarden-webhook-bench-") as scratch:
        server = None
        try:
            for attempt in range(3):
                server = start_server(Path(scratch), attempt, secret, stages, lifetime_s)
                if wait_healthy(server):
                    break
                stop_server(server)
                server = None
            if server is None:
                raise BenchmarkError("the receiver did not start on any of 3 ports")
            yield server
        finally:
            if server is not None:
                stop_server(server)


def start_server(
    scratch: Path, attempt: int, secret: str, stages: bool, lifetime_s: float
) -> Server:
    port = free_port()
    log = scratch / f"server-{attempt}.log"
    stages_file = scratch / "stages.json" if stages else None
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.webhook",
        "--serve",
        str(port),
        "--serve-lifetime",
        f"{lifetime_s:.0f}",
    ]
    if stages_file is not None:
        command += ["--stages-file", str(stages_file)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=child_env(secret),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, log, stages_file)


def wait_healthy(server: Server) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=server.base_url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                print(
                    f"  the receiver exited ({server.process.returncode}) while starting:\n"
                    f"{server.log_tail()}",
                    file=sys.stderr,
                )
                return False
            try:
                if client.get("/healthz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise BenchmarkError(
        f"the receiver did not answer /healthz within {STARTUP_TIMEOUT_S:.0f} s:\n"
        f"{server.log_tail()}"
    )


def stop_server(server: Server) -> None:
    """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it does not exit in time."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def serve(port: int, lifetime_s: float, stages_file: Path | None) -> int:
    """The child process: the production app under uvicorn, until SIGINT or ``lifetime_s``."""
    import uvicorn
    from pydantic import SecretStr

    from bot.jobs.queue import InMemoryQueue
    from bot.server.app import create_app
    from bot.settings import Settings

    settings = Settings(webhook_secret=SecretStr(os.environ[SECRET_ENV]), app_slug=APP_SLUG)
    app = create_app(settings, InMemoryQueue())
    stages = StageClock(lifetime_s) if stages_file is not None else None
    asgi: Any = app if stages is None else stages.instrument(app)
    # A watchdog: the server never outlives the benchmark by more than its planned run.
    watchdog = threading.Timer(lifetime_s, os.kill, args=(os.getpid(), signal.SIGINT))
    watchdog.daemon = True
    watchdog.start()
    try:
        uvicorn.run(asgi, host=HOST, port=port, log_level="warning")
    finally:
        watchdog.cancel()
        if stages is not None and stages_file is not None:
            stages.write(stages_file)
    return 0


# ---------------------------------------------------------------------------------------------
# --stages: timing wrappers in the server process
# ---------------------------------------------------------------------------------------------

_RETURNED: ContextVar[float | None] = ContextVar("_RETURNED", default=None)
"""When the current request's ``process()`` call came back to the event loop."""

STAGE_ORDER = (
    "ASGI call -> last body byte sent",
    "  read the body",
    "  wait for a worker thread",
    "  process() in the worker thread",
    "    signature check",
    "    JSON parse",
    "    route + validate (pydantic) + decide",
    "    enqueue (InMemoryQueue)",
    "  back on the event loop after process()",
    "  metrics + JSON answer -> response start",
    "event-loop lag (5 ms sleep overshoot)",
)


class StageClock:
    """Durations of the receiver's steps, each stamped with the wall time it ended (so that the
    parent keeps only the open loop's), written as JSON when the server stops."""

    def __init__(self, lifetime_s: float) -> None:
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._probe: asyncio.Task[None] | None = None

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.samples.setdefault(stage, []).append((time.time(), seconds))

    def timed(self, stage: str, func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return wrapper

    def instrument(self, app: Any) -> Callable[..., Awaitable[None]]:
        import anyio.to_thread

        from bot.server import webhook

        receiver = app.state.receiver
        router = receiver._router
        for owner, attr in ((receiver, "_verify"), (receiver, "_enqueue"), (router, "dispatch")):
            if not callable(getattr(owner, attr, None)):
                raise BenchmarkError(f"cannot instrument {type(owner).__name__}.{attr}")
        setattr(receiver, "_verify", self.timed(STAGE_ORDER[4], receiver._verify))  # noqa: B010
        setattr(webhook, "_parse_json", self.timed(STAGE_ORDER[5], webhook._parse_json))  # noqa: B010
        setattr(router, "dispatch", self.timed(STAGE_ORDER[6], router.dispatch))  # noqa: B010
        setattr(receiver, "_enqueue", self.timed(STAGE_ORDER[7], receiver._enqueue))  # noqa: B010

        original_run_sync = anyio.to_thread.run_sync

        async def run_sync(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
            called = time.perf_counter()
            marks: list[float] = []

            def inner(*inner_args: Any) -> T:
                marks.append(time.perf_counter())
                try:
                    return func(*inner_args)
                finally:
                    marks.append(time.perf_counter())

            result = await original_run_sync(inner, *args, **kwargs)
            back = time.perf_counter()
            self.add(STAGE_ORDER[2], marks[0] - called)
            self.add(STAGE_ORDER[3], marks[1] - marks[0])
            self.add(STAGE_ORDER[8], back - marks[1])
            _RETURNED.set(back)
            return result

        setattr(anyio.to_thread, "run_sync", run_sync)  # noqa: B010

        async def timed_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"] != "/webhook":
                await app(scope, receive, send)
                return
            if self._probe is None:
                self._probe = asyncio.get_running_loop().create_task(self._lag_probe())
            started = time.perf_counter()
            _RETURNED.set(None)

            async def timed_receive() -> Any:
                message = await receive()
                if message["type"] == "http.request" and not message.get("more_body"):
                    self.add(STAGE_ORDER[1], time.perf_counter() - started)
                return message

            async def timed_send(message: Any) -> None:
                returned = _RETURNED.get()
                if message["type"] == "http.response.start" and returned is not None:
                    self.add(STAGE_ORDER[9], time.perf_counter() - returned)
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    self.add(STAGE_ORDER[0], time.perf_counter() - started)

            await app(scope, timed_receive, timed_send)

        return timed_app

    async def _lag_probe(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(int(self._lifetime_s / LAG_PROBE_INTERVAL_S)):
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_INTERVAL_S)
            self.add(STAGE_ORDER[10], loop.time() - started - LAG_PROBE_INTERVAL_S)

    def write(self, path: Path) -> None:
        with self._lock:
            path.write_text(json.dumps(self.samples), "utf-8")


# ---------------------------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str) -> Samples:
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        response = client.get("/metrics")
    if response.status_code != 200:
        raise BenchmarkError(f"GET /metrics answered {response.status_code}")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """The change of the sum of ``name`` over the samples whose labels include ``labels``."""

    def total(values: Samples) -> float:
        return sum(
            value
            for (sample, sample_labels), value in values.items()
            if sample == name and set(labels.items()) <= set(sample_labels)
        )

    return total(after) - total(before)


@dataclass(frozen=True)
class Check:
    phase: str
    name: str
    answers: int
    counted: float
    passed: bool


def check_counters(phase: Phase, before: Samples, after: Samples) -> list[Check]:
    """What ``/metrics`` says happened during ``phase`` against what the client saw."""

    def counter(name: str, **labels: str) -> float:
        return delta(before, after, f"lockwarden_{name}_total", **labels)

    def check(name: str, answers: int, counted: float) -> Check:
        return Check(phase.name, name, answers, counted, answers == counted)

    answered = [r for r in phase.results if r.status is not None]
    pushes = [r for r in phase.ok if r.kind.event == "push"]
    push_jobs = [job for r in pushes for job in r.jobs]
    all_jobs = [job for r in phase.ok for job in r.jobs]
    checks = [
        check("deliveries answered = counted", len(answered), counter("webhook_requests")),
        check(
            "push accepted = counted queued",
            len(pushes),
            counter("webhook_requests", event="push", outcome="queued"),
        ),
        check(
            "push accepted = refresh jobs", len(pushes), counter("jobs_enqueued", kind="refresh")
        ),
        check("push job ids answered, distinct", len(pushes), len(set(push_jobs))),
    ]
    for job_kind in ("command", "cleanup"):
        accepted = sum(1 for r in phase.ok if r.kind.job_kind == job_kind)
        checks.append(
            check(f"{job_kind} accepted = jobs", accepted, counter("jobs_enqueued", kind=job_kind))
        )
    checks.append(check("job ids answered, distinct", len(all_jobs), len(set(all_jobs))))
    for outcome in ("duplicate", "error", "unavailable", "unauthorized", "bad_request"):
        checks.append(check(f"counted {outcome}", 0, counter("webhook_requests", outcome=outcome)))
    return checks


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


QUANTILES = (50.0, 90.0, 99.0, 99.9)


def latency_ms(results: Sequence[Result]) -> dict[str, float]:
    values = [r.latency_s * 1000 for r in results]
    figures = {f"p{q:g}": percentile(values, q) for q in QUANTILES}
    figures["max"] = max(values, default=math.nan)
    figures["mean"] = sum(values) / len(values) if values else math.nan
    return figures


def machine(client: ClientKind) -> dict[str, Any]:
    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "uvicorn": installed("uvicorn"),
        "event_loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "http_parser": "httptools" if find_spec("httptools") else "h11",
        "fastapi": installed("fastapi"),
        "starlette": installed("starlette"),
        "pydantic": installed("pydantic"),
        "client": (
            f"httpx {installed('httpx')}, one keep-alive connection per worker"
            if client == "httpx"
            else "raw HTTP/1.1 over asyncio streams, one keep-alive connection per worker"
        ),
        "lockwarden": lockwarden_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def print_machine(info: Mapping[str, Any]) -> None:
    print("Machine")
    print(f"  cores        {info['cores']} ({info['usable_cores']} usable)")
    print(f"  platform     {info['platform']}")
    print(f"  python       {info['python']}")
    print(
        f"  server       uvicorn {info['uvicorn']} ({info['event_loop']} loop, "
        f"{info['http_parser']} parser), fastapi {info['fastapi']}, "
        f"starlette {info['starlette']}, pydantic {info['pydantic']}"
    )
    print(f"  client       {info['client']}")
    print(f"  lockwarden   {info['lockwarden']}")
    print(f"  load average {' '.join(str(x) for x in info['load_average'])} (at start)")


def print_load(kinds: Sequence[Kind], server: Server) -> None:
    pattern = mix_pattern(kinds)
    print()
    print(
        f"Receiver: create_app + InMemoryQueue under uvicorn (child process {server.process.pid}, "
        f"{server.base_url}, log level warning)"
    )
    print("Deliveries (one cycle of 20, interleaved)")
    for kind in kinds:
        share = sum(1 for k in pattern if k is kind)
        what = f"{kind.job_kind} job" if kind.job_kind else "ignored"
        print(
            f"  {kind.name:<24}{share:>3}/20  {len(kind.template):>6} bytes  -> {what:<13}"
            f"({kind.source})"
        )


def fmt(value: float, width: int = 8, digits: int = 1) -> str:
    return f"{value:>{width}.{digits}f}" if not math.isnan(value) else f"{'-':>{width}}"


def print_latency_table(phase: Phase, kinds: Sequence[Kind]) -> None:
    header = "".join(f"{name:>8}" for name in ("p50", "p90", "p99", "p99.9", "max", "mean"))
    print(f"  latency, ms {'':<20}{'count':>7}{header}")
    rows: list[tuple[str, list[Result]]] = [("all", phase.ok)]
    rows += [(k.name, [r for r in phase.ok if r.kind is k]) for k in kinds]
    for label, results in rows:
        figures = latency_ms(results)
        cells = "".join(fmt(figures[key]) for key in ("p50", "p90", "p99", "p99.9", "max", "mean"))
        print(f"    {label:<28}{len(results):>7}{cells}")


def print_errors(phase: Phase) -> None:
    errors = phase.errors
    print(f"  errors       {sum(errors.values())}")
    for kind, count in errors.most_common():
        print(f"    {count:>6}  {kind}")


def cpu_share(phase: Phase) -> str:
    client = phase.client_cpu_s / phase.elapsed_s if phase.elapsed_s else math.nan
    server = (
        phase.server_cpu_s / phase.elapsed_s
        if phase.server_cpu_s is not None and phase.elapsed_s
        else math.nan
    )
    return (
        f"server {fmt(server * 100, 0, 0)}% of a core, "
        f"load generator {fmt(client * 100, 0, 0)}% of a core"
    )


def print_open_loop(phase: Phase, kinds: Sequence[Kind], rate: float, duration_s: float) -> None:
    print()
    print(
        f"Open loop: {rate:g} deliveries/s planned for {duration_s:g} s "
        f"(latency from each delivery's planned send time to the end of its answer)"
    )
    sent_rate = (len(phase.lag_s) - 1) / phase.send_span_s if phase.send_span_s else math.nan
    answered = len([r for r in phase.results if r.status is not None])
    print(f"  planned      {phase.planned}")
    print(f"  sent         {len(phase.lag_s)} ({fmt(sent_rate, 0)} /s achieved)")
    print(
        f"  answered     {answered} (2xx as expected: {len(phase.ok)}; "
        f"{fmt(len(phase.ok) / phase.elapsed_s, 0)} /s over {phase.elapsed_s:.1f} s)"
    )
    print_errors(phase)
    print_latency_table(phase, kinds)
    lag = [x * 1000 for x in phase.lag_s]
    print(
        f"  send lag, ms (the load generator's own delay, included above): "
        f"p50 {fmt(percentile(lag, 50), 0, 2)}, p99 {fmt(percentile(lag, 99), 0, 2)}, "
        f"max {fmt(max(lag, default=math.nan), 0, 2)}"
    )
    print(f"  CPU          {cpu_share(phase)}")


def print_closed_loop(phase: Phase, clients: int, duration_s: float) -> None:
    print()
    print(f"Closed loop: {clients} clients back to back for {duration_s:g} s")
    print(f"  answered     {len([r for r in phase.results if r.status is not None])}")
    print_errors(phase)
    print(
        f"  throughput   {fmt(len(phase.ok) / phase.elapsed_s, 0)} deliveries/s (2xx as expected)"
    )
    figures = latency_ms(phase.ok)
    print(
        f"  latency, ms  p50 {fmt(figures['p50'], 0)}, p90 {fmt(figures['p90'], 0)}, "
        f"p99 {fmt(figures['p99'], 0)}, max {fmt(figures['max'], 0)}"
    )
    print(f"  CPU          {cpu_share(phase)}")


def print_checks(checks: Sequence[Check]) -> None:
    print()
    print("Counters (GET /metrics, change over each phase) against the answers")
    print(f"  {'phase':<12}{'check':<34}{'answers':>9}{'counter':>9}")
    for check in checks:
        print(
            f"  {check.phase:<12}{check.name:<34}{check.answers:>9}{check.counted:>9.0f}   "
            f"{'PASS' if check.passed else 'MISS'}"
        )


def stage_figures(path: Path, phase: Phase) -> dict[str, dict[str, float]]:
    """The ``--stages`` samples whose end falls within ``phase``, per stage, in ms."""
    try:
        raw: dict[str, list[list[float]]] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"the server wrote no stage timings ({exc})") from exc
    figures: dict[str, dict[str, float]] = {}
    for stage in STAGE_ORDER:
        values = [
            seconds * 1000
            for ended, seconds in raw.get(stage, [])
            if phase.wall_start <= ended <= phase.wall_end
        ]
        figures[stage] = {
            "count": len(values),
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "max": max(values, default=math.nan),
            "mean": sum(values) / len(values) if values else math.nan,
        }
    return figures


def print_stages(figures: Mapping[str, Mapping[str, float]]) -> None:
    print()
    print("Server stages during the open loop (ms; --stages, measured in the server process)")
    print(f"  {'stage':<44}{'count':>7}{'p50':>8}{'p99':>8}{'max':>8}{'mean':>8}")
    for stage, values in figures.items():
        cells = "".join(fmt(values[key], 8, 2) for key in ("p50", "p99", "max", "mean"))
        print(f"  {stage:<44}{values['count']:>7.0f}{cells}")


@dataclass(frozen=True)
class Target:
    name: str
    shown: str
    target: str
    passed: bool | None

    def verdict(self) -> str:
        if self.passed is None:
            return "(reference)"
        return "PASS" if self.passed else "MISS"


def targets(
    open_phase: Phase, closed: Phase | None, checks: Sequence[Check], rate: float, dur: float
) -> list[Target]:
    at_target = rate == TARGET_RATE and dur >= TARGET_DURATION_S
    where = f"at {rate:g}/s for {dur:g} s"
    p99 = latency_ms(open_phase.ok)["p99"]
    errors = sum(open_phase.errors.values())
    out = [
        Target(
            f"p99 latency {where}",
            f"{fmt(p99, 0)} ms",
            f"< {P99_TARGET_MS:g} ms",
            (p99 < P99_TARGET_MS) if at_target else None,
        ),
        Target(f"errors {where}", str(errors), "0", (errors == 0) if at_target else None),
        Target(
            "counters agree: each accepted push enqueued once",
            f"{sum(c.passed for c in checks)}/{len(checks)} checks",
            "all",
            all(c.passed for c in checks),
        ),
    ]
    if closed is not None:
        throughput = len(closed.ok) / closed.elapsed_s if closed.elapsed_s else math.nan
        out.append(Target("max throughput (closed loop)", f"{fmt(throughput, 0)} /s", "-", None))
    return out


def print_targets(
    items: Sequence[Target], open_phase: Phase, client: ClientKind, rate: float, duration_s: float
) -> None:
    print()
    print("Targets")
    for item in items:
        target = f"target {item.target}" if item.passed is not None else ""
        print(f"  {item.name:<50}{item.shown:>14}   {target:<16}{item.verdict()}")
    if rate != TARGET_RATE or duration_s < TARGET_DURATION_S:
        print(
            f"  (the latency and error targets are defined at {TARGET_RATE:g}/s for "
            f"{TARGET_DURATION_S:g} s; shown for reference at other settings)"
        )
    lag_p99 = percentile(open_phase.lag_s, 99) * 1000
    if lag_p99 > SEND_LAG_WARN_MS:
        print(
            f"  Warning: the load generator itself sent late (send lag p99 {lag_p99:.1f} ms > "
            f"{SEND_LAG_WARN_MS:g} ms): it was short of CPU, so the latencies above include "
            "its own delays, not only the receiver's"
            + (". Compare with --client raw." if client == "httpx" else ".")
        )
    print()
    print(
        "Note: the machine is shared and noisy, and the load generator runs on the same cores "
        "as the receiver, so these figures come from one benchmark run; the tail (p99, max) "
        "moves most between runs; rerun before trusting a difference of a few milliseconds."
    )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    open_phase: Phase
    closed: Phase | None
    checks: list[Check]
    stages: dict[str, dict[str, float]] | None


async def measure(server: Server, source: DeliverySource, args: argparse.Namespace) -> Run:
    base = server.base_url
    print(f"warm-up: {WARMUP_DELIVERIES} deliveries (unmeasured)", file=sys.stderr)
    async with connections(args.client, server, WARMUP_CLIENTS) as clients:
        warm = await closed_loop(clients, source, WARMUP_TIMEOUT_S, "warm-up", WARMUP_DELIVERIES)
    if warm.errors:
        first = warm.errors.most_common(1)[0][0]
        raise BenchmarkError(
            f"{sum(warm.errors.values())} warm-up deliveries failed, first: {first}\n"
            f"{server.log_tail()}"
        )
    checks: list[Check] = []

    print(f"open loop: {args.rate:g}/s for {args.duration:g} s", file=sys.stderr)
    async with connections(args.client, server, OPEN_LOOP_WORKERS) as clients:
        before, cpu = scrape(base), server.cpu_s()
        open_phase = await open_loop(clients, source, args.rate, args.duration)
        open_phase.server_cpu_s = _cpu_delta(cpu, server.cpu_s())
    checks += check_counters(open_phase, before, scrape(base))

    closed = None
    if args.clients > 0 and args.closed_duration > 0:
        print(
            f"closed loop: {args.clients} clients for {args.closed_duration:g} s", file=sys.stderr
        )
        async with connections(args.client, server, args.clients) as clients:
            before, cpu = scrape(base), server.cpu_s()
            closed = await closed_loop(
                clients, source, args.closed_duration, "closed loop", MAX_CLOSED_LOOP_DELIVERIES
            )
            closed.server_cpu_s = _cpu_delta(cpu, server.cpu_s())
        checks += check_counters(closed, before, scrape(base))
    return Run(open_phase, closed, checks, None)


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def run_json(run: Run, info: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    def phase_json(phase: Phase) -> dict[str, Any]:
        return {
            "planned": phase.planned,
            "answered": len([r for r in phase.results if r.status is not None]),
            "ok": len(phase.ok),
            "errors": dict(phase.errors),
            "elapsed_s": round(phase.elapsed_s, 3),
            "throughput_per_s": round(len(phase.ok) / phase.elapsed_s, 1),
            "latency_ms": {k: round(v, 2) for k, v in latency_ms(phase.ok).items()},
            "client_cpu_s": round(phase.client_cpu_s, 2),
            "server_cpu_s": round(phase.server_cpu_s, 2) if phase.server_cpu_s else None,
        }

    return {
        "machine": info,
        "settings": {
            "rate": args.rate,
            "duration_s": args.duration,
            "clients": args.clients,
            "closed_duration_s": args.closed_duration,
            "stages": args.stages,
            "client": args.client,
        },
        "open_loop": phase_json(run.open_phase),
        "closed_loop": phase_json(run.closed) if run.closed is not None else None,
        "checks": [
            {"phase": c.phase, "name": c.name, "answers": c.answers, "counter": c.counted}
            | {"passed": c.passed}
            for c in run.checks
        ],
        "stages_ms": run.stages,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.webhook",
        description="Latency of POST /webhook under a fixed rate of signed deliveries "
        "(open loop), and the most deliveries per second it answers (closed loop).",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"open-loop deliveries per second (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="S",
        help=f"open-loop seconds (default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        metavar="N",
        help=f"closed-loop clients (default {DEFAULT_CLIENTS}; 0: no closed loop)",
    )
    parser.add_argument(
        "--closed-duration",
        type=float,
        default=DEFAULT_CLOSED_DURATION_S,
        metavar="S",
        help=f"closed-loop seconds (default {DEFAULT_CLOSED_DURATION_S:g})",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="instrument the server and print where its time goes during the open loop",
    )
    parser.add_argument(
        "--client",
        choices=CLIENT_KINDS,
        default="httpx",
        help="load generator: httpx (default), or raw, a minimal HTTP/1.1 client that leaves "
        "more of the machine's CPU to the receiver",
    )
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="also write figures as JSON")
    # The child process's entry point.
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-lifetime", type=float, default=600.0, help=argparse.SUPPRESS)
    parser.add_argument("--stages-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 10_000 or not 0 < args.duration <= 3600:
        parser.error("--rate must be in (0, 10000] and --duration in (0, 3600]")
    if args.rate * args.duration > MAX_OPEN_LOOP_DELIVERIES:
        parser.error(f"--rate x --duration must be at most {MAX_OPEN_LOOP_DELIVERIES}")
    if not 0 <= args.clients <= 256 or not 0 <= args.closed_duration <= 600:
        parser.error("--clients must be in [0, 256] and --closed-duration in [0, 600]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.serve_lifetime, args.stages_file)
    fast_httpcore_import()
    started = time.perf_counter()
    info = machine(args.client)
    print_machine(info)
    sys.stdout.flush()
    secret = secrets.token_hex(32)
    kinds = make_kinds()
    source = DeliverySource(kinds, secret.encode())
    lifetime = 120 + args.duration + DRAIN_TIMEOUT_S + args.closed_duration + REQUEST_TIMEOUT_S
    try:
        with running_server(secret, stages=args.stages, lifetime_s=lifetime) as server:
            print_load(kinds, server)
            sys.stdout.flush()
            run = asyncio.run(measure(server, source, args))
            stop_server(server)
            if server.stages_file is not None:
                run.stages = stage_figures(server.stages_file, run.open_phase)
    except BenchmarkError as exc:
        print(f"\nbenchmark aborted: {exc}", file=sys.stderr)
        return 2
    print_open_loop(run.open_phase, kinds, args.rate, args.duration)
    if run.closed is not None:
        print_closed_loop(run.closed, args.clients, args.closed_duration)
    print_checks(run.checks)
    if run.stages is not None:
        print_stages(run.stages)
    print_targets(
        targets(run.open_phase, run.closed, run.checks, args.rate, args.duration),
        run.open_phase,
        args.client,
        args.rate,
        args.duration,
    )
    wall = time.perf_counter() - started
    print(
        f"Wall time: {wall:.0f} s; load average at the end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.out is not None:
        payload = run_json(run, info, args) | {"wall_time_s": round(wall, 1)}
        args.out.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
