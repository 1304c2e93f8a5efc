"""The plain-text summary ``lockwarden run`` prints."""

from __future__ import annotations

from bot.pipeline.results import RunResult
from bot.report.markdown import change_summary


def render_summary(result: RunResult) -> str:
    rows = [("environment", "status", "changes", "compile")]
    for r in result.compiled.results:
        changes = change_summary(r.diff) if r.status != "failed" else (r.failure or "failed")
        rows.append((r.name, r.status, changes, f"{r.compile_s:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i == 3 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    for r in result.compiled.results:
        if r.status == "failed":
            lines.append("")
            lines.append(f"error: {r.name}: {r.error}")
            if r.tool_output:
                lines += [f"  | {line}" for line in r.tool_output.splitlines()]
        for note in r.notes:
            lines.append(f"note: {r.name}: {note}")
    for issue in result.compiled.consistency:
        kind = "error" if issue.required else "note"
        versions = ", ".join(f"{env} {ver}" for env, ver in issue.versions)
        lines.append(f"{kind}: {issue.package} differs across environments: {versions}")
    if result.dry_run:
        lines.append("dry run: nothing was written")
    elif result.written:
        lines.append("wrote " + ", ".join(result.written))
    return "\n".join(lines)
