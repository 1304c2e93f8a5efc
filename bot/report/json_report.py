"""The JSON contract of ``lockwarden run --json`` (documented in the README)."""

from __future__ import annotations

import json
from typing import Any

from bot.locks.diff import PackageChange
from bot.pipeline.compile import LockResult
from bot.report.links import release_url
from bot.worker import RunResult

SCHEMA_VERSION = 1


def to_json(result: RunResult) -> dict[str, Any]:
    index = result.config.config.index_url
    return {
        "schema_version": SCHEMA_VERSION,
        "repo": result.repo,
        "mode": result.mode.kind,
        "upgrade_packages": list(result.mode.packages),
        "dry_run": result.dry_run,
        "config_source": result.config.source,
        "environments": [_environment(r, index) for r in result.compiled.results],
        "consistency": [
            {
                "package": issue.package,
                "versions": dict(issue.versions),
                "required": issue.required,
            }
            for issue in result.compiled.consistency
        ],
        "written": list(result.written),
        "failed": result.failed,
        "timings": {"total_s": round(result.duration_s, 3)},
    }


def _environment(r: LockResult, index: str | None) -> dict[str, Any]:
    return {
        "name": r.name,
        "spec": r.spec,
        "lock": r.lock,
        "backend": r.backend,
        "status": r.status,
        "error": r.error,
        "failure": r.failure,
        "tool_output": r.tool_output or None,
        "constrained_by": list(r.constrained_by),
        "changes": [_change(c, index) for c in (r.diff.changes if r.diff else ())],
        "command": list(r.command),
        "notes": list(r.notes),
        "timings": {"compile_s": round(r.compile_s, 3)},
    }


def _change(c: PackageChange, index: str | None) -> dict[str, Any]:
    return {
        "name": c.name,
        "from": c.before,
        "to": c.after,
        "change": c.change,
        "kind": c.kind,
        "direct": c.direct,
        "marker": c.marker,
        "hashes_added": len(c.hashes_added),
        "hashes_removed": len(c.hashes_removed),
        "url": release_url(c.name, c.after or c.before, index),
    }


def dumps(result: RunResult) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=False) + "\n"
