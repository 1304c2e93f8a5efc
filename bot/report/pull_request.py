"""The pull request a refresh opens: title, body (the report plus rollback notes), the commit
message with its ledger trailers, and the check run's summary and annotations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.images import Finding
from bot.ledger import LedgerEntry, LockRecord, commit_message, trailers
from bot.report import messages
from bot.report.escape import code, fenced, html, text
from bot.report.markdown import render_markdown
from bot.results import RunResult

PR_MARKER = "<!-- lockwarden:pr -->"
# GitHub rejects bodies over 65,536 characters; leave room for the marker and the notice.
BODY_LIMIT = 65_000
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Rollback:
    base_branch: str
    base_sha: str
    commit_sha: str | None = None


def changed_environments(result: RunResult) -> list[str]:
    return [r.name for r in result.compiled.results if r.status == "changed"]


def pr_title(result: RunResult) -> str:
    names = ", ".join(changed_environments(result)) or "no changes"
    template = messages.PR_TITLE_FULL if result.mode.kind == "full" else messages.PR_TITLE
    return template.format(environments=names)


def lock_records(result: RunResult) -> list[LockRecord]:
    images = {i.name: i for i in result.images}
    tests = {t.name: t for t in result.tests}
    out = []
    for r in result.compiled.results:
        if r.status != "changed" or r.new_text is None:
            continue
        image = images.get(r.name)
        test = tests.get(r.name)
        digest = None
        if image is not None and image.after is not None:
            digest = image.after.repo_digest or image.after.image_id
        out.append(
            LockRecord(
                name=r.name,
                lock=r.lock,
                text=r.new_text,
                digest=digest,
                tests=test.status if test is not None else None,
                files=tuple(r.files().items()),
            )
        )
    return out


def commit_text(
    result: RunResult, *, edited: tuple[str, ...] = (), title: str | None = None
) -> str:
    records = lock_records(result)
    body = messages.COMMIT_BODY.format(
        environments=", ".join(r.name for r in records) or "no environment",
        mode=result.mode.kind,
    )
    if edited:
        body += "\n\n" + messages.COMMIT_EDITED.format(files=", ".join(sorted(edited)))
    return commit_message(title or pr_title(result), body, trailers(result.mode.kind, records))


def tests_failed(result: RunResult) -> bool:
    return any(not t.ok for t in result.tests)


def pr_body(
    result: RunResult, rollback: Rollback, *, check_url: str | None = None, notes: str = ""
) -> str:
    """The report, then ``notes`` and the rollback notes; collapsed, then cut, to fit
    GitHub's limit."""
    report = render_markdown(result)
    notes = (notes.rstrip() + "\n\n" if notes.strip() else "") + _rollback_section(result, rollback)
    failing = _failure_excerpt(result)
    body = "\n".join(part for part in (failing, report, notes, PR_MARKER) if part)
    if len(body) <= BODY_LIMIT:
        return body
    # Too long: collapse every section, then cut the report and point at the check run.
    report = report.replace("<details open>", "<details>")
    room = BODY_LIMIT - len(notes) - len(PR_MARKER) - len(failing) - 400
    if len(report) > room:
        pointer = messages.PR_TRUNCATED.format(where=check_url or "the lockwarden check run")
        cut = report[: max(0, room)].rsplit("\n", 1)[0]
        report = _close_blocks(cut) + "\n\n" + pointer
    return "\n".join(part for part in (failing, report, notes, PR_MARKER) if part)


YANK_REASON_LIMIT = 500
"""Characters of an index's yank reason quoted (the index, not the repository, writes it)."""


def yanked_notes(yanked: Iterable[tuple[str, str, str]]) -> str:
    """The section naming each (package, version, reason) yanked upstream that made this
    refresh, with the index's reason quoted as plain text; "" when there is none."""
    lines = []
    for package, version, reason in yanked:
        names = {"package": text(package), "version": text(version)}
        if reason.strip():
            quoted = text(reason.strip()[:YANK_REASON_LIMIT])
            lines.append(messages.PR_YANKED.format(**names, reason=quoted))
        else:
            lines.append(messages.PR_YANKED_NO_REASON.format(**names))
    if not lines:
        return ""
    return "\n".join([messages.PR_YANKED_TITLE, "", messages.PR_YANKED_INTRO, "", *lines])


def _close_blocks(text: str) -> str:
    """Close the code fence and the ``<details>`` a cut left open, so that what follows (the
    pointer, the rollback notes) is not swallowed by a collapsed section or a code block."""
    fenced = False
    depth = 0
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("<details"):
            depth += 1
        elif not fenced and line.startswith("</details>"):
            depth = max(0, depth - 1)
    closers = (["```"] if fenced else []) + ["</details>"] * depth
    return "\n\n".join([text, *closers]) if closers else text


def _failure_excerpt(result: RunResult) -> str:
    failed = [t for t in result.tests if not t.ok]
    if not failed:
        return ""
    names = ", ".join(text(t.name) for t in failed)
    lines = [messages.PR_TESTS_FAILED.format(environments=names)]
    for test in failed:
        tail = "\n".join(test.log_tail.splitlines()[-20:]) or "(no output)"
        lines.append(messages.PR_FAILURE_EXCERPT.format(name=html(test.name), log=fenced(tail)))
    return "\n".join(lines) + "\n"


def _rollback_section(result: RunResult, rollback: Rollback) -> str:
    """The commands that undo this pull request, before and after it is merged, and what
    each returns to: the default branch's locks, or the newest known-good set."""
    branch, base = code(rollback.base_branch), code(rollback.base_sha)
    example = code(f"/lockwarden rollback {_example_package(result)}")
    lines = [
        messages.ROLLBACK_TITLE,
        "",
        messages.ROLLBACK_BEFORE,
        "",
        messages.ROLLBACK_PACKAGE.format(command=example, branch=branch, sha=base),
        messages.ROLLBACK_ALL.format(branch=branch, sha=base),
        "",
        messages.ROLLBACK_AFTER,
        "",
        _known_good_line(result.known_good, rollback),
    ]
    if rollback.commit_sha:
        lines.append(
            messages.ROLLBACK_REVERT.format(command=code(f"git revert {rollback.commit_sha}"))
        )
    previous = [
        (i.name, i.before.repo_digest or i.before.image_id)
        for i in result.images
        if i.before is not None and i.status == "built"
    ]
    if previous:
        lines += ["", messages.ROLLBACK_IMAGES, ""]
        lines += [f"- {code(name)}: {code(digest)}" for name, digest in previous]
    return "\n".join(lines) + "\n"


def _example_package(result: RunResult) -> str:
    """A package this pull request changes, to show the command with; names come from a
    lock, so only a plain package name is used."""
    for lock in result.compiled.results:
        changes = lock.diff.changes if lock.diff is not None else ()
        for change in changes:
            if _PACKAGE_NAME.fullmatch(change.name):
                return change.name
    return "PACKAGE"


def _known_good_line(entry: LedgerEntry | None, rollback: Rollback) -> str:
    if entry is None:
        return messages.ROLLBACK_NO_KNOWN_GOOD.format(
            branch=code(rollback.base_branch), sha=rollback.base_sha
        )
    # A bare sha of the repository: GitHub links it to the commit (a code span would not).
    sha = entry.commit[:12] if _SHA.fullmatch(entry.commit) else code(entry.commit[:12])
    return messages.ROLLBACK_KNOWN_GOOD.format(sha=sha, date=text(entry.date[:10]))


def check_summary(result: RunResult) -> tuple[str, str]:
    """Title and summary of the ``lockwarden`` check run."""
    failed = [r.name for r in result.compiled.results if r.status == "failed"]
    failed += [t.name for t in result.tests if not t.ok]
    failed += [i.name for i in result.images if i.status == "failed"]
    if failed:
        title = messages.CHECK_FAILED.format(environments=", ".join(sorted(set(failed))))
    else:
        title = messages.CHECK_PASSED.format(count=len(changed_environments(result)))
    return title, render_markdown(result)


def lint_findings(result: RunResult) -> list[Finding]:
    return [f for i in result.images for f in i.findings]
