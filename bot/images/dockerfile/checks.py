"""Dockerfile checks for one environment, each located at ``file:line``.

Two sources of findings: Lockwarden's own rules (``LW...``, see ``RULES`` in
:mod:`bot.images.dockerfile.rules`), which know the environment's compiled lock, and
hadolint's generic rules (:mod:`bot.images.dockerfile.hadolint`). A file Docker would refuse
(not UTF-8, an unknown instruction, an unclosed heredoc...) gives one ``LW100`` finding.

A rule can be silenced for one instruction with a comment right above it::

    # lockwarden ignore=LW005,DL3008
    RUN apt-get install -y curl
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from bot.errors import LockwardenError
from bot.images import Finding, Severity
from bot.images.dockerfile import hadolint
from bot.images.dockerfile.rules import RULES, RuleChecker, finding
from bot.images.dockerfile.syntax import Dockerfile, Problem, decode_dockerfile, parse_dockerfile
from bot.sandbox import Sandbox

__all__ = ["RULES", "check_dockerfile"]


def check_dockerfile(
    path: Path,
    *,
    display_path: str,
    lock_path: str | None,
    lock_has_hashes: bool,
    severities: Mapping[str, Severity] | None = None,
    ignore: Collection[str] = (),
    run_hadolint: bool = True,
    sandbox: Sandbox | None = None,
) -> tuple[Finding, ...]:
    """Check one environment's Dockerfile; findings sorted by ``(line, rule)``.

    ``display_path`` names the file in findings; ``lock_path`` is the environment's lock,
    relative to the repository (``requirements/serve.txt``), None when not known (then any
    installed requirements ``.txt`` counts as the lock). ``severities`` overrides default
    severities by rule id (ours or hadolint's); rules in ``ignore`` are dropped.

    A file that is missing or cannot be opened raises ``LockwardenError``; one that cannot be
    parsed (not UTF-8, unknown instruction, unclosed heredoc...) gives one ``LW100``
    finding; a missing hadolint gives one ``LW000`` finding. hadolint reads repository
    content, so it runs in ``sandbox`` (by default one without bubblewrap, for a person's
    own checkout: the environment is still only an allow-list).
    """
    dockerfile = _load(path)
    findings: list[Finding] = []
    pragmas: dict[int, frozenset[str]] = {}
    if isinstance(dockerfile, Problem):
        findings.append(finding("LW100", display_path, dockerfile.line, dockerfile.message))
    else:
        instructions = dockerfile.instructions
        pragmas = {i.line: i.ignored("lockwarden") for i in instructions if i.pragmas}
        findings.extend(RuleChecker(display_path, lock_path, lock_has_hashes).check(instructions))
        if run_hadolint:
            runner = sandbox or Sandbox(isolated=False)
            findings.extend(hadolint.run_hadolint(path, display_path, ignore, dockerfile, runner))
    return _finish(findings, severities or {}, frozenset(ignore), pragmas)


def _load(path: Path) -> Dockerfile | Problem:
    """The parsed file, or the first reason Docker would refuse it."""
    text = decode_dockerfile(_read(path))
    if isinstance(text, Problem):
        return text
    dockerfile = parse_dockerfile(text)
    return dockerfile.problem or dockerfile


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise LockwardenError(f"{path}: no such Dockerfile") from exc
    except IsADirectoryError as exc:
        raise LockwardenError(f"{path}: is a directory, not a Dockerfile") from exc
    except OSError as exc:
        raise LockwardenError(f"{path}: cannot read the Dockerfile ({exc.strerror})") from exc


def _finish(
    findings: Iterable[Finding],
    severities: Mapping[str, Severity],
    ignore: frozenset[str],
    pragmas: Mapping[int, frozenset[str]],
) -> tuple[Finding, ...]:
    result: list[Finding] = []
    for item in findings:
        if item.rule in ignore or item.rule in pragmas.get(item.line, frozenset()):
            continue
        severity = severities.get(item.rule)
        if severity is not None:
            item = replace(item, severity=severity)
        if item not in result:
            result.append(item)
    return tuple(sorted(result, key=lambda f: (f.line, f.rule)))
