"""``lockwarden``: a thin command line over the library core."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot import __version__
from bot.errors import LockwardenError


@click.group()
@click.version_option(__version__, prog_name="lockwarden")
def main() -> None:
    """Keep the lockfiles of ML projects fresh: recompile, build, test, review."""


@main.command()
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
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
@click.option("--no-build", is_flag=True, help="Do not build images (locks only).")
@click.option("--no-test", is_flag=True, help="Build images but do not run the tests in them.")
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
) -> None:
    """Recompile the locks of the repository at PATH (default: the current directory)."""
    from bot.pipeline.checkout import open_local
    from bot.pipeline.publish import write_atomic
    from bot.report.json_report import dumps
    from bot.report.markdown import render_markdown
    from bot.report.terminal import render_summary
    from bot.settings import load_settings
    from bot.worker import RefreshOptions, refresh

    if upgrade and upgrade_packages:
        raise click.UsageError("--upgrade and --upgrade-package cannot be combined")
    try:
        settings = load_settings()
        workspace = open_local(path)
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
            ),
            settings,
        )
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    to_stdout = json_path is not None and str(json_path) == "-"
    echo = (lambda text: click.echo(text, err=True)) if to_stdout else click.echo
    if result.config.source == "discovery":
        n = len(result.config.discovered)
        echo(f"No .github/lockwarden.yml: discovered {n} environment{'s' if n != 1 else ''}:")
        for line in result.config.discovered:
            echo(f"  {line}")
    echo(render_summary(result))
    if report_path is not None:
        write_atomic(report_path, render_markdown(result))
    if json_path is not None:
        if to_stdout:
            click.echo(dumps(result), nl=False)
        else:
            write_atomic(json_path, dumps(result))
    sys.exit(1 if result.failed else 0)


@main.command()
def schema() -> None:
    """Print the JSON Schema of .github/lockwarden.yml."""
    from bot.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option("--ref", default="HEAD", show_default=True, help="History to read.")
@click.option("--limit", default=50, show_default=True, help="Commits to look at.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON.")
def history(path: Path, ref: str, limit: int, as_json: bool) -> None:
    """Print the ledger: lock sets, image digests and test outcomes recorded on bot commits."""
    from dataclasses import asdict

    from bot.ledger import read_ledger

    try:
        entries = read_ledger(path, ref, limit=limit)
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
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
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Receive GitHub webhooks and run the jobs they ask for.

    The receiver answers each delivery in milliseconds and hands the work to a worker thread
    in the same process; jobs run one at a time.
    """
    import threading

    import uvicorn

    from bot.github.client import GitHubApp
    from bot.github_jobs import JobRunner
    from bot.jobs import InMemoryQueue, run_worker
    from bot.server.app import create_app
    from bot.settings import app_credentials, load_settings

    try:
        settings = load_settings()
        app = GitHubApp(app_credentials(settings))
        queue = InMemoryQueue()
        web = create_app(settings, queue)
    except LockwardenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(queue, JobRunner(app, settings).run, stop),
        name="lockwarden-worker",
        daemon=True,
    )
    worker.start()
    try:
        uvicorn.run(web, host=host, port=port, log_level="info")
    finally:
        stop.set()
        worker.join(timeout=30)
