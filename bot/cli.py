"""``lockwarden``: a thin command line over the library core."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from bot import __version__, shell
from bot.errors import LockwardenError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.github.client import GitHubApp
    from bot.jobs.postgres import JobRow, ProcrastinateQueue
    from bot.jobs.queue import InMemoryQueue, JobRequest
    from bot.jobs.runner import JobRunner
    from bot.progress import Progress
    from bot.sandbox import Sandbox
    from bot.settings import Settings


# Parameters several commands take, declared once.
repository_path = click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
no_build_option = click.option("--no-build", is_flag=True, help="Do not build images (locks only).")
no_test_option = click.option(
    "--no-test", is_flag=True, help="Build images but do not run the tests in them."
)
force_option = click.option(
    "--force",
    is_flag=True,
    help="Overwrite files with uncommitted changes (refused otherwise, naming them).",
)


@click.group()
@click.version_option(__version__, prog_name="lockwarden")
def main() -> None:
    """Keep the lockfiles of ML projects fresh: recompile, build, test, review."""


INTERRUPTED_EXIT = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C."""


class _Interrupted(BaseException):
    """Ctrl-C, raised past click (which would turn it into "Aborted!" and exit 1)."""


def entry() -> None:
    """The ``lockwarden`` command: ``main``, with Ctrl-C stopping every child process
    within a second and exiting 130."""
    signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except _Interrupted:
        shell.stop_all_children()
        click.echo("\ninterrupted: every running command was stopped", err=True)
        sys.exit(INTERRUPTED_EXIT)


def _interrupt(signum: int, frame: object) -> None:
    shell.stop_all_children()  # the compiles' threads return once their children are gone
    raise _Interrupted


@main.command()
@repository_path
@click.option(
    "--env",
    "environments",
    multiple=True,
    help="Only this environment (repeatable); the environments it constrains are recompiled too.",
)
@click.option("--upgrade", is_flag=True, help="Full refresh: newest allowed version of everything.")
@click.option(
    "--upgrade-package",
    "upgrade_packages",
    multiple=True,
    metavar="PKG[==VER]",
    help="Targeted refresh of one package (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Compile and report, but write nothing.")
@no_build_option
@no_test_option
@click.option(
    "--verify-reproducible/--no-verify-reproducible",
    default=None,
    help="Rebuild each image without cache and compare digests (default: the config's).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown report to FILE.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the JSON report to FILE ('-' for stdout).",
)
@force_option
@click.option(
    "--commit",
    is_flag=True,
    help="Commit the files the run changed (and only those) with the ledger trailers, as you.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print only the summary: no progress while the run goes on.",
)
def run(
    path: Path,
    environments: tuple[str, ...],
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    dry_run: bool,
    no_build: bool,
    no_test: bool,
    verify_reproducible: bool | None,
    report_path: Path | None,
    json_path: Path | None,
    force: bool,
    commit: bool,
    quiet: bool,
) -> None:
    """Recompile the locks of the repository at PATH (default: the current directory)."""
    from bot.config import unlocked_note
    from bot.pipeline.checkout import open_local
    from bot.pipeline.write import commit_run, prepare_commit, write_atomic
    from bot.report.json_report import dumps
    from bot.report.markdown import render_markdown
    from bot.report.terminal import render_summary
    from bot.settings import load_settings
    from bot.worker import RefreshOptions, local_sandbox, refresh

    if upgrade and upgrade_packages:
        raise click.UsageError("--upgrade and --upgrade-package cannot be combined")
    if commit and dry_run:
        raise click.UsageError("--commit and --dry-run cannot be combined")
    try:
        settings = load_settings()
        workspace = open_local(path)
        author = prepare_commit(workspace.root) if commit else None
        sandbox = local_sandbox(settings)
        if not sandbox.isolated:
            click.echo(f"note: {sandbox.reason}", err=True)
        with _progress_display(quiet) as progress:
            result = refresh(
                workspace,
                RefreshOptions(
                    environments=environments,
                    upgrade=upgrade,
                    upgrade_packages=upgrade_packages,
                    dry_run=dry_run,
                    build=not no_build,
                    test=not no_test,
                    verify_reproducible=verify_reproducible,
                    force=force,
                    reuse_recent_lookups=True,
                ),
                settings,
                sandbox=sandbox,
                progress=progress,
            )
        if author is not None:
            _echo_commit(commit_run(workspace.root, result, author), err=str(json_path) == "-")
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    to_stdout = json_path is not None and str(json_path) == "-"
    echo = (lambda text: click.echo(text, err=True)) if to_stdout else click.echo
    if result.config.source == "discovery" and not quiet:
        n = len(result.config.discovered)
        echo(f"No .github/lockwarden.yml: discovered {n} environment{'s' if n != 1 else ''}:")
        for line in result.config.discovered:
            echo(f"  {line}")
        if result.config.unlocked:
            echo("Not refreshed, no lock yet (create it, or list the spec in the config):")
            for env in result.config.unlocked:
                echo(f"  {unlocked_note(env)}")
    echo(render_summary(result))
    if report_path is not None:
        write_atomic(report_path, render_markdown(result))
    if json_path is not None:
        if to_stdout:
            click.echo(dumps(result), nl=False)
        else:
            write_atomic(json_path, dumps(result))
    sys.exit(1 if result.failed else 0)


def _progress_display(quiet: bool) -> contextlib.AbstractContextManager[Progress]:
    """Where ``run`` shows its progress: nowhere with ``--quiet``; a live table when both
    output streams are a terminal; else plain lines on stderr (logs stay readable, and
    stdout keeps only the summary or the JSON)."""
    from bot.progress import no_progress
    from bot.report.terminal import LiveProgress, PlainProgress

    if quiet:
        return contextlib.nullcontext(no_progress)
    if sys.stdout.isatty() and sys.stderr.isatty():
        from rich.console import Console

        return LiveProgress(Console(stderr=True))
    return contextlib.nullcontext(PlainProgress(sys.stderr))


def _echo_commit(sha: str | None, *, err: bool) -> None:
    if sha is None:
        click.echo("Nothing changed: no commit made.", err=err)
    else:
        click.echo(f"Committed the changed files as {sha[:12]} (see lockwarden history).", err=err)


@main.command()
@repository_path
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the audit as JSON to FILE ('-' for stdout).",
)
@click.option("-e", "--env", "environments", multiple=True, help="Only this environment.")
def audit(path: Path, json_path: Path | None, environments: tuple[str, ...]) -> None:
    """List the published advisories of the locked versions at PATH.

    Exit status: 0 none found, 1 advisories found, 2 they could not be checked.
    """
    from bot.advisories import audit_locks, service_config
    from bot.pipeline.checkout import open_local
    from bot.pipeline.configure import configure
    from bot.pipeline.write import write_atomic
    from bot.report.advisories import audit_json, render_audit_text
    from bot.settings import load_settings

    try:
        settings = load_settings()
        workspace = open_local(path)
        loaded = configure(workspace, environments)
        found = audit_locks(
            workspace.root,
            loaded.config,
            service_config(settings),
            environments=environments,
        )
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    to_stdout = json_path is not None and str(json_path) == "-"
    click.echo(render_audit_text(found), err=to_stdout)
    if json_path is not None:
        document = json.dumps(audit_json(found), indent=2) + "\n"
        if to_stdout:
            click.echo(document, nl=False)
        else:
            write_atomic(json_path, document)
    sys.exit(found.exit_status)


@main.command()
def schema() -> None:
    """Print the JSON Schema of .github/lockwarden.yml."""
    from bot.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command("docs")
@click.argument(
    "root", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option("--check", is_flag=True, help="Only report pages that differ from the code.")
def docs_command(root: Path, check: bool) -> None:
    """Regenerate the reference tables in ROOT/docs from the code (config, settings, help)."""
    from bot.docs import REGENERATE, stale_pages, write_pages

    try:
        pages = stale_pages(root) if check else write_pages(root)
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for page in pages:
        click.echo(f"{page}: {'out of date' if check else 'regenerated'}")
    if check and pages:
        click.echo(f"{REGENERATE}", err=True)
        sys.exit(1)


@main.command()
@repository_path
@click.option("--ref", default="HEAD", show_default=True, help="History to read.")
@click.option("--limit", default=50, show_default=True, help="Commits to look at.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON.")
def history(path: Path, ref: str, limit: int, as_json: bool) -> None:
    """Print the ledger: lock sets, image digests and test outcomes recorded on bot commits."""
    from dataclasses import asdict

    from bot.git import resolve_revision
    from bot.ledger import read_ledger

    try:
        entries = read_ledger(path, ref, limit=limit)
        empty = not entries and ref == "HEAD" and resolve_revision(path, ref) is None
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if empty and not as_json:
        click.echo("no commits yet: the ledger starts with the first `lockwarden run --commit`")
        return
    if as_json:
        click.echo(
            json.dumps([{**asdict(e), "known_good": e.known_good} for e in entries], indent=2)
        )
        return
    if not entries:
        click.echo(f"no Lockwarden commits in the last {limit} commits of {ref}")
        return
    for entry in entries:
        mark = "known-good" if entry.known_good else "tests failed"
        click.echo(
            f"{entry.commit[:12]}  {entry.date}  {entry.mode or '-':<8}  {mark}  {entry.subject}"
        )
        for env in entry.environments:
            digest = f"  image {env.digest}" if env.digest else ""
            tests = f"  tests {env.tests}" if env.tests else ""
            click.echo(f"    {env.name:<10} {env.lock}  {env.lock_sha256[:19]}{digest}{tests}")


@main.command()
@repository_path
@click.option(
    "--to",
    "to",
    required=True,
    metavar="REV|known-good",
    help="Any git revision (sha, branch, tag, HEAD~1, ...), or 'known-good' (the newest "
    "known-good set in the ledger).",
)
@click.option(
    "--repo",
    "github_repo",
    metavar="OWNER/NAME",
    help="Open the rollback pull request on GitHub (App settings) instead of restoring PATH.",
)
@no_build_option
@no_test_option
@force_option
def rollback(
    path: Path, to: str, github_repo: str | None, no_build: bool, no_test: bool, force: bool
) -> None:
    """Restore every environment's lock from REV or the newest known-good set.

    Locally the locks of the working tree at PATH are restored (recompiled only where the
    current specs need it) and the image digests to redeploy are printed; with --repo the
    GitHub App opens a rollback pull request instead. Files with uncommitted changes are
    not overwritten unless --force is given."""
    if github_repo is not None:
        _rollback_on_github(github_repo, to)
        return
    from bot.config import load_config
    from bot.pipeline.checkout import open_local
    from bot.pipeline.write import refuse_overwrites, write_files
    from bot.report.terminal import render_summary
    from bot.rollback import local_ref, resolve_rollback
    from bot.settings import load_settings
    from bot.worker import RefreshOptions, refresh

    try:
        settings = load_settings()
        workspace = open_local(path)
        config = load_config(workspace.root).config
        target = resolve_rollback(workspace.root, to, config, resolve_ref=local_ref(workspace.root))
        # Checked up front, before anything is written: the restored locks and Dockerfiles.
        refuse_overwrites(workspace.root, {**target.locks, **target.dockerfiles}, force=force)
        # The image inputs go back with the locks: base digests and OS package pins.
        pinned = write_files(workspace.root, target.dockerfiles)
        # force: the files were checked above, and the Dockerfiles now differ by our own write.
        result = refresh(
            workspace,
            RefreshOptions(
                seed_locks=target.locks, build=not no_build, test=not no_test, force=True
            ),
            settings,
        )
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    restored = sorted({*result.written, *pinned})
    click.echo(f"Restored the locks of {target.to} ({target.sha[:12]}).")
    click.echo(f"Restored files: {', '.join(restored) or 'none (they already match)'}")
    if target.dockerfiles:
        click.echo(f"Restored the image pins of {', '.join(sorted(target.dockerfiles))}.")
    if target.missing:
        click.echo(f"No lock at that commit (left as they are): {', '.join(target.missing)}")
    click.echo(render_summary(result))
    if target.digests:
        click.echo("Images built from those locks, to redeploy:")
        for env, digest in sorted(target.digests.items()):
            click.echo(f"  {env}: {digest}")
    sys.exit(1 if result.failed else 0)


def _rollback_on_github(full_name: str, to: str) -> None:
    from bot.github.client import GitHubApp, installation_id_for
    from bot.jobs.branches import RollbackRequest
    from bot.jobs.queue import JobRequest
    from bot.jobs.runner import JobRunner
    from bot.rollback import check_ref
    from bot.settings import app_credentials, load_settings

    try:
        check_ref(to)
        settings = load_settings()
        app = GitHubApp(app_credentials(settings))
        installation = installation_id_for(app, full_name)
        job = JobRequest("refresh", full_name, installation, delivery_id="cli-rollback")
        done = JobRunner(app, settings).rollback(job, RollbackRequest(to))
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    published = done.outcome.published
    click.echo(f"Rollback to {done.target.to} ({done.target.sha[:12]}) on {done.branch}.")
    if published is not None and published.pull_url:
        click.echo(f"Pull request: {published.pull_url} ({published.action})")
    elif published is not None:
        click.echo(f"Nothing to propose ({published.action}).")
    for env, digest in sorted(done.target.digests.items()):
        click.echo(f"  redeploy {env}: {digest}")


@main.command("refresh")
@click.argument("full_name", metavar="OWNER/NAME")
@click.option("--env", "environments", multiple=True, help="Only this environment (repeatable).")
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="PKG[==VER]",
    help="Targeted refresh of one package (repeatable); default: a full refresh.",
)
def refresh_command(
    full_name: str, environments: tuple[str, ...], packages: tuple[str, ...]
) -> None:
    """Queue a refresh of OWNER/NAME now (LOCKWARDEN_DATABASE_URL and App settings)."""
    import uuid

    import psycopg

    from bot.github.client import GitHubApp, installation_id_for
    from bot.jobs.queue import JobRequest
    from bot.pipeline.compile import parse_targets
    from bot.settings import app_credentials, load_settings

    try:
        targets = parse_targets(packages)
        settings = load_settings()
        installation = installation_id_for(GitHubApp(app_credentials(settings)), full_name)
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    from bot.jobs.payloads import RefreshPayload

    request = JobRequest(
        kind="refresh",
        repo=full_name,
        installation_id=installation,
        delivery_id=f"cli:{uuid.uuid4().hex}",
        payload={
            **RefreshPayload(
                mode="targeted" if targets else "full",
                packages=targets,
                environments=environments,
            ).to_json(),
            "trigger": "cli",
        },
    )
    with _queue(settings) as queue:
        try:
            job_id = queue.enqueue(request)
        except psycopg.Error as exc:
            _unreachable(exc)
    click.echo(f"queued refresh of {full_name} as job {job_id}")


def _queue(settings: Settings, app: GitHubApp | None = None) -> ProcrastinateQueue:
    """The queue; with the App's credentials it also asks GitHub to redeliver failed webhooks."""
    from datetime import timedelta
    from functools import partial

    from bot.github.deliveries import redeliver_failed
    from bot.jobs.postgres import ProcrastinateQueue
    from bot.schedules import Pace
    from bot.watch.tick import release_watch

    redeliver = None
    if app is not None and settings.redeliver_window_s > 0:
        window = timedelta(seconds=settings.redeliver_window_s)
        redeliver = partial(redeliver_failed, app, since=window)
    pace = Pace(settings.schedule_per_minute, settings.schedule_per_hour)
    watch = None
    if app is not None and settings.watch_interval_min > 0:
        watch = release_watch(settings, pace).run
    return ProcrastinateQueue(
        _database_url(settings),
        spread_s=settings.schedule_spread_s,
        pace=pace,
        heartbeat_s=settings.worker_heartbeat_s,
        stalled_after_s=settings.stalled_after_s,
        redeliver=redeliver,
        watch=watch,
        watch_cron=f"*/{settings.watch_interval_min} * * * *",
    )


def _database_url(settings: Settings) -> str:
    """``LOCKWARDEN_DATABASE_URL``, or exit 2 saying it is needed."""
    if settings.database_url is None or not settings.database_url.get_secret_value():
        click.echo(
            "error: LOCKWARDEN_DATABASE_URL is not set: give the PostgreSQL URL of the job queue",
            err=True,
        )
        sys.exit(2)
    return settings.database_url.get_secret_value()


def _unreachable(exc: Exception) -> NoReturn:
    click.echo(
        f"error: cannot use the job queue's database (LOCKWARDEN_DATABASE_URL): {exc}", err=True
    )
    sys.exit(2)


@main.command()
def migrate() -> None:
    """Create or update the job queue's tables in LOCKWARDEN_DATABASE_URL (idempotent)."""
    import psycopg

    from bot.jobs.postgres import ProcrastinateQueue
    from bot.logs import configure_logging
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings)
    try:
        with ProcrastinateQueue(_database_url(settings)) as queue:
            queue.migrate()
    except psycopg.Error as exc:
        _unreachable(exc)
    click.echo("job queue schema is up to date")


_migrate_option = click.option(
    "--migrate",
    "migrate_first",
    is_flag=True,
    help="Create or update the job queue's tables first (`lockwarden migrate`), for "
    "single-machine installs.",
)


def _require_schema(queue: ProcrastinateQueue, *, migrate: bool) -> None:
    """Exit 2 unless the database has every table and function this version uses."""
    import psycopg

    try:
        if migrate:
            queue.migrate()
        missing = queue.missing_schema()
    except psycopg.Error as exc:
        _unreachable(exc)
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        click.echo(
            f"error: database schema is missing or out of date: run lockwarden migrate "
            f"(or start with --migrate); missing: {shown}",
            err=True,
        )
        sys.exit(2)


@main.command()
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Jobs run at once (jobs of one repository still run one at a time).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help="Serve Prometheus metrics on this port (0: off). Default: LOCKWARDEN_METRICS_PORT.",
)
@_migrate_option
def worker(concurrency: int, metrics_port: int | None, migrate_first: bool) -> None:
    """Run the jobs queued in LOCKWARDEN_DATABASE_URL until SIGINT or SIGTERM.

    A failing job is retried with backoff; run `lockwarden migrate` once before.
    """

    from bot.github.client import GitHubApp
    from bot.logs import configure_logging
    from bot.sandbox import open_sandbox
    from bot.settings import app_credentials, load_settings

    try:
        settings = load_settings()
        app = GitHubApp(app_credentials(settings))
        sandbox = open_sandbox(settings.sandbox, required=True)
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings)
    with _queue(settings, app) as queue:
        _require_schema(queue, migrate=migrate_first)
        port = settings.metrics_port if metrics_port is None else metrics_port
        with _serving_metrics(port, queue), contextlib.closing(app):
            runner = _job_runner(app, settings, queue, sandbox)
            queue.run_worker(runner.run, concurrency=concurrency)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--with-worker",
    is_flag=True,
    help="With LOCKWARDEN_DATABASE_URL: also run a worker in this process "
    "(without a database the worker always runs in-process).",
)
@_migrate_option
def serve(host: str, port: int, with_worker: bool, migrate_first: bool) -> None:
    """Receive GitHub webhooks and queue the jobs they ask for.

    With LOCKWARDEN_DATABASE_URL the jobs go to PostgreSQL and `lockwarden worker` runs them
    (or this process too, with --with-worker). Without it they are kept in memory and a worker
    thread in this process runs them one at a time.
    """
    import threading

    import uvicorn

    from bot.github.client import GitHubApp
    from bot.jobs.postgres import ProcrastinateQueue
    from bot.jobs.queue import InMemoryQueue
    from bot.logs import configure_logging
    from bot.sandbox import open_sandbox
    from bot.server.app import create_app
    from bot.settings import app_credentials, load_settings

    queue: InMemoryQueue | ProcrastinateQueue | None = None
    try:
        settings = load_settings()
        app = GitHubApp(app_credentials(settings))
        runs_jobs = settings.database_url is None or with_worker
        # Only a process that runs jobs needs the sandbox; a receiver alone reads no
        # repository content.
        sandbox = open_sandbox(settings.sandbox, required=True) if runs_jobs else None
        queue = _queue(settings, app) if settings.database_url is not None else InMemoryQueue()
        threads: list[threading.Thread] = []
        web = create_app(
            settings,
            queue,
            sandbox=sandbox,
            workers=lambda: {t.name: t.is_alive() for t in threads},
        )
    except LockwardenError as exc:
        if isinstance(queue, ProcrastinateQueue):
            queue.close()
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings)
    if isinstance(queue, ProcrastinateQueue):
        try:
            _require_schema(queue, migrate=migrate_first)
        except SystemExit:
            queue.close()
            raise
    stop = threading.Event()
    handle = _job_runner(app, settings, queue, sandbox).run
    worker = _serve_thread(queue, handle, stop, with_worker=with_worker)
    threads.append(worker)
    worker.start()
    try:
        # One access-log line per delivery costs more than handling it; the receiver counts
        # deliveries in /metrics instead. No log_config: uvicorn's lines go through ours.
        uvicorn.run(
            web,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            access_log=False,
            log_config=None,
        )
    finally:
        stop.set()
        worker.join(timeout=30)
        app.close()  # the token-minting connection
        if isinstance(queue, ProcrastinateQueue):
            queue.close()
    if worker.died is not None:
        click.echo(f"error: the {worker.name} thread died: {worker.died!r}", err=True)
        sys.exit(1)


def _job_runner(
    app: GitHubApp,
    settings: Settings,
    queue: InMemoryQueue | ProcrastinateQueue,
    sandbox: Sandbox | None,
) -> JobRunner:
    """The worker's job runner; with the database queue it also records refresh schedules
    and what each repository locks (for the release watch)."""
    from bot.jobs.postgres import ProcrastinateQueue
    from bot.jobs.runner import JobRunner
    from bot.watch.store import WatchBook

    database = queue if isinstance(queue, ProcrastinateQueue) else None
    return JobRunner(
        app,
        settings,
        schedules=database,
        sandbox=sandbox,
        queue=queue,
        watch=WatchBook(database) if database is not None else None,
    )


def _serve_thread(
    queue: InMemoryQueue | ProcrastinateQueue,
    handle: Callable[[JobRequest], object],
    stop: threading.Event,
    *,
    with_worker: bool,
) -> _Guarded:
    """The thread ``serve`` runs beside the receiver until ``stop`` is set: the in-memory
    queue's worker, the database queue's worker (--with-worker), or else its scheduler."""
    from bot.jobs.postgres import SCHEDULER_QUEUE
    from bot.jobs.queue import InMemoryQueue, run_worker

    if isinstance(queue, InMemoryQueue):
        return _Guarded("lockwarden-worker", lambda: run_worker(queue, handle, stop))
    if with_worker:
        return _Guarded(
            "lockwarden-worker",
            lambda: queue.run_worker(handle, install_signal_handlers=False, stop=stop),
        )
    # The receiver is also the scheduler: it runs the periodic scheduling pass (workers
    # run it too when no receiver does; it never runs twice at once).
    return _Guarded(
        "lockwarden-scheduler",
        lambda: queue.run_worker(
            None, queues=(SCHEDULER_QUEUE,), install_signal_handlers=False, stop=stop
        ),
    )


class _Guarded(threading.Thread):
    """A thread ``serve`` cannot live without: if it dies, the whole process stops (SIGTERM
    to itself, which uvicorn takes as a shutdown) and exits non-zero, so the supervisor
    restarts it instead of keeping a receiver whose jobs never run."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.died: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.died = exc
            logging.getLogger(__name__).exception("%s died; stopping the process", self.name)
            os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def _serving_metrics(port: int, queue: object) -> Iterator[None]:
    """Prometheus metrics on ``port`` for the block (0: none); a port that cannot be bound
    stops start-up."""
    from bot.metrics import start_metrics_server

    try:
        server = start_metrics_server(port, queue)
    except OSError as exc:
        click.echo(
            f"error: cannot serve metrics on port {port} (--metrics-port, "
            f"LOCKWARDEN_METRICS_PORT): {exc.strerror or exc}",
            err=True,
        )
        sys.exit(2)
    try:
        yield
    finally:
        if server is not None:
            server.close()


_JOB_STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


@main.command("jobs")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Jobs to show."
)
@click.option("--state", type=click.Choice(_JOB_STATES), help="Only jobs in this state.")
@click.option("--repo", metavar="OWNER/NAME", help="Only jobs of this repository.")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
def jobs_command(limit: int, state: str | None, repo: str | None, as_json: bool) -> None:
    """List the newest jobs of the queue in LOCKWARDEN_DATABASE_URL, newest first.

    Times are UTC: queued, scheduled (a retry's earliest start), last started, finished.
    """
    import psycopg

    from bot.jobs.postgres import ProcrastinateQueue
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        with ProcrastinateQueue(_database_url(settings)) as queue:
            rows = queue.recent_jobs(limit, state=state, repo=repo)
    except psycopg.errors.UndefinedTable:
        click.echo("error: the job queue has no tables yet: run `lockwarden migrate`", err=True)
        sys.exit(2)
    except psycopg.Error as exc:
        _unreachable(exc)
    if as_json:
        click.echo(json.dumps([_job_json(row) for row in rows], indent=2))
        return
    if not rows:
        click.echo("no jobs")
        return
    click.echo(_jobs_table(rows))


def _job_json(row: JobRow) -> dict[str, object]:
    from dataclasses import asdict

    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in asdict(row).items()
    }


def _jobs_table(rows: list[JobRow]) -> str:
    def when(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"

    header = ["ID", "KIND", "REPO", "STATE", "ATTEMPTS", "QUEUED", "STARTED", "FINISHED"]
    # Most jobs never have a scheduled time; the column appears when one does (retries).
    scheduled = any(row.scheduled_at is not None for row in rows)
    if scheduled:
        header.insert(6, "SCHEDULED")
    table = [header]
    for row in rows:
        cells = [
            str(row.id),
            row.kind or "-",
            row.repo or "-",
            row.state,
            str(row.attempts),
            when(row.queued_at),
            when(row.started_at),
            when(row.finished_at),
        ]
        if scheduled:
            cells.insert(6, when(row.scheduled_at))
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )
