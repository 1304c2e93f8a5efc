"""Replay the compile options recorded in an existing lock instead of guessing them.

A lock's header records the command that produced it (``pip-compile --generate-hashes
--output-file=x.txt x.in``). Recompiling with different flags would silently drop hashes,
markers or the unsafe section; Dependabot's guessing is exactly how those get lost. So the
recorded flags are replayed, translated when the environment switched tools, and only the
options Lockwarden manages itself (output file, upgrade mode, verbosity) are replaced.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from bot.locks.lockfile import Lockfile

_COMMAND_INTRO_RE = re.compile(r"(?:by|via) the following command:|To update, run:")

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

# Options both tools spell alike.
_SAME_SPELLING = (
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-strip-extras",
    "--emit-index-url",
    "--no-annotate",
    "--no-header",
    "--annotation-style",
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--extra",
    "--all-extras",
)
_COMMON_OPTIONS: dict[str, str | None] = {
    **{flag: flag for flag in _SAME_SPELLING},
    "-i": "--index-url",
    "-f": "--find-links",
}

# pip-tools flag -> uv equivalent (None: uv's default already, or no equivalent to keep).
_PIP_TOOLS_TO_UV: dict[str, str | None] = _COMMON_OPTIONS | {
    "--no-emit-index-url": None,
    "--no-emit-trusted-host": None,
    "--pre": "--prerelease=allow",
    "--resolver": None,
    "--reuse-hashes": None,
    "--no-reuse-hashes": None,
    "--no-emit-options": None,
    "--emit-options": None,
}
_UV_TO_PIP_TOOLS: dict[str, str | None] = _COMMON_OPTIONS | {
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
    recorded_command: str | None = None
    """The recorded command verbatim, when the same tool replays it: written back as the
    header's command so the regenerated header is the same text."""
    sources: tuple[str, ...] = ()
    """The source files the recorded command named, spelled as recorded (relative to the
    directory it ran in)."""
    recorded_python: str | None = None
    """The Python version the recorded command passed (uv ``--python-version``)."""


def replay_options(existing: Lockfile | None, tool: RequirementsTool) -> ReplayedOptions:
    """Options for recompiling ``existing`` with ``tool`` (defaults for a new lock)."""
    if existing is None:
        return ReplayedOptions(NEW_LOCK_FLAGS[tool], (), None, (), "defaults")
    header = existing.header
    recorded_tool = _recorded_tool(header.command)
    python = _short_python(header.python_version)
    if recorded_tool is None:
        custom = recorded_text(existing) if header.command else None
        inferred = _infer_from_body(existing, tool)
        return ReplayedOptions(inferred, (), custom, (), "inferred", python)
    split = _split_recorded(header.command, recorded_tool, existing)
    args, notes = split.args, split.notes
    if recorded_tool != tool:
        args, more = _translate(args, recorded_tool, tool)
        notes = [_conversion_note(existing.path, recorded_tool, tool), *notes, *more]
    return ReplayedOptions(
        tuple(args),
        tuple(split.constraints),
        None,
        tuple(notes),
        "header",
        split.python or python,
        recorded_command=recorded_text(existing) if recorded_tool == tool else None,
        sources=tuple(split.sources),
        recorded_python=split.python,
    )


def recorded_text(existing: Lockfile) -> str | None:
    """The header's command line verbatim (spacing, quoting and option order as written)."""
    lines = existing.header.text.splitlines()
    intro = next((i for i, line in enumerate(lines) if _COMMAND_INTRO_RE.search(line)), None)
    if intro is None:
        return None
    for line in lines[intro + 1 :]:
        text = line.lstrip("#").strip()
        if text:
            return text
    return None


def _conversion_note(lock: str, source: RequirementsTool, target: RequirementsTool) -> str:
    return (
        f"{lock}: written by {source} (its header says so), now compiled with {target} as "
        f"'backend: {target}' asks; the header's options were translated, and the resolvers "
        "differ (uv pins packages pip-tools lists as unsafe, and may pick other versions); "
        f"remove 'backend: {target}' to keep {source}"
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


@dataclass
class _Recorded:
    args: list[str]
    constraints: list[str]
    notes: list[str]
    python: str | None
    sources: list[str]
    output: str | None


# Options that cannot be replayed, and why; each is named, with its value, in one note.
_NOT_REPLAYED = {
    "--cert": "a certificate path on the machine that wrote the lock; the operator's CA "
    "certificates are used instead",
    "--client-cert": "a certificate path on the machine that wrote the lock; configure the "
    "index's credentials for Lockwarden instead",
    "--pip-args": "arguments passed straight to pip are not replayed; put index and build "
    "options in the spec or in compile_args",
    "--config-file": "compilers run without configuration files; put the options in the "
    "config's compile_args",
    "--config": "compilers run without configuration files; put the options in the "
    "config's compile_args",
}
_LONG_FORMS = {"-i": "--index-url", "-f": "--find-links"}
_NONE_ARTEFACT = "pip-tools < 7.4 recorded unset options as the literal None"


def _split_recorded(
    command: tuple[str, ...], tool: RequirementsTool, existing: Lockfile
) -> _Recorded:
    tokens = list(command[3:] if tool == "uv" else command[1:])
    value_options = _VALUE_OPTIONS[tool]
    out = _Recorded([], [], [], None, [], None)
    skipped: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-":  # noqa: S105 - "-" is stdin
            out.sources.append(token)
            continue
        name, eq, value = token.partition("=")
        if not eq and name in value_options:
            if i >= len(tokens):
                out.notes.append(f"dropped {name}: the recorded command gives it no value")
                continue
            value, i = tokens[i], i + 1
        elif not eq and len(name) > 2 and name[:2] in value_options and name[1] != "-":
            name, value = name[:2], name[2:]  # -cfoo.txt
        _take(out, skipped, tool, name, value, bool(value or eq), existing)
    out.notes.extend(
        f"not replayed from the header: {', '.join(options)} ({reason})"
        for reason, options in skipped.items()
    )
    return out


def _take(
    out: _Recorded,
    skipped: dict[str, list[str]],
    tool: RequirementsTool,
    name: str,
    value: str,
    has_value: bool,
    existing: Lockfile,
) -> None:
    """File one recorded option: replayed, a constraint, the Python, or not replayed."""
    if tool == "pip-tools" and name == "-p":
        name = "--pre"  # pip-compile's -p; only uv's -p is --python
    # ``-i=url`` would give the value ``=url``: short forms are passed in their long form.
    name = _LONG_FORMS.get(name, name)
    spelled = f"{name}={value}" if has_value else name
    if name in _CONSTRAINT_OPTIONS:
        out.constraints.append(value)
    elif name in {"--python-version", "-p", "--python"}:
        out.python = _short_python(value) or out.python
    elif name in {"-o", "--output-file"}:
        out.output = value
    elif name in _NOT_REPLAYED:
        reason = _NONE_ARTEFACT if value == "None" else _NOT_REPLAYED[name]
        skipped.setdefault(reason, []).append(spelled)
    elif name in MANAGED_OPTIONS:
        pass  # set by Lockwarden on every run (mode, cache, verbosity)
    elif value == "None":
        skipped.setdefault(_NONE_ARTEFACT, []).append(spelled)
    elif tool == "pip-tools" and name == "--no-index" and not existing.index.find_links:
        # pip-tools 7.5+ records --no-index in headers it wrote with an index; replaying
        # it would make pip ignore every index and resolve nothing.
        out.notes.append("dropped --no-index: the lock lists no --find-links to resolve from")
    else:
        out.args.append(spelled)


def _translate(
    args: list[str], source: RequirementsTool, target: RequirementsTool
) -> tuple[list[str], list[str]]:
    table = _PIP_TOOLS_TO_UV if source == "pip-tools" else _UV_TO_PIP_TOOLS
    out: list[str] = []
    dropped: list[str] = []
    translated: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name not in table:
            dropped.append(arg)
            continue
        mapped = table[name]
        if mapped is None:
            dropped.append(arg)
            continue
        new = f"{mapped}={value}" if eq else mapped
        if new != arg:
            translated.append(f"{arg} -> {new}")
        out.append(new)
    notes = []
    if dropped:
        notes.append(
            f"dropped {', '.join(dropped)}: {source} options {target} does not take or "
            "does by default"
        )
    if translated:
        notes.append(f"translated for {target}: {', '.join(translated)}")
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


def replay_directory(existing: Lockfile | None, lock: str, spec: str) -> str:
    """The directory the recorded command ran in, relative to the repository (``""``: the
    root): the lock's directory or the nearest ancestor from which the recorded output file
    is the lock and a recorded source is the spec. Without a recorded command, the ``-r``
    annotations of the body stand in for the sources. The root when nothing fits."""
    if existing is None:
        return ""
    command = existing.header.command
    tool = _recorded_tool(command)
    output: str | None = None
    sources: tuple[str, ...] = ()
    if tool is not None:
        split = _split_recorded(command, tool, existing)
        output, sources = split.output, tuple(s for s in split.sources if s != "-")
        if output is None and tool == "pip-tools":
            output = _pip_compile_default_output(sources)
    if output == "-":  # written to stdout: says nothing about the directory
        output = None
    if not sources and output is None:
        sources = _annotated_sources(existing)
    if not sources and output is None:
        return ""
    for directory in _lock_ancestors(lock):
        fits_output = output is None or _join(directory, output) == lock
        fits_source = not sources or any(_join(directory, s) == spec for s in sources)
        if fits_output and fits_source:
            return directory
    return ""


def relative_to(directory: str, path: str) -> str:
    """A repository-relative ``path`` as seen from ``directory`` (repository-relative)."""
    return posixpath.relpath(path, directory or ".") if directory else path


def _pip_compile_default_output(sources: tuple[str, ...]) -> str | None:
    """pip-compile's output file when the command gave none: ``x.in`` -> ``x.txt``."""
    if not sources:
        return "requirements.txt"  # from requirements.in, setup.py or pyproject.toml
    if len(sources) == 1 and posixpath.basename(sources[0]) not in _METADATA_FILES:
        return posixpath.splitext(sources[0])[0] + ".txt"
    return posixpath.join(posixpath.dirname(sources[0]), "requirements.txt")


_METADATA_FILES = frozenset({"setup.py", "setup.cfg", "pyproject.toml"})


def _annotated_sources(existing: Lockfile) -> tuple[str, ...]:
    """``-r file`` sources named in the ``# via`` annotations."""
    found = (
        via[3:].strip()
        for entry in existing.requirements
        for via in entry.via
        if via.startswith("-r ")
    )
    return tuple(dict.fromkeys(v for v in found if v and v != "-"))


def _lock_ancestors(lock: str) -> list[str]:
    parts = PurePosixPath(lock).parent.parts
    return ["/".join(parts[:n]) for n in range(len(parts), -1, -1)]


def _join(directory: str, path: str) -> str | None:
    """``path`` (as recorded, relative to ``directory``) as a repository-relative path; None
    when it is absolute or climbs out of the repository."""
    if posixpath.isabs(path):
        return None
    joined = posixpath.normpath(posixpath.join(directory, path) if directory else path)
    return None if joined == ".." or joined.startswith("../") else joined
