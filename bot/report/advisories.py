"""Advisories in every report: the run's section (fixed, left, introduced, blocked, ignored),
``lockwarden audit``'s text and JSON, and the audit as a pull request comment.

Wording is concrete: "fixes PYSEC-2099-11 (CVE-2099-1111) in hcore 1.0 -> 1.2", "leaves ...",
"introduces ...". Ids, names, versions and summaries come from the advisory service (reasons
and spec lines from the repository) and each is escaped like any other outside text; the
words and arrows around them are ours and go into Markdown as they are (``→``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.report.escape import code, one_line, text
from bot.results import Advisory, EnvironmentAdvisories, IgnoredAdvisory, RunResult

if TYPE_CHECKING:  # every report imports this module; the audit's service is loaded on use
    from bot.advisories.audit import Audit, EnvironmentAudit

SECTION_TITLE = "### Advisories"
AUDIT_TITLE = "### Advisories of the locked versions"
NONE_FOUND = "No published advisory affects the locked versions."
NOT_CHECKED = "Advisories were not checked: {reason}"
BLOCKED = (
    "{advisory}: no fixed version ({fixed}) is allowed by {spec}: {requirement}; "
    "widen that requirement to take a fix"
)
NO_FIX = "no fixed version published yet"
IGNORED = "{advisory}: ignored ({reason}{until})"

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,80}")
"""An id that can go into a link as it is (the link is made from the id)."""

Moves = Mapping[tuple[str, str], str | None]
"""(environment, package) -> the version the run moved it to (None: removed)."""


@dataclass(frozen=True)
class Style:
    """How a line writes outside values: as they are for the terminal, escaped for
    Markdown; and which arrow (ours, never escaped) shows a move."""

    value: Callable[[str], str]
    quoted: Callable[[str], str]
    """A spec line as written, in backticks."""
    arrow: str


PLAIN = Style(lambda value: value, lambda value: f"`{value}`", "->")
MARKDOWN = Style(text, code, "→")


def advisory_name(advisory: Advisory, style: Style = PLAIN) -> str:
    """``PYSEC-2099-11 (CVE-2099-1111, GHSA-...) in hcore 1.0``."""
    v = style.value
    aliases = f" ({', '.join(map(v, advisory.aliases))})" if advisory.aliases else ""
    return f"{v(advisory.id)}{aliases} in {v(advisory.package)} {v(advisory.version)}"


def _fixed_by(advisory: Advisory, style: Style = PLAIN) -> str:
    if not advisory.fixed_versions:
        return NO_FIX
    return f"fixed in {', '.join(map(style.value, advisory.fixed_versions))}"


def change_lines(env: EnvironmentAdvisories, moves: Moves, style: Style = PLAIN) -> list[str]:
    """One line per advisory the run fixed, left or introduced, then blocked and ignored
    ones: the same words in the terminal and in Markdown (``style`` escapes the values)."""
    v = style.value
    lines = []
    for a in env.fixed:
        after = moves.get((env.environment, a.package))
        to = f" {style.arrow} {v(after)}" if after else " (removed)"
        lines.append(f"fixes {advisory_name(a, style)}{to}")
    lines += [f"leaves {advisory_name(a, style)} ({_fixed_by(a, style)})" for a in env.left]
    lines += [
        f"introduces {advisory_name(a, style)} ({_fixed_by(a, style)})" for a in env.introduced
    ]
    lines += [
        BLOCKED.format(
            advisory=v(b.advisory.id),
            fixed=", ".join(map(v, b.advisory.fixed_versions)),
            spec=v(b.spec),
            requirement=style.quoted(b.requirement),
        )
        for b in env.blocked
    ]
    lines += [_ignored_line(i, style) for i in env.ignored]
    return lines


def _ignored_line(ignored: IgnoredAdvisory, style: Style = PLAIN) -> str:
    until = f", until {style.value(ignored.until)}" if ignored.until else ""
    return IGNORED.format(
        advisory=advisory_name(ignored.advisory, style),
        reason=style.value(ignored.reason),
        until=until,
    )


def run_moves(result: RunResult) -> dict[tuple[str, str], str | None]:
    """Where the run moved each package of each environment (from the lock diffs)."""
    return {
        (r.name, c.name): c.after
        for r in result.compiled.results
        if r.diff is not None
        for c in r.diff.changes
    }


def terminal_lines(result: RunResult) -> list[str]:
    """The run's advisories for the terminal summary: ``serve: fixes ...``, and notes."""
    moves = run_moves(result)
    lines = [
        f"{env.environment}: {line}"
        for env in result.signals.advisories
        for line in change_lines(env, moves)
    ]
    lines += [f"note: {note}" for note in result.signals.notes]
    return lines


def markdown_section(result: RunResult) -> list[str]:
    """The run's advisories section for the report, pull request body and check run; empty
    when there is nothing to say."""
    moves = run_moves(result)
    body: list[str] = []
    for env in result.signals.advisories:
        lines = change_lines(env, moves, MARKDOWN)
        if lines:
            body += [f"**{text(env.environment)}** ({code(env.lock)})", ""]
            body += [f"- {line}" for line in lines] + [""]
    body += [f"> [!NOTE]\n> {text(one_line(note))}\n" for note in result.signals.notes]
    return ["", SECTION_TITLE, "", *body] if body else []


def advisory_json(advisory: Advisory) -> dict[str, Any]:
    return {
        "id": advisory.id,
        "aliases": list(advisory.aliases),
        "package": advisory.package,
        "version": advisory.version,
        "fixed_versions": list(advisory.fixed_versions),
        "summary": advisory.summary,
        "link": advisory.link,
    }


def _ignored_json(ignored: Iterable[IgnoredAdvisory]) -> list[dict[str, Any]]:
    return [{**advisory_json(i.advisory), "reason": i.reason, "until": i.until} for i in ignored]


def signals_json(result: RunResult) -> dict[str, Any]:
    """The ``signals`` object of the JSON report (``docs/json-contract.md``)."""
    moves = run_moves(result)
    return {
        "advisories": [
            {
                "environment": env.environment,
                "lock": env.lock,
                "fixed": [
                    {**advisory_json(a), "to": moves.get((env.environment, a.package))}
                    for a in env.fixed
                ],
                "left": [advisory_json(a) for a in env.left],
                "introduced": [advisory_json(a) for a in env.introduced],
                "blocked": [
                    {"id": b.advisory.id, "spec": b.spec, "requirement": b.requirement}
                    for b in env.blocked
                ],
                "ignored": _ignored_json(env.ignored),
            }
            for env in result.signals.advisories
        ],
        "notes": list(result.signals.notes),
    }


def audit_json(audit: Audit) -> dict[str, Any]:
    """``lockwarden audit --json``'s document (``docs/json-contract.md``)."""
    return {
        "service": audit.service,
        "checked": audit.checked,
        "exit_status": audit.exit_status,
        "environments": [
            {
                "environment": env.environment,
                "lock": env.lock,
                "packages": env.packages,
                "advisories": [advisory_json(a) for a in env.advisories],
                "ignored": _ignored_json(env.ignored),
                "note": env.note,
            }
            for env in audit.environments
        ],
        "notes": list(audit.notes),
    }


def _audit_lines(env: EnvironmentAudit, checked: bool) -> list[str]:
    if env.note is not None:
        return [f"not audited: {env.note}"]
    if not checked:
        return ["not checked (see the note below)"]
    lines = [
        f"{advisory_name(a)}: {a.summary} ({_fixed_by(a)}) {a.link}".replace("  ", " ")
        for a in env.advisories
    ]
    lines += [_ignored_line(i) for i in env.ignored]
    return lines or ["no advisories"]


def render_audit_text(audit: Audit) -> str:
    """``lockwarden audit``'s terminal output: per environment, one line per advisory."""
    lines = [f"advisories from {audit.service}"]
    for env in audit.environments:
        lines.append(f"{env.environment} ({env.lock}):")
        lines += [f"  {line}" for line in _audit_lines(env, audit.checked)]
    lines += [f"note: {note}" for note in audit.notes]
    lines.append(_audit_total(audit))
    return "\n".join(lines)


def _audit_total(audit: Audit) -> str:
    if not audit.checked:
        return "advisories were not checked (exit status 2)"
    n = audit.found
    return f"{n} advisor{'ies' if n != 1 else 'y'} found" if n else NONE_FOUND


def render_audit_comment(audit: Audit) -> str:
    """The audit as a pull request comment (``/lockwarden audit``): a list per environment,
    ignored advisories apart, and what could not be checked."""
    parts = [AUDIT_TITLE, ""]
    for note in audit.notes:
        parts += [f"> [!WARNING]\n> {text(one_line(note))}", ""]
    for env in audit.environments:
        parts += [f"**{text(env.environment)}** ({code(env.lock)})", ""]
        if env.note is not None or not audit.checked:
            parts += [f"- {text(_audit_lines(env, audit.checked)[0])}", ""]
            continue
        parts += [_advisory_item(a) for a in env.advisories]
        parts += [f"- {_ignored_line(i, MARKDOWN)}" for i in env.ignored]
        if not env.advisories and not env.ignored:
            parts.append("- no advisories")
        parts.append("")
    parts.append(text(_audit_total(audit)))
    return "\n".join(parts).rstrip() + "\n"


def _advisory_item(advisory: Advisory) -> str:
    safe = _SAFE_ID.fullmatch(advisory.id) and advisory.link.startswith("https://")
    link = f" ([details]({advisory.link}))" if safe else ""
    summary = f": {text(one_line(advisory.summary))}" if advisory.summary else ""
    name, fixed = advisory_name(advisory, MARKDOWN), _fixed_by(advisory, MARKDOWN)
    return f"- {name}{summary} ({fixed}){link}"
