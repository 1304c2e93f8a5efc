"""Markdown report: the summary, one collapsible section per environment, warnings first.

This is the body of the pull request later on, so it must read well on GitHub.
"""

from __future__ import annotations

from bot.locks.diff import LockDiff, PackageChange, TextChange, describe_text_change
from bot.report import messages
from bot.report.advisories import markdown_section
from bot.report.escape import code, fenced, html, text
from bot.report.links import release_url
from bot.report.upstream import markdown_section as upstream_section
from bot.results import ImageResult, LockResult, RunResult, TestResult


def render_markdown(result: RunResult) -> str:
    results = result.compiled.results
    index = result.config.config.index_url
    repinned = {env for p in result.image_pins if p.changes for env in p.environments}
    upgrade = code("--upgrade-package " + " ".join(result.mode.packages))
    mode = messages.MODE[result.mode.kind].format(packages=upgrade)
    parts = [
        messages.TITLE.format(repo=code(result.repo)),
        "",
        messages.SUMMARY_LINE.format(
            mode=mode,
            total=len(results),
            s="" if len(results) == 1 else "s",
            # A Dockerfile whose pins moved changes its environments' images too.
            changed=sum(r.status == "changed" or r.name in repinned for r in results),
            failed=sum(r.status == "failed" for r in results),
            dry_run=messages.DRY_RUN_SUFFIX if result.dry_run else "",
        ),
        "",
    ]
    hash_only = _hash_only_items(results)
    if hash_only:
        parts += [messages.HASH_ONLY_WARNING.format(items=", ".join(hash_only)), ""]
    gaps = [
        messages.WHEEL_GAP_ITEM.format(
            requirement=code(f"{g.package}=={g.version}"),
            platform=text(g.platform),
            sdist=messages.WHEEL_GAP_SDIST if g.sdist else messages.WHEEL_GAP_NOTHING,
        )
        + f" ({text(r.name)})"
        for r in results
        for g in r.wheel_gaps
    ]
    if gaps:
        parts += [messages.WHEEL_GAPS_WARNING.format(items=", ".join(gaps)), ""]
    parts.append(messages.SUMMARY_HEADER)
    parts += [
        messages.SUMMARY_ROW.format(
            name=code(r.name, table=True),
            status=messages.STATUS_ICON[r.status],
            changes=change_summary(r.diff, r.old_text, r.new_text)
            if r.status != "failed"
            else text(r.error or ""),
            compile_s=r.compile_s,
        )
        for r in results
    ]
    parts.append("")
    for r in results:
        if r.status != "unchanged" or r.notes:
            parts.append(_environment_section(r, index))
    parts += markdown_section(result)
    parts += upstream_section(result)
    parts += _pins_section(result)
    parts += _images_section(result)
    if result.compiled.consistency:
        parts += ["", messages.CONSISTENCY_TITLE, "", messages.CONSISTENCY_HEADER]
        for issue in result.compiled.consistency:
            parts.append(
                messages.CONSISTENCY_ROW.format(
                    package=code(issue.package, table=True),
                    versions=", ".join(text(f"{env} {ver}") for env, ver in issue.versions),
                    rule=messages.CONSISTENCY_REQUIRED
                    if issue.required
                    else messages.CONSISTENCY_INFO,
                )
            )
    return "\n".join(parts).rstrip() + "\n"


def change_summary(
    diff: LockDiff | None, old_text: str | None = None, new_text: str | None = None
) -> str:
    """Counts per change type; for a file whose bytes changed but no package did, what
    changed instead (header only, annotations only, a format migration): never "none"."""
    textual = describe_text_change(old_text, new_text)
    if diff is None or not diff.changes:
        return text_change_summary(textual) if textual is not None else messages.NO_CHANGES
    counts = diff.counts()
    parts = [messages.CHANGE_COUNTS[kind].format(n=n) for kind, n in counts.items() if n]
    if textual is not None and textual.kind == "format-migration":
        parts.append(text_change_summary(textual))
    return ", ".join(parts)


def text_change_summary(change: TextChange) -> str:
    return messages.TEXT_CHANGE[change.kind].format(detail=change.detail or "")


def _hash_only_items(results: tuple[LockResult, ...]) -> list[str]:
    """Each possible re-upload, named with its environment and its Poetry groups or the
    exported file it is in."""
    items = []
    for r in results:
        found = [(c, "") for c in (r.diff.hash_only if r.diff else ())]
        found += [
            (c, messages.HASH_ONLY_OUTPUT.format(path=code(o.path)))
            for o in r.outputs
            for c in (o.diff.hash_only if o.diff else ())
        ]
        for c, where in found:
            if c.groups and not where:
                where = messages.HASH_ONLY_GROUPS.format(groups=text(", ".join(c.groups)))
            items.append(
                messages.HASH_ONLY_ITEM.format(
                    requirement=code(f"{c.name}=={c.after}"), env=code(r.name), where=where
                )
            )
    return items


def _environment_section(r: LockResult, index: str | None) -> str:
    summary = (
        (r.error or "") if r.status == "failed" else change_summary(r.diff, r.old_text, r.new_text)
    )
    lines = [
        messages.ENV_SECTION_OPEN.format(
            open=" open" if r.status == "failed" else "",
            name=html(r.name),
            lock=html(r.lock),
            summary=html(summary),
        )
    ]
    if r.constrained_by:
        lines.append(
            messages.ENV_CONSTRAINED.format(upstream=", ".join(code(u) for u in r.constrained_by))
        )
    if r.status == "failed":
        lines.append(
            messages.FAILED_BODY.format(
                error=text(r.error or ""),
                output=fenced(r.tool_output or "(no output)"),
            )
        )
    elif r.diff and r.diff.changes:
        lines.append(messages.CHANGES_HEADER)
        lines += [_change_row(c, index) for c in r.diff.changes]
    for output in r.outputs if r.status != "failed" else ():
        if not output.changed:
            continue
        lines += [
            "",
            messages.OUTPUT_TITLE[output.kind].format(
                path=code(output.path),
                platform=text(output.platform or ""),
                summary=change_summary(output.diff, output.old_text, output.new_text),
            ),
        ]
        if output.diff and output.diff.changes:
            lines += ["", messages.CHANGES_HEADER]
            lines += [_change_row(c, index) for c in output.diff.changes]
    if r.wheels_unchecked:
        lines.append("")
        lines += [
            messages.NOTES_ITEM.format(note=text(messages.WHEELS_UNCHECKED.format(reason=reason)))
            for reason in r.wheels_unchecked
        ]
    if r.notes:
        lines.append("")
        lines += [messages.NOTES_ITEM.format(note=text(n)) for n in r.notes]
    lines.append(messages.ENV_SECTION_CLOSE)
    return "\n".join(lines)


def _change_row(c: PackageChange, index: str | None) -> str:
    url = release_url(c.name, c.after or c.before, index)
    marker = f" ; {code(c.marker, table=True)}" if c.marker else ""
    change = f"⚠️ **{c.change}**" if c.change == "hash-only" else text(c.change)
    context = ""
    if c.groups_before is not None:
        context += messages.GROUPS_MOVED.format(
            before=text(", ".join(c.groups_before) or "none"),
            after=text(", ".join(c.groups) or "none"),
        )
    elif c.groups:
        context += messages.GROUPS_TAG.format(groups=text(", ".join(c.groups)))
    context += _files_context(c)
    if c.marker_before is not None or c.change == "marker":
        context += messages.MARKER_CHANGED.format(
            before=code(c.marker_before or "none", table=True),
            after=code(c.marker or "none", table=True),
        )
    if c.build_before is not None or c.build_after is not None:
        context += messages.BUILD_CHANGED.format(
            before=code(str(c.build_before), table=True), after=code(str(c.build_after), table=True)
        )
    return messages.CHANGE_ROW.format(
        package=f"[{text(c.name)}]({url}){marker}{context}",
        change=change,
        before=code(c.before, table=True) if c.before else "",
        after=code(c.after, table=True) if c.after else "",
        kind=text(c.kind or ""),
        direct=messages.DIRECT if c.direct else messages.TRANSITIVE,
    )


def _files_context(c: PackageChange) -> str:
    """How the files of an unchanged version changed: re-hashed, added, or replaced."""
    added, removed = len(c.hashes_added), len(c.hashes_removed)
    if c.change == "hash-only" and c.files_changed:
        return messages.FILES_REHASHED.format(files=", ".join(code(f) for f in c.files_changed))
    if c.change == "hash-only":
        return messages.HASHES_REPLACED.format(added=added, removed=removed)
    if c.change == "files-added":
        return messages.FILES_ADDED.format(added=added)
    if c.change == "files-changed":
        return messages.FILES_CHANGED.format(added=added, removed=removed)
    return ""


def _images_section(result: RunResult) -> list[str]:
    if not result.images:
        return []
    tests = {t.name: t for t in result.tests}
    parts = ["", messages.IMAGES_TITLE, ""]
    warnings = [
        messages.REPRODUCIBILITY_WARNING.format(
            name=code(i.name), differences=text("; ".join(i.differences))
        )
        for i in result.images
        if i.reproducible is False
    ]
    for warning in warnings:
        parts += [warning, ""]
    parts.append(messages.IMAGES_HEADER)
    parts += [_image_row(image, tests.get(image.name)) for image in result.images]
    for image in result.images:
        if image.status == "failed":
            parts += ["", _build_failure(image)]
    for test in result.tests:
        if test.status == "skipped" and test.install_check.status == "skipped":
            continue
        parts += ["", _test_details(test)]
    return parts + _findings(result.images)


def _image_row(image: ImageResult, test: TestResult | None) -> str:
    """The image's row in the images table: skipped, failed, or before/after."""
    if image.status == "skipped":
        return messages.IMAGE_SKIPPED_ROW.format(
            name=code(image.name, table=True), reason=text(image.reason or "")
        )
    if image.status == "failed" or image.after is None:
        return messages.IMAGE_FAILED_ROW.format(
            name=code(image.name, table=True), reason=text(image.reason or "")
        )
    before, after = image.before, image.after
    return messages.IMAGES_ROW.format(
        name=code(image.name, table=True),
        before=(_digest(before.repo_digest or before.image_id) if before else "")
        + (messages.CACHED_SUFFIX if image.before_cached else ""),
        after=_digest(after.repo_digest or after.image_id),
        size=_size(after.size),
        delta=_size_delta(before.size if before else None, after.size),
        layers=len(after.layers),
        reproducible=messages.REPRODUCIBLE[image.reproducible],
        tests=messages.TEST_STATUS[test.status] if test else "",
    )


def _build_failure(image: ImageResult) -> str:
    """A failed build's error and the tail of its log."""
    return messages.BUILD_FAILED_BODY.format(
        name=html(image.name),
        error=text(image.reason or ""),
        log=fenced(image.log_tail or "(no output)"),
    )


def _test_details(test: TestResult) -> str:
    """An image's install check, ``pip check`` and tests, with their logs."""
    return messages.TESTS_BODY.format(
        open="" if test.ok else " open",
        name=html(test.name),
        tests=messages.TESTS_SKIPPED.format(reason=html(test.reason or "not run"))
        if test.status == "skipped"
        else messages.TESTS_RAN.format(
            status=messages.TEST_STATUS[test.status], duration=test.duration_s
        ),
        install=messages.TEST_STATUS[test.install_check.status],
        pip_check=messages.TEST_STATUS[test.pip_check.status],
        log=fenced("\n".join(x for x in _test_logs(test) if x) or test.reason or "(no output)"),
    )


def _findings(images: tuple[ImageResult, ...]) -> list[str]:
    """The Dockerfile findings of every image, as a table (nothing when there are none)."""
    findings = [f for i in images for f in i.findings]
    if not findings:
        return []
    return ["", messages.FINDINGS_TITLE, "", messages.FINDINGS_HEADER] + [
        messages.FINDING_ROW.format(
            where=code(f"{f.file}:{f.line}", table=True),
            rule=text(f.rule),
            severity=text(f.severity),
            message=text(f.message),
        )
        for f in findings
    ]


def _pins_section(result: RunResult) -> list[str]:
    """Base-image digests and OS package pins: what moved, what is unpinned, what failed."""
    pins = [p for p in result.image_pins if p.changes or p.unpinned or p.errors or p.notes]
    if not pins:
        return []
    parts = ["", messages.PINS_TITLE, ""]
    for error in (e for p in pins for e in p.errors):
        parts += [messages.PINS_ERROR.format(error=text(error)), ""]
    for note in dict.fromkeys(n for p in pins for n in p.notes):
        parts += [messages.PINS_NOTE.format(note=text(note)), ""]
    changes = [c for p in pins for c in p.changes]
    if changes:
        parts.append(messages.PINS_HEADER)
        for c in changes:
            what = (
                messages.PINS_OS_PACKAGE.format(
                    manager=text(c.manager or ""), name=code(c.name, table=True)
                )
                if c.kind == "os-package"
                else messages.PINS_BASE_IMAGE.format(name=code(c.name, table=True))
            )
            parts.append(
                messages.PINS_ROW.format(
                    where=code(f"{c.file}:{c.line}", table=True),
                    what=what,
                    before=code(_short(c.before), table=True) if c.before else "",
                    after=(code(_short(c.after), table=True) if c.after else "")
                    + (messages.PINS_DOWNGRADE if c.downgrade else ""),
                )
            )
        parts.append("")
    unpinned = [u for p in pins for u in p.unpinned]
    if unpinned:
        items = ", ".join(
            f"{code(u.name)} ({text(u.manager)}, {code(f'{u.file}:{u.line}')})" for u in unpinned
        )
        parts += [messages.PINS_UNPINNED.format(items=items), ""]
    unpinnable = [i for p in pins for i in p.unpinnable_images]
    if unpinnable:
        items = ", ".join(code(i) for i in unpinnable)
        parts += [messages.PINS_UNPINNABLE.format(items=items), ""]
    return parts


def _short(value: str) -> str:
    """Digests shortened like the image table's; versions as they are."""
    if value.startswith("sha256:"):
        return f"sha256:{value.split(':', 1)[1][:12]}"
    return value


def _test_logs(test: TestResult) -> tuple[str, ...]:
    """The tests' output; the checks' output too when something did not pass."""
    if test.ok:
        return (test.log_tail,)
    return (test.log_tail, test.install_check.log_tail, test.pip_check.log_tail)


def _digest(value: str) -> str:
    """``sha256:0123456789ab`` (or ``repo@sha256:0123456789ab``), enough to tell images apart."""
    name, at, digest = value.rpartition("@")
    short = digest.split(":", 1)[-1][:12]
    return code(f"{name}{at}sha256:{short}", table=True)


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _size_delta(before: int | None, after: int) -> str:
    if before is None:
        return "new"
    delta = after - before
    return f"{'+' if delta >= 0 else '-'}{abs(delta) / 1_000_000:.1f} MB"
