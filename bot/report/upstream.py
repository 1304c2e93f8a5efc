"""Yanked pins and releases the release-age quarantine held back, in every report.

A yanked pin reads "serve: demo 2.0 is yanked on its index: broken wheel; move off it with
/lockwarden refresh --upgrade-package demo"; a held-back release "train: numpy 2.3.0 held
back (uploaded 2025-06-01 09:12 UTC, eligible 2025-06-04 09:12 UTC), locked 2.2.6". The
reason comes from the index and is escaped like any other outside text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.report.escape import code, one_line, text
from bot.results import HeldBack, RunResult, YankedPin

YANKED_TITLE = "### Yanked releases"
HELD_BACK_TITLE = "### Held back by the release-age quarantine"
YANKED = "{package} {version} is yanked on its index{reason}; move off it with a targeted refresh"
HELD_BACK = "{package} {version} held back (uploaded {uploaded}, eligible {eligible}){locked}"
PASSED = "taken despite the quarantine: {line}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def yanked_line(pin: YankedPin) -> str:
    reason = f": {one_line(pin.reason)}" if pin.reason else " (no reason given)"
    return YANKED.format(package=pin.package, version=pin.version, reason=reason)


def held_back_line(held: HeldBack) -> str:
    locked = f", locked {held.locked}" if held.locked else ", not in the lock"
    return HELD_BACK.format(
        package=held.package,
        version=held.version,
        uploaded=_when(held.uploaded),
        eligible=_when(held.eligible),
        locked=locked,
    )


def terminal_lines(result: RunResult) -> list[str]:
    """``serve: demo 2.0 is yanked ...``, one line each, for the terminal summary."""
    signals = result.signals
    lines = [f"{y.environment}: {yanked_line(y)}" for y in signals.yanked]
    lines += [f"{h.environment}: {held_back_line(h)}" for h in signals.held_back]
    lines += [PASSED.format(line=line) for line in signals.quarantine_passed]
    return lines


def markdown_section(result: RunResult) -> list[str]:
    """The yanked and held-back sections of the report, pull request body and check run;
    empty when there is nothing to say."""
    signals = result.signals
    parts: list[str] = []
    if signals.yanked:
        parts += ["", YANKED_TITLE, ""]
        parts += [
            f"- **{text(y.environment)}** ({code(y.lock)}): {text(yanked_line(y))}"
            for y in signals.yanked
        ]
    if signals.held_back or signals.quarantine_passed:
        parts += ["", HELD_BACK_TITLE, ""]
        parts += [
            f"- **{text(h.environment)}**: {text(held_back_line(h))}" for h in signals.held_back
        ]
        parts += [f"- {text(PASSED.format(line=one_line(p)))}" for p in signals.quarantine_passed]
    return parts


def upstream_json(result: RunResult) -> dict[str, Any]:
    """The ``yanked``, ``held_back`` and ``quarantine_passed`` keys of the JSON report's
    ``signals`` object (``docs/json-contract.md``)."""
    signals = result.signals
    return {
        "yanked": [
            {
                "environment": y.environment,
                "lock": y.lock,
                "package": y.package,
                "version": y.version,
                "reason": y.reason,
            }
            for y in signals.yanked
        ],
        "held_back": [
            {
                "environment": h.environment,
                "package": h.package,
                "locked": h.locked,
                "version": h.version,
                "uploaded": h.uploaded.isoformat(),
                "eligible": h.eligible.isoformat(),
            }
            for h in signals.held_back
        ],
        "quarantine_passed": list(signals.quarantine_passed),
    }
