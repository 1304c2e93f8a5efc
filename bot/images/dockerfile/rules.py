"""Lockwarden's own Dockerfile rules (``LW...``, see ``RULES``), which know the environment's
compiled lock: is the image installed from it, with hashes, with a layer that survives source
changes, and without the tools that produced it left behind.

The rules walk the instructions of :mod:`bot.images.dockerfile.syntax` and the simple commands
of :mod:`bot.images.dockerfile.shell`, keeping what each stage holds in
:mod:`bot.images.dockerfile.build_state`.

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

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bot.images import Finding, Severity
from bot.images.dockerfile.build_state import (
    ContextCopy,
    Copy,
    Run,
    Stage,
    clean_path,
    dir_like,
    is_glob,
    resolve_source,
    same_file,
)
from bot.images.dockerfile.shell import (
    APK_VALUE_LONG,
    APK_VALUE_SHORT,
    APT_VALUE_LONG,
    APT_VALUE_SHORT,
    Options,
    ShellCommand,
    join_path,
    parse_options,
    run_commands,
)
from bot.images.dockerfile.syntax import (
    Instruction,
    exec_form,
    split_flags,
    strip_heredoc_markers,
)

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

_PIP_RE = re.compile(r"^pip\d*(\.\d+)?$")
_PYTHON_RE = re.compile(r"^python\d*(\.\d+)?$")

# Options that take a value: pip and uv (install, sync and global options).
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

_PY_BUILD_TOOLS = frozenset({"pip-tools", "uv", "poetry", "pdm", "pipenv"})
_OS_BUILD_TOOLS = frozenset(
    {"build-essential", "build-base", "alpine-sdk", "gcc", "g++", "clang", "gfortran"}
    | {"cargo", "rustc", "rust"}
)
_OS_BUILD_TOOL_RE = re.compile(r"^(gcc|g\+\+|clang|gfortran)-[\d.]+$")
_PROJECT_TOOLS: Mapping[str, tuple[frozenset[str], frozenset[str], str]] = MappingProxyType(
    {
        "poetry": (
            frozenset(("install", "sync")),
            frozenset(("lock", "export", "update", "add")),
            "pyproject.toml and poetry.lock",
        ),
        "pipenv": (
            frozenset(("install", "sync")),
            frozenset(("lock", "update")),
            "Pipfile and Pipfile.lock",
        ),
    }
)
"""Project tools: (subcommands that install their own lock, that resolve, what they read)."""
_PIP_SELF = frozenset(("pip", "setuptools", "wheel"))
_SPEC_NAMES = frozenset(("pyproject.toml", "setup.py", "setup.cfg", "pipfile"))
_LOCKISH_NAMES = frozenset(
    ("uv.lock", "poetry.lock", "pdm.lock", "pipfile", "pipfile.lock", "pyproject.toml")
)
_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


ReqKind = Literal["lock", "spec", "other", "unknown"]


class RuleChecker:
    """Walks the instructions once, keeping each stage's state, and collects findings."""

    def __init__(self, display_path: str, lock_path: str | None, lock_has_hashes: bool) -> None:
        self.file = display_path
        self.lock = clean_path(lock_path) if lock_path else None
        self.lock_has_hashes = lock_has_hashes
        self.stages: list[Stage] = []
        self.findings: list[Finding] = []

    # ----------------------------------------------------------------- driving

    def check(self, instructions: Iterable[Instruction]) -> list[Finding]:
        for ins in instructions:
            if ins.keyword == "FROM":
                self._from(ins)
            elif not self.stages:
                continue  # ARG before the first FROM
            elif ins.keyword == "WORKDIR":
                stage = self.stages[-1]
                stage.workdir = join_path(stage.workdir, ins.words()[0].text)
            elif ins.keyword in ("ENV", "ARG"):
                self._env(ins)
            elif ins.keyword in ("COPY", "ADD"):
                self._copy(ins)
            elif ins.keyword == "RUN":
                self._run(ins)
        self._final()
        return self.findings

    def _add(self, rule: str, line: int, message: str) -> None:
        found = finding(rule, self.file, line, message)
        if found not in self.findings:
            self.findings.append(found)

    def _stage_named(self, ref: str) -> Stage | None:
        for stage in self.stages:
            if (stage.name and stage.name == ref.lower()) or str(stage.index) == ref:
                return stage
        return None

    def _from(self, ins: Instruction) -> None:
        words = [w.text for w in ins.words() if not w.text.startswith("--")]
        image = words[0] if words else ""
        name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        stage = Stage(len(self.stages), name, ins.line, self._stage_named(image))
        stage.inherit()
        if stage.parent is None and "astral-sh/uv" in image:
            stage.tools.setdefault("uv", ins.line)
        self.stages.append(stage)

    def _env(self, ins: Instruction) -> None:
        stage = self.stages[-1]
        words = [w.text for w in ins.words()]
        if ins.keyword == "ENV" and words and "=" not in words[0]:
            stage.env[words[0]] = " ".join(words[1:])
            return
        for word in words:
            key, eq, value = word.partition("=")
            if eq:
                stage.env[key] = value

    def _copy(self, ins: Instruction) -> None:
        stage = self.stages[-1]
        chars = strip_heredoc_markers(ins.arguments) if ins.heredocs else ins.arguments
        words = [w.text for w in exec_form(chars) or ins.words()]
        origin: Stage | str | None = None
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
        dest = join_path(stage.workdir, raw_dest)
        if ins.heredocs and not raw_sources:
            return
        remote = [s for s in raw_sources if "://" in s or s.startswith("git@")]
        local = tuple(clean_path(s, keep_slash=True) for s in raw_sources if s not in remote)
        dest_is_dir = (
            raw_dest.endswith("/")
            or raw_dest in (".", "./")
            or len(raw_sources) > 1
            or any(is_glob(s) for s in raw_sources)
        )
        stage.copies.append(Copy(ins.line, local, dest, dest_is_dir, origin))
        uv_image = isinstance(origin, str) and "astral-sh/uv" in origin
        uv_binary = any(posixpath.basename(s) in ("uv", "uvx") for s in local)
        if uv_image or (origin is not None and uv_binary):
            stage.tools.setdefault("uv", ins.line)
        if origin is None and local:
            stage.context_copies.append(ContextCopy(ins.line, ins.keyword, local))

    # ----------------------------------------------------------------- RUN

    def _run(self, ins: Instruction) -> None:
        stage = self.stages[-1]
        mounts: list[Copy] = []
        cache_mount = False
        for flag in split_flags(ins.arguments)[0]:
            if not flag.startswith("--mount="):
                continue
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
                dest = join_path(stage.workdir, target)
                mounts.append(Copy(ins.line, (clean_path(source),), dest, False, origin))
        commands = run_commands(ins, stage.workdir)
        run = Run(
            ins.line,
            stage,
            cache_mount,
            tuple(mounts),
            purges_pip_cache=any(_purges(c, "pip") for c in commands),
            purges_uv_cache=any(_purges(c, "uv") for c in commands),
        )
        for command in commands:
            self._command(run, command)

    def _command(self, run: Run, command: ShellCommand) -> None:
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
            self._python(run, command)
        elif _PIP_RE.match(name):
            self._pip(run, command, argv[1:], "pip")
        elif name == "uv":
            self._uv(run, command, argv[1:])
        elif name == "pip-compile":
            self._resolver(run, "pip-compile")
        elif name == "pip-sync":
            self._pip_sync(run, command, argv[1:])
        elif name in _PROJECT_TOOLS:
            self._project_tool(run, name, argv[1:])
        elif name in ("apt-get", "apt"):
            self._apt(run, name, argv[1:])
        elif name == "apk":
            self._apk(run, argv[1:])

    def _python(self, run: Run, command: ShellCommand) -> None:
        """``python -m pip|uv|venv|piptools ...``."""
        module = _python_module(command.argv)
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

    def _pip_sync(self, run: Run, command: ShellCommand, args: Sequence[str]) -> None:
        opts = parse_options(args, _PY_VALUE_LONG, _PY_VALUE_SHORT)
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

    def _project_tool(self, run: Run, name: str, args: Sequence[str]) -> None:
        """``poetry``/``pipenv``: installing from their own lock, or resolving."""
        installs, resolves, source = _PROJECT_TOOLS[name]
        sub = parse_options(args, (), ()).positionals[:1]
        if sub and sub[0] in installs:
            self._foreign_lock(run, f"{name} {sub[0]}", source)
        elif sub and sub[0] in resolves:
            self._resolver(run, f"{name} {sub[0]}")

    # ----------------------------------------------------------------- Python installers

    def _pip(self, run: Run, command: ShellCommand, args: Sequence[str], tool: str) -> None:
        opts = parse_options(args, _PY_VALUE_LONG, _PY_VALUE_SHORT)
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

    def _uv(self, run: Run, command: ShellCommand, args: Sequence[str]) -> None:
        opts = parse_options(args, _PY_VALUE_LONG, _PY_VALUE_SHORT)
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

    def _resolver(self, run: Run, what: str) -> None:
        lock = f" ({self.lock})" if self.lock else ""
        self._add(
            "LW001",
            run.line,
            f"`{what}` resolves dependencies while the image builds, so each build may get"
            f" different versions than the reviewed lock{lock}; compile the lock in the"
            " repository and only install it in the image (pip install --require-hashes"
            " --no-deps -r <lock>)",
        )

    def _foreign_lock(self, run: Run, what: str, source: str) -> None:
        lock = self.lock or "the environment's compiled lock"
        self._add(
            "LW001",
            run.line,
            f"`{what}` installs from {source}, not from {lock}, the lock Lockwarden"
            " recompiles and reviews; install that lock instead (pip install --require-hashes"
            " --no-deps -r <lock>)",
        )

    def _pip_install(
        self, run: Run, command: ShellCommand, opts: Options, *, tool: str, uv: bool
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
        run: Run,
        command: ShellCommand,
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

    def _classify(self, run: Run, cwd: str, arg: str) -> tuple[ReqKind, str | None]:
        if "$" in arg:
            return "unknown", None
        candidates = resolve_source(run.stage, join_path(cwd, arg), run.mounts, 0)
        names = candidates or [clean_path(arg)]
        if any(_is_spec(n) for n in names):
            return "spec", next(n for n in names if _is_spec(n))
        if self.lock is None:
            return "lock", None
        if any(same_file(n, self.lock) for n in names):
            return "lock", self.lock
        if candidates:
            return "other", candidates[0]
        return "unknown", None

    def _source_before_install(self, run: Run) -> None:
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
        if self.lock and same_file(source, self.lock):
            return True
        base = posixpath.basename(source.rstrip("/")).lower()
        if base in _LOCKISH_NAMES:
            return True
        lowered = source.lower()
        return (base.endswith((".txt", ".in")) or dir_like(source)) and (
            "requirement" in lowered or "constraint" in lowered
        )

    # ----------------------------------------------------------------- OS packages

    def _apt(self, run: Run, tool: str, args: Sequence[str]) -> None:
        opts = parse_options(args, APT_VALUE_LONG, APT_VALUE_SHORT)
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

    def _apk(self, run: Run, args: Sequence[str]) -> None:
        opts = parse_options(args, APK_VALUE_LONG, APK_VALUE_SHORT)
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

    def _os_tools(self, run: Run, names: Iterable[str]) -> None:
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


def _purges(command: ShellCommand, tool: str) -> bool:
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


def finding(rule: str, file: str, line: int, message: str) -> Finding:
    return Finding(rule=rule, severity=RULES[rule][0], file=file, line=line, message=message)
