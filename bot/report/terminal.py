"""What ``lockwarden run`` prints: each environment's progress while it runs (live on a
terminal, plain lines elsewhere) and the plain-text summary at the end."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

from bot.report.advisories import terminal_lines
from bot.report.markdown import change_summary
from bot.report.upstream import terminal_lines as upstream_lines
from bot.results import DockerfilePins, LockResult, RunResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from bot.progress import ProgressEvent


def render_summary(result: RunResult) -> str:
    pins = _changed_pins(result)
    rows = [("environment", "status", "changes", "compile")]
    for r in result.compiled.results:
        changes = (
            change_summary(r.diff, r.old_text, r.new_text)
            if r.status != "failed"
            else (r.failure or "failed")
        )
        status = r.status
        dockerfile = pins.get(r.name)
        if dockerfile is not None and r.status != "failed":
            # A moved base-image digest or OS package pin changes the image as much as a lock.
            pinned = _pin_count(dockerfile)
            changes = pinned if status == "unchanged" else f"{changes}; {pinned}"
            status = "changed"
        rows.append((r.name, status, changes, f"{r.compile_s:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i == 3 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    if pins:
        lines.append(_totals(result, pins))
    for r in result.compiled.results:
        lines += _lock_lines(r)
    for dockerfile_pins in result.image_pins:
        lines += _pin_lines(dockerfile_pins)
    lines += terminal_lines(result)
    lines += upstream_lines(result)
    for issue in result.compiled.consistency:
        kind = "error" if issue.required else "note"
        versions = ", ".join(f"{env} {ver}" for env, ver in issue.versions)
        lines.append(f"{kind}: {issue.package} differs across environments: {versions}")
    if result.dry_run:
        lines.append("dry run: nothing was written")
    elif result.written:
        lines.append("wrote " + ", ".join(result.written))
    return "\n".join(lines)


def _changed_pins(result: RunResult) -> dict[str, DockerfilePins]:
    """Environment -> its Dockerfile's pins, for the Dockerfiles whose pins moved."""
    return {env: p for p in result.image_pins if p.changes for env in p.environments}


def _pin_count(pins: DockerfilePins) -> str:
    n = len(pins.changes)
    return f"{pins.dockerfile}: {n} pin{'s' if n != 1 else ''}"


def _totals(result: RunResult, pins: dict[str, DockerfilePins]) -> str:
    """The counts under the table, when a Dockerfile's pins changed (then the lock column
    alone would undercount what the run changes)."""
    results = result.compiled.results
    locks = sum(r.status == "changed" for r in results)
    dockerfiles = {p.dockerfile: p for p in pins.values()}
    n_pins = sum(len(p.changes) for p in dockerfiles.values())
    return (
        f"{len(results)} environment{'s' if len(results) != 1 else ''}: "
        f"{locks} lock{'s' if locks != 1 else ''} changed, "
        f"{n_pins} Dockerfile pin{'s' if n_pins != 1 else ''} changed "
        f"({', '.join(sorted(dockerfiles))})"
    )


def _lock_lines(r: LockResult) -> list[str]:
    """An environment's error, notes and warnings, under the table."""
    lines: list[str] = []
    if r.status == "failed":
        lines.append("")
        lines.append(f"error: {r.name}: {r.error}")
        if r.tool_output:
            lines += [f"  | {line}" for line in r.tool_output.splitlines()]
    for note in r.notes:
        lines.append(f"note: {r.name}: {note}")
    for output in r.outputs:
        if output.changed:
            summary = change_summary(output.diff, output.old_text, output.new_text)
            lines.append(f"note: {r.name}: {output.path}: {summary}")
    for gap in r.wheel_gaps:
        what = "sdist only" if gap.sdist else "no file"
        lines.append(
            f"warning: {r.name}: no wheel of {gap.package}=={gap.version} for "
            f"{gap.platform} ({what})"
        )
    for reason in r.wheels_unchecked:
        lines.append(f"note: {r.name}: wheel check incomplete: {reason}")
    return lines


def _pin_lines(pins: DockerfilePins) -> list[str]:
    """A Dockerfile's refreshed pins, unpinned packages, notes and errors."""
    lines: list[str] = []
    for change in pins.changes:
        where = f"pin: {change.file}:{change.line}: {change.name}"
        if change.before is None:  # a base image followed by tag until now
            lines.append(f"{where} pinned to {change.after}")
        else:
            downgrade = " (downgrade)" if change.downgrade else ""
            lines.append(f"{where} {change.before} -> {change.after}{downgrade}")
    for unpinned in pins.unpinned:
        lines.append(
            f"warning: {unpinned.file}:{unpinned.line}: {unpinned.manager} package "
            f"{unpinned.name} is not pinned"
        )
    for note in pins.notes:
        lines.append(f"note: {pins.dockerfile}: {note}")
    for error in pins.errors:
        where = "" if error.startswith(f"{pins.dockerfile}:") else f"{pins.dockerfile}: "
        lines.append(f"error: {where}{error}")
    return lines


class PlainProgress:
    """Progress as one line per step (``serve: compiled in 2.4s (unchanged)``), for logs and
    pipes, where a redrawn table would be noise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # compile threads report at once: whole lines only

    def __call__(self, event: ProgressEvent, /) -> None:
        with self._lock:
            self._stream.write(event.line() + "\n")
            self._stream.flush()


class LiveProgress:
    """Progress as a table redrawn in place on a terminal: one row per environment, with
    its current step and how long it has been at it, and the steps it finished."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self._lock = threading.Lock()
        self._order: list[str] = []
        self._current: dict[str, ProgressEvent] = {}
        self._since: dict[str, float] = {}
        self._finished: dict[str, list[str]] = {}
        self._failed: set[str] = set()
        self._started = time.monotonic()
        self._closing = False
        self._live: Live = Live(
            console=console, get_renderable=self._table, refresh_per_second=4, transient=False
        )

    def __call__(self, event: ProgressEvent, /) -> None:
        with self._lock:
            name = event.environment
            if name not in self._current:
                self._order.append(name)
                self._finished[name] = []
            if event.finished:
                self._finished[name].append(event.describe())
                if event.state == "failed":
                    self._failed.add(name)
            elif self._current.get(name) != event:
                self._since[name] = time.monotonic()
            self._current[name] = event
        self._live.refresh()

    def _table(self) -> Table:
        from rich.table import Table

        elapsed = time.monotonic() - self._started
        table = Table(title=f"lockwarden run · {elapsed:.0f}s", title_justify="left")
        for column in ("environment", "now", "done"):
            table.add_column(column)
        with self._lock:
            for name in self._order:
                event = self._current[name]
                now = event.describe()
                if event.state == "running":
                    now += f" {time.monotonic() - self._since[name]:.0f}s"
                elif event.finished:
                    now = "done" if self._closing else "waiting"
                style = "red" if name in self._failed else ""
                table.add_row(name, now, " · ".join(self._finished[name]), style=style)
        return table

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing = True  # the last drawing: every step that finished is done
        self._live.stop()
