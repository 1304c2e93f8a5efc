"""The JSON contract of ``lockwarden run --json`` (documented in docs/json-contract.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bot.locks.diff import PackageChange, describe_text_change
from bot.report.advisories import signals_json
from bot.report.links import release_url
from bot.report.markdown import text_change_summary
from bot.report.upstream import upstream_json
from bot.results import DockerfilePins, ImageResult, LockResult, RunResult, TestResult

SCHEMA_VERSION = 1


def to_json(result: RunResult) -> dict[str, Any]:
    index = result.config.config.index_url
    images = {i.name: i for i in result.images}
    tests = {t.name: t for t in result.tests}
    return {
        "schema_version": SCHEMA_VERSION,
        "repo": result.repo,
        "mode": result.mode.kind,
        "upgrade_packages": list(result.mode.packages),
        "dry_run": result.dry_run,
        "config_source": result.config.source,
        "builder": result.builder,
        "environments": [
            _environment(r, index, images.get(r.name), tests.get(r.name))
            for r in result.compiled.results
        ],
        "consistency": [
            {
                "package": issue.package,
                "versions": dict(issue.versions),
                "required": issue.required,
            }
            for issue in result.compiled.consistency
        ],
        "image_pins": [_pins(p) for p in result.image_pins],
        "signals": {**signals_json(result), **upstream_json(result)},
        "written": list(result.written),
        "failed": result.failed,
        "timings": {"total_s": round(result.duration_s, 3)},
    }


def _environment(
    r: LockResult, index: str | None, image: ImageResult | None, test: TestResult | None
) -> dict[str, Any]:
    timings = {"compile_s": round(r.compile_s, 3)}
    if image is not None:
        timings["build_s"] = round(image.build_s, 3)
    if test is not None:
        timings["test_s"] = round(test.duration_s, 3)
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
        "text_change": _text_change(r.old_text, r.new_text),
        "platform": r.platform,
        "outputs": [
            {
                "path": o.path,
                "kind": o.kind,
                "platform": o.platform,
                "changed": o.changed,
                "changes": [_change(c, index) for c in (o.diff.changes if o.diff else ())],
                "text_change": _text_change(o.old_text, o.new_text),
            }
            for o in r.outputs
        ],
        "wheel_gaps": [
            {
                "package": g.package,
                "version": g.version,
                "platform": g.platform,
                "sdist": g.sdist,
                "index": g.index,
            }
            for g in r.wheel_gaps
        ],
        "wheels_unchecked": list(r.wheels_unchecked),
        "command": list(r.command),
        "notes": list(r.notes),
        "image": _image(image),
        "tests": _tests(test),
        # Every field of a finding is plain JSON.
        "lint": [asdict(f) for f in (image.findings if image else ())],
        "timings": timings,
    }


def _image(image: ImageResult | None) -> dict[str, Any] | None:
    if image is None:
        return None
    before, after = image.before, image.after
    return {
        "status": image.status,
        "reason": image.reason,
        "dockerfile": image.dockerfile,
        "before": before.image_id if before else None,
        "after": after.image_id if after else None,
        "size_before": before.size if before else None,
        "size_after": after.size if after else None,
        "layers": len(after.layers) if after else None,
        "reproducible": image.reproducible,
        "differences": list(image.differences),
        "pushed": {
            "before": before.repo_digest if before else None,
            "after": after.repo_digest if after else None,
        },
        "before_cached": image.before_cached,
        "log_tail": image.log_tail if image.status == "failed" else None,
    }


def _tests(test: TestResult | None) -> dict[str, Any] | None:
    if test is None:
        return None
    return {
        "status": test.status,
        "reason": test.reason,
        "duration_s": round(test.duration_s, 3),
        "log_tail": test.log_tail,
        "install_check": {
            "status": test.install_check.status,
            "log_tail": test.install_check.log_tail,
        },
        "pip_check": {"status": test.pip_check.status, "log_tail": test.pip_check.log_tail},
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
        "groups": list(c.groups),
        "groups_before": list(c.groups_before) if c.groups_before is not None else None,
        "build_before": c.build_before,
        "build_after": c.build_after,
        "marker_before": c.marker_before,
        "files_changed": list(c.files_changed),
    }


def _text_change(old_text: str | None, new_text: str | None) -> dict[str, Any] | None:
    """What changed in bytes when no package did (or a format migration beside them)."""
    change = describe_text_change(old_text, new_text)
    if change is None:
        return None
    return {"kind": change.kind, "summary": text_change_summary(change)}


def _pins(pins: DockerfilePins) -> dict[str, Any]:
    return {
        "dockerfile": pins.dockerfile,
        "environments": list(pins.environments),
        "changed": pins.changed,
        "changes": [
            {
                "kind": c.kind,
                "file": c.file,
                "line": c.line,
                "name": c.name,
                "manager": c.manager,
                "image": c.image,
                "from": c.before,
                "to": c.after,
                "downgrade": c.downgrade,
            }
            for c in pins.changes
        ],
        "unpinned": [
            {"file": u.file, "line": u.line, "manager": u.manager, "name": u.name}
            for u in pins.unpinned
        ],
        "unpinnable_images": list(pins.unpinnable_images),
        "errors": list(pins.errors),
        "notes": list(pins.notes),
    }


def dumps(result: RunResult) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=False) + "\n"
