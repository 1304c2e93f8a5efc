"""Replay the compile options recorded in an existing lock instead of guessing them.

A lock's header records the command that produced it (``pip-compile --generate-hashes
--output-file=x.txt x.in``). Recompiling with different flags would silently drop hashes,
markers or the unsafe section; Dependabot's guessing is exactly how those get lost. So the
recorded flags are replayed, translated when the environment switched tools, and only the
options Lockwarden manages itself (output file, upgrade mode, verbosity) are replaced.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from bot.locks.lockfile import Lockfile

RequirementsTool = Literal["pip-tools", "uv"]
"""Tools that write requirements-file locks (whose headers this module replays)."""

Tool = Literal["pip-tools", "uv", "poetry", "conda"]
"""Every lock backend."""

NEW_LOCK_FLAGS: dict[RequirementsTool, tuple[str, ...]] = {
    "pip-tools": ("--allow-unsafe", "--generate-hashes", "--strip-extras"),
    "uv": ("--allow-unsafe", "--generate-hashes", "--strip-extras"),
}

# Options that take a value, per tool (both spellings of the short forms).
_VALUE_OPTIONS: dict[RequirementsTool, frozenset[str]] = {
    "pip-tools": frozenset(
        {
            "-o",
            "--output-file",
            "-c",
            "--constraint",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "--trusted-host",
            "--resolver",
            "--annotation-style",
            "--unsafe-package",
            "--pip-args",
            "--cache-dir",
            "--cert",
            "--client-cert",
            "--build-deps-for",
            "--extra",
            "--max-rounds",
            "-P",
            "--upgrade-package",
            "--newline",
            "--no-emit-package",
            "--python-version",
            "--python-platform",
            "--python-implementation",
            "--abi",
            "--platform",
        }
    ),
    "uv": frozenset(
        {
            "-o",
            "--output-file",
            "-c",
            "--constraint",
            "--constraints",
            "-i",
            "--index-url",
            "--extra-index-url",
            "--index",
            "--default-index",
            "-f",
            "--find-links",
            "--annotation-style",
            "--cache-dir",
            "--extra",
            "-P",
            "--upgrade-package",
            "--python-version",
            "-p",
            "--python",
            "--python-platform",
            "--resolution",
            "--prerelease",
            "--index-strategy",
            "--no-emit-package",
            "--exclude-newer",
            "--custom-compile-command",
            "--override",
            "--overrides",
            "--build-constraint",
            "--build-constraints",
            "--group",
            "--keyring-provider",
            "--config-file",
        }
    ),
}

# Options Lockwarden sets itself on every run: never replayed, refused in compile_args.
MANAGED_OPTIONS = frozenset(
    {
        "-o",
        "--output-file",
        "-U",
        "--upgrade",
        "-P",
        "--upgrade-package",
        "--dry-run",
        "-q",
        "--quiet",
        "-v",
        "--verbose",
        "-n",
        "--cache-dir",
        "--rebuild",
        "--refresh",
        "--custom-compile-command",
        "--no-config",
        "--config-file",
        "--python",
        "-p",
        "--python-version",
        "--cert",
        "--client-cert",
    }
)
_CONSTRAINT_OPTIONS = frozenset({"-c", "--constraint", "--constraints"})

# pip-tools flag -> uv equivalent (None: uv's default already, or no equivalent to keep).
_PIP_TOOLS_TO_UV: dict[str, str | None] = {
    "--generate-hashes": "--generate-hashes",
    "--allow-unsafe": "--allow-unsafe",
    "--strip-extras": "--strip-extras",
    "--no-strip-extras": "--no-strip-extras",
    "--no-emit-index-url": None,
    "--emit-index-url": "--emit-index-url",
    "--no-emit-trusted-host": None,
    "--no-annotate": "--no-annotate",
    "--no-header": "--no-header",
    "--annotation-style": "--annotation-style",
    "--index-url": "--index-url",
    "-i": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--find-links": "--find-links",
    "-f": "--find-links",
    "--extra": "--extra",
    "--all-extras": "--all-extras",
    "--pre": "--prerelease=allow",
    "--resolver": None,
    "--reuse-hashes": None,
    "--no-reuse-hashes": None,
    "--no-emit-options": None,
    "--emit-options": None,
}
_UV_TO_PIP_TOOLS: dict[str, str | None] = {
    "--generate-hashes": "--generate-hashes",
    "--allow-unsafe": "--allow-unsafe",
    "--strip-extras": "--strip-extras",
    "--no-strip-extras": "--no-strip-extras",
    "--emit-index-url": "--emit-index-url",
    "--no-annotate": "--no-annotate",
    "--no-header": "--no-header",
    "--annotation-style": "--annotation-style",
    "--index-url": "--index-url",
    "-i": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--find-links": "--find-links",
    "-f": "--find-links",
    "--extra": "--extra",
    "--all-extras": "--all-extras",
    "--universal": None,
    "--emit-find-links": None,
    "--emit-index-annotation": None,
    "--no-strip-markers": None,
}


@dataclass(frozen=True)
class ReplayedOptions:
    """What the next compile replays from the previous one."""

    args: tuple[str, ...]
    """Option tokens to pass to the compiler (``--opt=value`` form for values)."""
    constraints: tuple[str, ...]
    """``-c`` files the recorded command passed (repository-relative, as recorded)."""
    custom_command: str | None
    """The recorded command when it was not the compiler itself (``make lock``): kept
    verbatim in the new header so the project's own update path stays documented."""
    notes: tuple[str, ...]
    """Why a recorded option was not replayed, for the report."""
    source: Literal["header", "inferred", "defaults"]
    python_version: str | None = None
    """The Python version the lock was compiled for, when the header records one."""


def replay_options(existing: Lockfile | None, tool: RequirementsTool) -> ReplayedOptions:
    """Options for recompiling ``existing`` with ``tool`` (defaults for a new lock)."""
    if existing is None:
        return ReplayedOptions(NEW_LOCK_FLAGS[tool], (), None, (), "defaults")
    header = existing.header
    recorded_tool = _recorded_tool(header.command)
    python = _short_python(header.python_version)
    if recorded_tool is None:
        custom = shlex.join(header.command) if header.command else None
        inferred = _infer_from_body(existing, tool)
        return ReplayedOptions(inferred, (), custom, (), "inferred", python)
    args, constraints, notes, recorded_python = _split_recorded(
        header.command, recorded_tool, existing
    )
    if recorded_tool != tool:
        args, more = _translate(args, recorded_tool, tool)
        notes += more
    return ReplayedOptions(
        tuple(args), tuple(constraints), None, tuple(notes), "header", recorded_python or python
    )


def _short_python(version: str | None) -> str | None:
    """``"3.11.7"`` -> ``"3.11"``; anything that is not a CPython 3.x version -> None."""
    if version is None:
        return None
    match = re.match(r"^(3\.\d{1,2})(\.\d+)?$", version)
    return match.group(1) if match else None


def _recorded_tool(command: tuple[str, ...]) -> RequirementsTool | None:
    if not command:
        return None
    program = command[0].rsplit("/", 1)[-1]
    if program == "pip-compile":
        return "pip-tools"
    if program == "uv" and command[1:3] == ("pip", "compile"):
        return "uv"
    return None


def _split_recorded(
    command: tuple[str, ...], tool: RequirementsTool, existing: Lockfile
) -> tuple[list[str], list[str], list[str], str | None]:
    tokens = list(command[3:] if tool == "uv" else command[1:])
    value_options = _VALUE_OPTIONS[tool]
    args: list[str] = []
    constraints: list[str] = []
    notes: list[str] = []
    python: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-":  # noqa: S105 - "-" is stdin
            continue  # a source file: the config's spec is authoritative
        name, eq, value = token.partition("=")
        if not eq and name in value_options:
            if i >= len(tokens):
                notes.append(f"dropped {name}: the recorded command gives it no value")
                continue
            value, i = tokens[i], i + 1
        elif not eq and len(name) > 2 and name[:2] in value_options and name[1] != "-":
            name, value = name[:2], name[2:]  # -cfoo.txt
        if tool == "pip-tools" and name == "-p":
            name = "--pre"  # pip-compile's -p; only uv's -p is --python
        if name in _CONSTRAINT_OPTIONS:
            constraints.append(value)
            continue
        if name in {"--python-version", "-p", "--python"}:
            python = _short_python(value) or python
            continue
        if name in MANAGED_OPTIONS:
            continue
        if value == "None":
            # pip-tools < 7.4 recorded unset options as the literal string "None".
            notes.append(f"dropped {name}=None (an artefact of an old pip-tools header)")
            continue
        if tool == "pip-tools" and name == "--no-index" and not existing.index.find_links:
            # pip-tools 7.5+ records --no-index in headers it wrote with an index; replaying
            # it would make pip ignore every index and resolve nothing.
            notes.append("dropped --no-index: the lock lists no --find-links to resolve from")
            continue
        args.append(f"{name}={value}" if value or eq else name)
    return args, constraints, notes, python


def _translate(
    args: list[str], source: RequirementsTool, target: RequirementsTool
) -> tuple[list[str], list[str]]:
    table = _PIP_TOOLS_TO_UV if source == "pip-tools" else _UV_TO_PIP_TOOLS
    out: list[str] = []
    notes: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name not in table:
            notes.append(f"dropped {name}: {source} option with no {target} equivalent")
            continue
        mapped = table[name]
        if mapped is None:
            continue
        out.append(f"{mapped}={value}" if eq else mapped)
    return out, notes


def _infer_from_body(existing: Lockfile, tool: RequirementsTool) -> tuple[str, ...]:
    """For locks whose header names no compiler: keep what the file visibly relies on."""
    args: list[str] = []
    if any(r.unsafe for r in existing.requirements) or tool == "uv":
        args.append("--allow-unsafe")
    if existing.has_hashes:
        args.append("--generate-hashes")
    if not any(r.extras for r in existing.requirements):
        args.append("--strip-extras")
    return tuple(args)


def canonical_command(
    tool: RequirementsTool,
    args: tuple[str, ...],
    constraints: tuple[str, ...],
    lock: str,
    spec: str,
) -> str:
    """The command recorded in a header Lockwarden writes: what a person would run by hand."""
    options = sorted({*args, *(f"--constraint={c}" for c in constraints)})
    program = ["pip-compile"] if tool == "pip-tools" else ["uv", "pip", "compile"]
    return shlex.join([*program, *options, f"--output-file={lock}", spec])
