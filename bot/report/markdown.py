"""Markdown report: the summary, one collapsible section per environment, warnings first.

This is the body of the pull request later on, so it must read well on GitHub.
"""

from __future__ import annotations

from bot.locks.diff import LockDiff, PackageChange
from bot.pipeline.compile import LockResult
from bot.report import messages
from bot.report.links import release_url
from bot.worker import RunResult


def render_markdown(result: RunResult) -> str:
    results = result.compiled.results
    index = result.config.config.index_url
    mode = messages.MODE[result.mode.kind].format(packages=" ".join(result.mode.packages))
    parts = [
        messages.TITLE.format(repo=result.repo),
        "",
        messages.SUMMARY_LINE.format(
            mode=mode,
            total=len(results),
            s="" if len(results) == 1 else "s",
            changed=sum(r.status == "changed" for r in results),
            failed=sum(r.status == "failed" for r in results),
            dry_run=messages.DRY_RUN_SUFFIX if result.dry_run else "",
        ),
        "",
    ]
    hash_only = [
        messages.HASH_ONLY_ITEM.format(name=c.name, version=c.after, env=r.name)
        for r in results
        if r.diff
        for c in r.diff.hash_only
    ]
    if hash_only:
        parts += [messages.HASH_ONLY_WARNING.format(items=", ".join(hash_only)), ""]
    parts.append(messages.SUMMARY_HEADER)
    parts += [
        messages.SUMMARY_ROW.format(
            name=r.name,
            status=messages.STATUS_ICON[r.status],
            changes=change_summary(r.diff) if r.status != "failed" else _escape(r.error or ""),
            compile_s=r.compile_s,
        )
        for r in results
    ]
    parts.append("")
    for r in results:
        if r.status != "unchanged" or r.notes:
            parts.append(_environment_section(r, index))
    if result.compiled.consistency:
        parts += ["", messages.CONSISTENCY_TITLE, "", messages.CONSISTENCY_HEADER]
        for issue in result.compiled.consistency:
            parts.append(
                messages.CONSISTENCY_ROW.format(
                    package=issue.package,
                    versions=", ".join(f"{env} {ver}" for env, ver in issue.versions),
                    rule=messages.CONSISTENCY_REQUIRED
                    if issue.required
                    else messages.CONSISTENCY_INFO,
                )
            )
    return "\n".join(parts).rstrip() + "\n"


def change_summary(diff: LockDiff | None) -> str:
    if diff is None or not diff.changes:
        return messages.NO_CHANGES
    counts = diff.counts()
    return ", ".join(messages.CHANGE_COUNTS[kind].format(n=n) for kind, n in counts.items() if n)


def _environment_section(r: LockResult, index: str | None) -> str:
    summary = (r.error or "") if r.status == "failed" else change_summary(r.diff)
    lines = [
        messages.ENV_SECTION_OPEN.format(
            open=" open" if r.status == "failed" else "",
            name=r.name,
            lock=r.lock,
            summary=_escape(summary),
        )
    ]
    if r.constrained_by:
        lines.append(
            messages.ENV_CONSTRAINED.format(upstream=", ".join(f"`{u}`" for u in r.constrained_by))
        )
    if r.status == "failed":
        lines.append(
            messages.FAILED_BODY.format(
                error=_escape(r.error or ""),
                output=(r.tool_output or "(no output)").replace("```", "`\u200b``"),
            )
        )
    elif r.diff and r.diff.changes:
        lines.append(messages.CHANGES_HEADER)
        lines += [_change_row(c, index) for c in r.diff.changes]
    if r.notes:
        lines.append("")
        lines += [messages.NOTES_ITEM.format(note=_escape(n)) for n in r.notes]
    lines.append(messages.ENV_SECTION_CLOSE)
    return "\n".join(lines)


def _change_row(c: PackageChange, index: str | None) -> str:
    url = release_url(c.name, c.after or c.before, index)
    marker = f" ; `{c.marker}`" if c.marker else ""
    change = f"⚠️ **{c.change}**" if c.change == "hash-only" else c.change
    return messages.CHANGE_ROW.format(
        package=f"[{c.name}]({url}){marker}",
        change=change,
        before=f"`{c.before}`" if c.before else "",
        after=f"`{c.after}`" if c.after else "",
        kind=c.kind or "",
        direct=messages.DIRECT if c.direct else messages.TRANSITIVE,
    )


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
