"""The grammar of slash commands: comment text in, typed commands out (pure, no I/O).

A command line is split with ``shlex`` (POSIX rules; nothing is ever run) and parsed with
``argparse``, so no text a user writes reaches a shell and errors read like argparse's. Every
value is validated here (requirements, package and environment names, refs, version ranges,
advisory ids and expiry dates); whether an environment or a package exists, and whether an
expiry is still ahead (that needs today's date), is for the handlers to check.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import re
import shlex
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import NoReturn, TypeAlias, assert_never

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from bot.commands import messages
from bot.commands.paragraphs import paragraph_lines
from bot.errors import LockwardenError
from bot.locks.ignore import advisory_id
from bot.locks.spec import name_or_exact_pin
from bot.report.escape import quote

MAX_COMMENT_CHARS = 32_768
MAX_LINE_CHARS = 1_000
MAX_COMMANDS = 10
REASON_MAX_CHARS = 200

COMMAND_PREFIX = "/lockwarden"
COMMAND_NAMES: tuple[str, ...] = (
    "pin",
    "unpin",
    "rollback",
    "refresh",
    "rebase",
    "explain",
    "ignore",
    "unignore",
    "audit",
    "help",
)
KNOWN_GOOD = "known-good"

# A command's first word ends at a space or tab: other blanks are characters of the word.
_COMMAND_WORD = re.compile(r"[ \t]")
_TAKES_REASON = frozenset({"pin", "ignore"})
# The reason is cut from the raw line before shlex, so quotes and apostrophes in it are text.
_REASON_SEPARATOR = re.compile(r"\s--(?:\s|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A subset of git's ref rules (git check-ref-format); `@{` cannot occur in this alphabet.
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
# pip reads ` #` in a requirements file as a comment and a blank-then-dash as an option.
_UNSAFE_IN_REQUIREMENT = re.compile(r"#|\s-")
_IGNORE_OPERATORS = frozenset({"==", ">=", ">", "<=", "<", "~="})
# The start of an advisory id: a target that begins like one must be one, so a mistyped id is
# refused instead of becoming a package rule (``cve-bin-tool`` is still a package name).
_ADVISORY_LIKE = re.compile(r"GHSA-[0-9a-z]{4}-|(?:PYSEC|CVE|OSV|MAL|GSD)-[0-9]", re.IGNORECASE)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHOW_MAX = 80
_DETAIL_MAX = 100


class CommandSyntaxError(LockwardenError):
    """A command line could not be read; ``user_message`` says what is wrong and how to fix
    it."""

    code = "command-syntax"


@dataclass(frozen=True)
class Pin:
    requirement: str
    package: str
    environments: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Unpin:
    package: str
    environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rollback:
    packages: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    to: str | None = None


@dataclass(frozen=True)
class Refresh:
    environments: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rebase:
    pass


@dataclass(frozen=True)
class Explain:
    package: str


@dataclass(frozen=True)
class Ignore:
    package: str
    specifier: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Unignore:
    package: str


@dataclass(frozen=True)
class IgnoreAdvisory:
    advisory: str
    """As OSV writes it (``GHSA-abcd-1234-wxyz``, ``PYSEC-2024-12``)."""
    reason: str
    until: date | None = None
    """The last day the rule applies; whether it is still ahead is the handler's check."""


@dataclass(frozen=True)
class UnignoreAdvisory:
    advisory: str


@dataclass(frozen=True)
class Audit:
    environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Help:
    pass


Command: TypeAlias = (
    Pin
    | Unpin
    | Rollback
    | Refresh
    | Rebase
    | Explain
    | Ignore
    | Unignore
    | IgnoreAdvisory
    | UnignoreAdvisory
    | Audit
    | Help
)


@dataclass(frozen=True)
class CommandLine:
    """One command line of a comment: the parsed command, or why it could not be read."""

    text: str
    command: Command | None
    error: str | None = None


@dataclass(frozen=True)
class ParsedComment:
    """The command lines of a comment in order, or why the whole comment was refused."""

    lines: tuple[CommandLine, ...]
    error: str | None = None

    @property
    def key(self) -> str:
        """Identity of the command text: an edit that leaves the command lines as they were
        keeps the key, so the commands do not run twice."""
        text = "\n".join(line.text for line in self.lines)
        return hashlib.sha256(text.encode()).hexdigest()


# -- comments ------------------------------------------------------------------------------


def command_lines(body: str, app_slug: str | None) -> tuple[str, ...]:
    """The lines of ``body`` that start with ``/lockwarden`` or ``@<app-slug>`` as a word
    (case-insensitive), stripped. Only lines a reader sees as lines of a top-level paragraph
    count (CommonMark: not code, HTML, comments, quotes, lists or headings; leading blanks
    ignored); see ``bot.commands.paragraphs``."""
    prefixes = _prefixes(app_slug)
    found: list[str] = []
    for paragraph_line in paragraph_lines(body):
        line = paragraph_line.text.strip(" \t")
        if _COMMAND_WORD.split(line, maxsplit=1)[0].lower() in prefixes:
            found.append(line)
    return tuple(found)


def parse_comment(body: str, app_slug: str | None) -> ParsedComment:
    """Every command line of ``body``, parsed; one bad line does not stop the others."""
    if len(body) > MAX_COMMENT_CHARS:
        error = messages.COMMENT_TOO_LONG.format(length=len(body), limit=MAX_COMMENT_CHARS)
        return ParsedComment(lines=(), error=error)
    texts = command_lines(body, app_slug)
    if len(texts) > MAX_COMMANDS:
        error = messages.TOO_MANY_COMMANDS.format(count=len(texts), limit=MAX_COMMANDS)
        return ParsedComment(lines=(), error=error)
    lines: list[CommandLine] = []
    for text in texts:
        try:
            command = parse_command(text, app_slug)
        except CommandSyntaxError as err:
            lines.append(CommandLine(text=text, command=None, error=err.user_message))
        else:
            lines.append(CommandLine(text=text, command=command))
    return ParsedComment(lines=tuple(lines))


# -- one command line ------------------------------------------------------------------------


def parse_command(line: str, app_slug: str | None = None) -> Command:
    """Parse one command line, prefix included. Raises ``CommandSyntaxError``."""
    text = line.strip()
    if len(text) > MAX_LINE_CHARS:
        _fail(messages.LINE_TOO_LONG, length=len(text), limit=MAX_LINE_CHARS)
    if len(text.splitlines()) > 1:
        _fail(messages.NOT_ONE_LINE, line=_show(text))
    head, reason = _split_reason(text)
    words = head.split(maxsplit=1)
    if not words or words[0].lower() not in _prefixes(app_slug):
        _fail(messages.NO_PREFIX, line=_show(text))
    tokens = _tokenize(words[1] if len(words) > 1 else "")
    if not tokens:
        _fail(messages.EMPTY_COMMAND, prefix=_show(words[0]))
    name = tokens[0].lower()
    if name not in COMMAND_NAMES:
        close = difflib.get_close_matches(name, COMMAND_NAMES, n=1)
        if close:
            _fail(messages.UNKNOWN_COMMAND_CLOSE, name=_show(tokens[0]), close=close[0])
        _fail(messages.UNKNOWN_COMMAND, name=_show(tokens[0]))
    if reason is not None and name not in _TAKES_REASON:
        _fail(messages.REASON_NOT_TAKEN, name=name, usage=messages.USAGE[name])
    args = _parse_args(name, tokens[1:])
    if name == "ignore" and _is_advisory_target(args.package):
        return _ignore_advisory(args, reason)
    return _BUILDERS[name](name, args, _reason(reason))


def describe(command: Command) -> str:
    """A short canonical rendering of ``command`` for replies (reasons left out), e.g.
    ``pin numpy==1.26.4 --env serve``."""
    words = _words(command)
    return " ".join([words[0], *(shlex.quote(word) for word in words[1:])])


def _words(command: Command) -> list[str]:
    match command:
        case Pin():
            return ["pin", command.requirement, *_flags("--env", command.environments)]
        case Unpin():
            return ["unpin", command.package, *_flags("--env", command.environments)]
        case Rollback():
            words = ["rollback", *command.packages, *_flags("--env", command.environments)]
            return words + (["--to", command.to] if command.to is not None else [])
        case Refresh():
            return [
                "refresh",
                *_flags("--env", command.environments),
                *_flags("--package", command.packages),
            ]
        case Rebase():
            return ["rebase"]
        case Explain():
            return ["explain", command.package]
        case Audit():
            return ["audit", *_flags("--env", command.environments)]
        case Help():
            return ["help"]
        case _:
            return _rule_words(command)


def _rule_words(command: Ignore | Unignore | IgnoreAdvisory | UnignoreAdvisory) -> list[str]:
    """The words of the commands that edit the ignore rules."""
    match command:
        case Ignore():
            return ["ignore", command.package, *([command.specifier] if command.specifier else [])]
        case Unignore():
            return ["unignore", command.package]
        case IgnoreAdvisory():
            until = ["--until", command.until.isoformat()] if command.until is not None else []
            return ["ignore", command.advisory, *until]
        case UnignoreAdvisory():
            return ["unignore", command.advisory]
        case _:  # pragma: no cover - every variant is matched above
            assert_never(command)


def _flags(option: str, values: Iterable[str]) -> list[str]:
    return [word for value in values for word in (option, value)]


# -- tokens ------------------------------------------------------------------------------------


def _prefixes(app_slug: str | None) -> frozenset[str]:
    if app_slug:
        return frozenset({COMMAND_PREFIX, f"@{app_slug}".lower()})
    return frozenset({COMMAND_PREFIX})


def _split_reason(text: str) -> tuple[str, str | None]:
    """Cut the line at its first standalone ``--``: the command before it, the reason after
    (``None`` when there is no ``--``)."""
    match = _REASON_SEPARATOR.search(text)
    if match is None:
        return text, None
    return text[: match.start()], text[match.end() :]


def _tokenize(text: str) -> list[str]:
    # POSIX shlex drops unquoted backslashes silently, which would change what was written.
    if "\\" in text:
        _fail(messages.BACKSLASH, text=_show(text))
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:  # the only one left without backslashes: "No closing quotation"
        _fail(messages.UNCLOSED_QUOTE, text=_show(text))
    for word in tokens:
        if _CONTROL.search(word):
            _fail(messages.CONTROL_CHARACTER, token=_show(word))
        if word == "--":  # argparse would swallow it as its own end-of-options marker
            _fail(messages.QUOTED_SEPARATOR)
    return tokens


def _plain_reason(raw: str | None) -> str | None:
    """The reason as plain one-line text: it is written into a spec file's comment, where a
    trailing backslash would make pip join the next line to it."""
    if raw is None:
        return None
    text = " ".join(raw.split())
    text = "".join(
        char for char in text if char != "\\" and unicodedata.category(char) not in ("Cc", "Cf")
    )
    return " ".join(text.split()) or None


def _reason(raw: str | None) -> str | None:
    """The plain reason, cut to ``REASON_MAX_CHARS``."""
    text = _plain_reason(raw)
    if text is None:
        return None
    if len(text) > REASON_MAX_CHARS:
        text = text[: REASON_MAX_CHARS - 1].rstrip() + "…"
    return text or None


# -- argparse ----------------------------------------------------------------------------------


class _ArgumentError(Exception):
    """What ``_ArgumentParser.error`` raises in place of printing usage and exiting."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


def _subparsers() -> dict[str, _ArgumentParser]:
    """One parser per command. Built per call: ``parse_known_intermixed_args`` mutates the
    parser while it runs, so a shared one would not be safe across threads."""
    # fromfile_prefix_chars stays None: an `@name` argument is never read as a file.
    top = _ArgumentParser(
        prog=COMMAND_PREFIX, add_help=False, allow_abbrev=False, exit_on_error=False
    )
    sub = top.add_subparsers(dest="command", parser_class=_ArgumentParser)
    parsers = {
        name: sub.add_parser(name, add_help=False, allow_abbrev=False, exit_on_error=False)
        for name in COMMAND_NAMES
    }
    for name in ("pin", "unpin", "rollback", "refresh", "audit"):
        parsers[name].add_argument("--env", action="append", default=[], metavar="ENV")
    parsers["pin"].add_argument("requirement", nargs="?")
    for name in ("unpin", "explain", "ignore", "unignore"):
        parsers[name].add_argument("package", nargs="?")
    parsers["ignore"].add_argument("specifier", nargs="?")
    parsers["ignore"].add_argument("--until", metavar="DATE")
    parsers["rollback"].add_argument("packages", nargs="*")
    parsers["rollback"].add_argument("--to", metavar="REF")
    parsers["refresh"].add_argument("--package", action="append", default=[], metavar="PKG")
    return parsers


def _parse_args(name: str, args: list[str]) -> argparse.Namespace:
    parser = _subparsers()[name]
    usage = messages.USAGE[name]
    try:
        # Intermixed: options may come before or after the positionals (`pin --env a numpy`).
        namespace, extras = parser.parse_known_intermixed_args(args)
    except (argparse.ArgumentError, _ArgumentError) as err:
        _fail(messages.ARGPARSE_ERROR, name=name, message=str(err), usage=usage)
    if extras:
        first = extras[0]
        if first.startswith("-") and len(first) > 1:
            options = messages.OPTIONS.get(name, messages.NO_OPTIONS)
            option = _show(first.split("=", 1)[0])
            _fail(messages.UNKNOWN_OPTION, name=name, option=option, options=options, usage=usage)
        _fail(
            messages.UNRECOGNIZED_ARGUMENTS, name=name, extra=_show(" ".join(extras)), usage=usage
        )
    return namespace


# -- commands ----------------------------------------------------------------------------------


def _required(name: str, value: str | None) -> str:
    if value is None:
        what, example = messages.MISSING[name]
        _fail(
            messages.MISSING_ARGUMENT,
            name=name,
            what=what,
            example=example,
            usage=messages.USAGE[name],
        )
    return value


def _pin(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    requirement = _requirement(_required(name, args.requirement))
    return Pin(
        requirement=str(requirement),
        package=requirement.name,
        environments=_environments(args.env),
        reason=reason,
    )


def _unpin(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    package = _package(_required(name, args.package))
    return Unpin(package=package, environments=_environments(args.env))


def _rollback(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    packages = _unique(_package(value) for value in args.packages)
    environments = _environments(args.env)
    to: str | None = args.to
    if to is not None:
        to = _ref(to)
        if packages or environments:
            _fail(messages.ROLLBACK_TO_COMBINED, ref=to)
    return Rollback(packages=packages, environments=environments, to=to)


def _refresh(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    packages = _unique(_package_pin(value) for value in args.package)
    return Refresh(environments=_environments(args.env), packages=packages)


def _rebase(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    return Rebase()


def _explain(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    return Explain(package=_package(_required(name, args.package)))


def _ignore(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    if args.until is not None:
        _fail(messages.UNTIL_NEEDS_ADVISORY)
    package, specifier = _ignore_target(_required(name, args.package), args.specifier)
    return Ignore(package=package, specifier=specifier, reason=reason)


def _ignore_advisory(args: argparse.Namespace, raw_reason: str | None) -> Command:
    """``ignore <ADVISORY-ID> [--until YYYY-MM-DD] -- <reason>``: the reason is required and
    refused, not cut, when too long (it is the record of why the risk was accepted)."""
    ident = _advisory(args.package)
    if args.specifier is not None:
        _fail(messages.ADVISORY_WITH_RANGE, advisory=ident, extra=_show(args.specifier))
    reason = _plain_reason(raw_reason)
    if reason is None:
        _fail(messages.ADVISORY_NEEDS_REASON, advisory=ident)
    if len(reason) > REASON_MAX_CHARS:
        _fail(messages.REASON_TOO_LONG, length=len(reason), limit=REASON_MAX_CHARS)
    until = None if args.until is None else _until(args.until)
    return IgnoreAdvisory(advisory=ident, reason=reason, until=until)


def _unignore(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    target = _required(name, args.package)
    if _is_advisory_target(target):
        return UnignoreAdvisory(advisory=_advisory(target))
    return Unignore(package=_package(target))


def _audit(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    return Audit(environments=_environments(args.env))


def _help(name: str, args: argparse.Namespace, reason: str | None) -> Command:
    return Help()


_BUILDERS = {
    "pin": _pin,
    "unpin": _unpin,
    "rollback": _rollback,
    "refresh": _refresh,
    "rebase": _rebase,
    "explain": _explain,
    "ignore": _ignore,
    "unignore": _unignore,
    "audit": _audit,
    "help": _help,
}


# -- values ------------------------------------------------------------------------------------


def _requirement(value: str) -> Requirement:
    """A PEP 508 requirement from the index (no URL), its name canonicalized."""
    try:
        requirement = Requirement(value)
    except InvalidRequirement as err:
        # packaging's message repeats the text with a caret line under it: keep the first line.
        detail = _cut(str(err).partition("\n")[0], _DETAIL_MAX)
        _fail(messages.INVALID_REQUIREMENT, requirement=_show(value), error=detail)
    if requirement.url:
        _fail(messages.URL_REQUIREMENT, requirement=_show(value))
    # Marker strings may hold any text; the pin is written into a requirements file.
    unsafe = _UNSAFE_IN_REQUIREMENT.search(str(requirement))
    if unsafe is not None:
        what = "`#`" if unsafe.group() == "#" else "a blank followed by `-`"
        _fail(messages.UNSAFE_REQUIREMENT, requirement=_show(value), what=what)
    requirement.name = canonicalize_name(requirement.name)
    return requirement


def _package(value: str) -> str:
    """A bare package name, canonicalized."""
    name: str | None
    try:
        name = Requirement(value).name
    except InvalidRequirement:
        name = None
    # Anything besides the name (version, extras, marker, URL, blanks) changes the text.
    if name != value:
        _fail(messages.INVALID_PACKAGE, package=_show(value))
    return canonicalize_name(value)


def _package_pin(value: str) -> str:
    """``name`` or ``name==version`` (no wildcard), the name canonicalized."""
    pin = name_or_exact_pin(value)
    if pin is None:
        _fail(messages.INVALID_PACKAGE_PIN, package=_show(value))
    return pin


def _ignore_target(value: str, specifier: str | None) -> tuple[str, str | None]:
    """The package and range of ``ignore``: ``numpy ">=2"`` or ``"numpy>=2"`` in one token."""
    try:
        requirement = Requirement(value)
    except InvalidRequirement:
        _fail(messages.INVALID_IGNORE_TARGET, package=_show(value))
    if requirement.url or requirement.marker or requirement.extras:
        _fail(messages.INVALID_IGNORE_TARGET, package=_show(value))
    package = canonicalize_name(requirement.name)
    inline = str(requirement.specifier) or None
    if inline is not None and specifier is not None:
        _fail(messages.SPECIFIER_TWICE, first=_show(value), second=_show(specifier))
    if inline is not None:
        return package, _ignore_specifier(inline, shown=value)
    if specifier is not None:
        return package, _ignore_specifier(specifier, shown=specifier)
    return package, None


def _ignore_specifier(value: str, *, shown: str) -> str:
    """Exactly one clause, with an operator that names a range of versions to skip."""
    try:
        specifiers = SpecifierSet(value)
    except InvalidSpecifier:
        specifiers = SpecifierSet()
    clauses = list(specifiers)
    if not clauses:
        _fail(messages.INVALID_SPECIFIER, specifier=_show(shown))
    if len(clauses) > 1:
        _fail(messages.SPECIFIER_CLAUSES, specifier=_show(shown), count=len(clauses))
    if clauses[0].operator not in _IGNORE_OPERATORS:
        _fail(messages.SPECIFIER_OPERATOR, specifier=_show(shown), operator=clauses[0].operator)
    return str(specifiers)


def _is_advisory_target(value: str | None) -> bool:
    return value is not None and _ADVISORY_LIKE.match(value) is not None


def _advisory(value: str) -> str:
    """An advisory id as OSV writes it; anything else after a known prefix is refused."""
    ident = advisory_id(value)
    if ident is None:
        _fail(messages.INVALID_ADVISORY, advisory=_show(value))
    return ident


def _until(value: str) -> date:
    """A calendar date written ``YYYY-MM-DD``."""
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    _fail(messages.INVALID_UNTIL, until=_show(value))


def _environments(values: Iterable[str]) -> tuple[str, ...]:
    """``--env`` values: repeated and/or comma lists, checked, duplicates dropped."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            if not _ENVIRONMENT.fullmatch(name):
                _fail(messages.INVALID_ENVIRONMENT, env=_show(name or value))
            names.append(name)
    return _unique(names)


def _ref(value: str) -> str:
    """``known-good`` or something git accepts as a ref name or sha."""
    if value.lower() == KNOWN_GOOD:
        return KNOWN_GOOD
    if (
        not _REF.fullmatch(value)
        or ".." in value
        or "//" in value
        or value.endswith(("/", ".lock"))
    ):
        _fail(messages.INVALID_REF, ref=_show(value))
    return value


# -- helpers -----------------------------------------------------------------------------------


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: str) -> str:
    """``value`` as a Markdown code span, cut to 80 characters, control and invisible
    characters escaped, so a reply quotes what was written without echoing a huge or
    invisible argument."""
    if not value:
        return '""'
    text = _cut(value, _SHOW_MAX)
    if _CONTROL.search(text):
        text = repr(text)[1:-1]
    return quote(text, _SHOW_MAX + 20)


def _fail(template: str, **values: object) -> NoReturn:
    raise CommandSyntaxError(template.format(**values))
