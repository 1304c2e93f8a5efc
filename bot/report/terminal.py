"""The plain-text summary ``lockwarden run`` prints."""

from __future__ import annotations

from bot.report.markdown import change_summary
from bot.results import DockerfilePins, LockResult, RunResult


def render_summary(result: RunResult) -> str:
    rows = [("environment", "status", "changes", "compile")]
    for r in result.compiled.results:
        changes = (
            change_summary(r.diff, r.old_text, r.new_text)
            if r.status != "failed"
            else (r.failure or "failed")
        )
        rows.append((r.name, r.status, changes, f"{r.compile_s:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i == 3 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    for r in result.compiled.results:
        lines += _lock_lines(r)
    for pins in result.image_pins:
        lines += _pin_lines(pins)
    for issue in result.compiled.consistency:
        kind = "error" if issue.required else "note"
        versions = ", ".join(f"{env} {ver}" for env, ver in issue.versions)
        lines.append(f"{kind}: {issue.package} differs across environments: {versions}")
    if result.dry_run:
        lines.append("dry run: nothing was written")
    elif result.written:
        lines.append("wrote " + ", ".join(result.written))
    return "\n".join(lines)


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
    """A Dockerfile's refreshed pins, unpinned packages and errors."""
    lines: list[str] = []
    for change in pins.changes:
        lines.append(
            f"pin: {change.file}:{change.line}: {change.name} {change.before} -> {change.after}"
        )
    for unpinned in pins.unpinned:
        lines.append(
            f"warning: {unpinned.file}:{unpinned.line}: {unpinned.manager} package "
            f"{unpinned.name} is not pinned"
        )
    for error in pins.errors:
        lines.append(f"error: {pins.dockerfile}: {error}")
    return lines
