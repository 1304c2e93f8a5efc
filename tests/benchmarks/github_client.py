"""GitHub client benchmark: what one HTTP connection per client saves.

Run from the repository root (it is not a test and pytest never collects it)::

    python -m tests.benchmarks.github_client [--requests N] [--jobs N] [--out FILE.json]

Everything runs against the fake GitHub of ``tests/support/fake_github``, served over HTTP
on loopback, which counts the TCP connections it accepts. Two figures:

* **per request**: ``N`` (default 200) ``GET /repos/{owner}/{repo}`` with an installation
  token (made once beforehand), through a client used without ``with`` (githubkit then opens
  a new HTTP client, and a new connection, for every request) and through one client inside
  ``with`` (one connection pool for the whole block), interleaved in rounds of 20 so that
  drift on a shared machine hits both alike;
* **refresh job**: a refresh job run by :class:`bot.jobs.runner.JobRunner` on a tiny
  repository (one environment), with the pipeline's compile/build/test replaced by a fixed
  result, so that only the job's GitHub traffic is timed: token, clone, branch lookups, push,
  check run and pull request. Each run works on a repository of its own; the REST requests
  and the connections they took are counted, and the git smart-HTTP ones separately. Each
  job has an App of its own, so each makes its token on a connection of its own too. Jobs
  with one client per scope (pooled) alternate with jobs whose every request takes a new
  client (unpooled, as the runner was before).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot import __version__ as lockwarden_version
from bot.config import LoadedConfig, RepoConfig
from bot.github.client import AppCredentials, Client, GitHubApp, TokenScope
from bot.github.scopes import PUBLISH_PULL_REQUEST, Access
from bot.jobs import runner as job_runner
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.pipeline.checkout import Workspace
from bot.results import CompileStageResult, LockResult, RunResult
from bot.sandbox import open_sandbox
from bot.settings import Settings
from bot.worker import RefreshOptions
from tests.support.fake_github import FakeGitHub, Installation

ROUND = 20
CONFIG = """\
environments:
  - name: serve
    spec: requirements/serve.in
    lock: requirements/serve.txt
"""


def _time_requests(client: Client, full_name: str, count: int) -> list[float]:
    """Seconds of each of ``count`` ``GET /repos/{owner}/{repo}``."""
    owner, name = full_name.split("/")
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.rest.repos.get(owner, name)
        times.append(time.perf_counter() - started)
    return times


def per_request(fake: FakeGitHub, app: GitHubApp, scope: TokenScope, count: int) -> dict[str, Any]:
    """Seconds per request and connections taken, a new client per request vs one pooled."""
    full_name = scope.repository or ""
    app.installation_token(scope)  # the token is made once, outside the figures
    unpooled: list[float] = []
    pooled: list[float] = []
    connections = {"unpooled": 0, "pooled": 0}
    done = 0
    while done < count:
        size = min(ROUND, count - done)
        before = len(fake.connections())
        unpooled += _time_requests(app.installation_client(scope), full_name, size)
        connections["unpooled"] += len(fake.connections()) - before
        before = len(fake.connections())
        held = app.installation_client(scope)
        with held:
            pooled += _time_requests(held, full_name, size)
        connections["pooled"] += len(fake.connections()) - before
        done += size
    new_ms = statistics.median(unpooled) * 1000
    held_ms = statistics.median(pooled) * 1000
    return {
        "requests": count,
        "new_client_per_request_ms": round(new_ms, 2),
        "one_pooled_client_ms": round(held_ms, 2),
        "speedup_x": round(new_ms / held_ms, 1),
        "connections": connections,
    }


def _result(workspace: Workspace) -> RunResult:
    change = PackageChange("numpy", "1.26.4", "2.0.0", "upgraded", "major", direct=True)
    lock = LockResult(
        name="serve",
        spec="requirements/serve.in",
        lock="requirements/serve.txt",
        backend="uv",
        status="changed",
        diff=LockDiff((change,)),
        new_text="numpy==2.0.0\n",
    )
    return RunResult(
        repo=workspace.repo,
        config=LoadedConfig(RepoConfig(), source="file"),
        mode=CompileMode(),
        compiled=CompileStageResult((lock,), (), ("serve",)),
    )


def _fixed_pipeline(
    workspace: Workspace, options: RefreshOptions, settings: Settings, *, sandbox: object = None
) -> RunResult:
    return _result(workspace)


class UnpooledRunner(JobRunner):
    """The runner as it was: a new client, so a new connection, for every request."""

    def installation_client(self, job: JobRequest, access: Access | None = None) -> Client:
        return self._app.installation_client(self._scope(job, access))


def refresh_jobs(fake: FakeGitHub, settings: Settings, count: int) -> dict[str, Any]:
    """Pooled and unpooled refresh jobs, interleaved, and their ratio."""
    setattr(job_runner, "refresh", _fixed_pipeline)  # noqa: B010 - only GitHub is timed
    installation = fake.create_installation("bench-jobs")
    sandbox = open_sandbox(settings.sandbox, required=True)  # opened once, outside the figures
    pooled: list[dict[str, float]] = []
    unpooled: list[dict[str, float]] = []
    for number in range(count):
        for runs, kind in ((pooled, JobRunner), (unpooled, UnpooledRunner)):
            app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
            runner = kind(app, settings, git_base_url=fake.git_url, sandbox=sandbox)
            runs.append(_refresh_job(fake, runner, installation, f"{kind.__name__}-{number}"))
            app.close()
    figures = {"pooled": _summary(pooled), "unpooled": _summary(unpooled)}
    ratio = figures["unpooled"]["median_s"] / figures["pooled"]["median_s"]
    return {"jobs": count, **figures, "speedup_x": round(ratio, 2)}


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(r["seconds"] for r in runs), 3),
        "rest_requests": statistics.median(r["rest_requests"] for r in runs),
        "rest_connections": statistics.median(r["rest_connections"] for r in runs),
        "git_connections": statistics.median(r["git_connections"] for r in runs),
    }


def _refresh_job(
    fake: FakeGitHub, runner: JobRunner, installation: Installation, name: str
) -> dict[str, float]:
    """One refresh job on a new repository: seconds, REST requests and connections."""
    repo = f"bench-jobs/{name.lower()}"
    files = {".github/lockwarden.yml": CONFIG, "requirements/serve.in": "numpy\n"}
    fake.create_repo(repo, files=files, installation=installation)
    seen = len(fake.connections())
    requests = len(fake.requests_to("*", r"^/api/v3/"))
    started = time.perf_counter()
    request = JobRequest("refresh", repo, installation.id, f"bench-{name}")
    outcome = runner.run(request)
    elapsed = time.perf_counter() - started
    if outcome.action != "opened":
        raise SystemExit(f"the refresh job did not open a pull request: {outcome}")
    opened = fake.connections()[seen:]
    return {
        "seconds": elapsed,
        "rest_requests": len(fake.requests_to("*", r"^/api/v3/")) - requests,
        "rest_connections": sum(1 for c in opened if c.rest),
        "git_connections": sum(1 for c in opened if not c.rest),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="lockwarden-bench-") as tmp,
        FakeGitHub(Path(tmp) / "github") as fake,
    ):
        installation = fake.create_installation("bench")
        fake.create_repo("bench/svc", files={"README.md": "hi\n"}, installation=installation)
        app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
        scope = TokenScope(installation.id, "bench/svc", PUBLISH_PULL_REQUEST)
        settings = Settings(
            app_id=fake.app_id,
            private_key=SecretStr(fake.private_key_pem),
            github_api_url=fake.api_url,
            cache_dir=Path(tmp) / "cache",
            builder="none",
        )
        figures = {
            "lockwarden": lockwarden_version,
            "python": platform.python_version(),
            "per_request": per_request(fake, app, scope, args.requests),
            "refresh_job": refresh_jobs(fake, settings, args.jobs),
        }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
