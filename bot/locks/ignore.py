"""Versions kept out of lock refreshes and advisories set aside, recorded in
``.github/lockwarden-ignore.txt``.

One rule a line. A package rule is a package name with at most one version clause, and an
optional note in an inline comment::

    numpy>=2.0  # ignored by @alice in #12: waiting for the 2.x migration
    torch  # ignored by @bob in #15

A compile turns the package rules into a constraints file holding their complement
(``numpy<2.0``; a rule without a version holds the locked version). That file is Lockwarden's
own and not in the repository, so the compilers' ``-c <file>`` annotations are removed from the
lock again.

An advisory rule is an advisory id alone, with a required reason and an optional expiry in its
comment; advisory rules never reach the constraints file::

    GHSA-abcd-1234-wxyz  # until 2027-01-31, ignored by @alice in #12: no fix we can take yet
    PYSEC-2024-12  # ignored by @bob in #15: the affected code path is never imported

An advisory id is ``GHSA-`` and three groups of four letters or digits, or one of the
prefixes ``PYSEC``, ``CVE``, ``OSV``, ``MAL``, ``GSD`` followed by ``-YEAR-NUMBER`` (four-digit
year, digits). The prefix may be written in any case and is stored as OSV writes it
(``GHSA-`` then lowercase; the others uppercase). A line is an advisory rule exactly when its
first word has one of these shapes, so a package name such as ``cve-bin-tool`` stays a package
rule. The comment may start with ``until YYYY-MM-DD`` (then ``,`` ``;`` or ``:``); the rule
stops applying after that day. The rest of the comment is the reason.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier
from packaging.utils import canonicalize_name

from bot.errors import LockfileParseError, LockwardenError
from bot.lines import physical_lines
from bot.paths import resolve_inside

IGNORE_FILE = ".github/lockwarden-ignore.txt"

HEADER = (
    "# What Lockwarden keeps out: a package (optional version range) or an advisory id a line,\n"
    "# advisories with '# [until YYYY-MM-DD,] reason'. Edit by hand or with /lockwarden ignore.\n"
)


class IgnoreRuleError(LockwardenError):
    """A rule given to ``add_ignore`` is not one Lockwarden can keep out of a compile."""

    code = "ignore-rule"


@dataclass(frozen=True)
class IgnoreRule:
    package: str
    """Canonical name."""
    specifier: str | None
    """One clause as normalised by ``packaging`` (``">=2.0"``, ``"==1.2.*"``); None ignores
    every version newer than the locked one."""
    note: str | None
    """The inline comment, without its ``#``."""
    line: int
    """1-based line in the ignore file (0 for a rule not read from a file)."""

    def __str__(self) -> str:
        return f"{self.package}{self.specifier or ''}"


@dataclass(frozen=True)
class AdvisoryIgnore:
    """An advisory set aside: audits report it as ignored, not as open."""

    id: str
    """As OSV writes it (``GHSA-abcd-1234-wxyz``, ``PYSEC-2024-12``); it matches an advisory
    with this id or alias."""
    reason: str
    until: date | None
    """The last day the rule applies; None: no expiry."""
    line: int
    """1-based line in the ignore file (0 for a rule not read from a file)."""

    def active(self, today: date) -> bool:
        """Whether the rule still applies on ``today`` (through its ``until`` day)."""
        return self.until is None or today <= self.until

    def __str__(self) -> str:
        """The rule's line in the ignore file, without its line end."""
        until = f"until {self.until.isoformat()}, " if self.until is not None else ""
        return f"{self.id}  # {until}{self.reason}"


# pip's comment rule, as in the lock parser: ``#`` at the start or after whitespace.
_COMMENT_RE = re.compile(r"(?:^|\s)#")
# The complement of each accepted operator: what the constraints file allows instead.
_COMPLEMENT = {"==": "!=", ">=": "<", ">": "<=", "<=": ">", "<": ">="}
_SUGGEST = {
    "~=": "'~=' ignores a range pip constraints cannot exclude in one line; write "
    "'{name}>={version}' to keep out this version and everything newer",
    "!=": "'!=' would keep out every version but one; write '{name}' to hold the locked "
    "version, or '{name}==VERSION' for the versions to keep out, one a line",
    "===": "'===' is not supported; write '{name}=={version}'",
}


def _split_comment(raw: str) -> tuple[str, str | None]:
    """(code, comment text or None) of one physical line."""
    found = _COMMENT_RE.search(raw)
    if found is None:
        return raw.strip(), None
    return raw[: found.start()].strip(), raw[found.end() :].strip()


def _check_rule(code: str) -> tuple[str, str | None]:
    """(canonical name, specifier) of a rule's code; ValueError says what is wrong and how to
    write it instead."""
    if code.startswith("-"):
        raise ValueError(
            f"options are not rules: {code!r}; write a package name with an optional version "
            "range, e.g. 'numpy>=2.0'"
        )
    try:
        req = Requirement(code)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise ValueError(
            f"invalid rule {code!r} ({reason}); write a package name with an optional version "
            "range, e.g. 'numpy>=2.0'"
        ) from exc
    name = canonicalize_name(req.name)
    if req.url is not None:
        raise ValueError(f"{code!r} is a URL; rules name a package and a version range")
    if req.extras or req.marker is not None:
        raise ValueError(
            f"{code!r}: extras and markers are not supported; write '{name}' with at most "
            "one version clause"
        )
    clauses = list(req.specifier)
    if not clauses:
        return name, None
    if len(clauses) > 1:
        raise ValueError(
            f"{code!r} has {len(clauses)} version clauses; a rule keeps out one range from one "
            f"bound (pip constraints cannot say 'below X or above Y'): write '{name}>=X', or "
            f"one '{name}==V' line per version"
        )
    clause = clauses[0]
    if clause.operator not in _COMPLEMENT:
        hint = _SUGGEST[clause.operator].format(name=name, version=clause.version)
        raise ValueError(f"{code!r}: {hint}")
    return name, str(clause)


# -- advisory ids ------------------------------------------------------------------------------

ADVISORY_PREFIXES = ("GHSA", "PYSEC", "CVE", "OSV", "MAL", "GSD")
# GitHub's ids, and PREFIX-YEAR-NUMBER for the other databases OSV serves for PyPI.
_ADVISORY_ID_RE = re.compile(
    r"(?P<prefix>GHSA)(?P<body>(?:-[0-9a-z]{4}){3})"
    r"|(?P<other>PYSEC|CVE|OSV|MAL|GSD)(?P<number>-[0-9]{4}-[0-9]{1,12})",
    re.IGNORECASE | re.ASCII,
)
ADVISORY_ID_HELP = (
    "an advisory id is GHSA-xxxx-xxxx-xxxx (letters and digits) or PREFIX-YEAR-NUMBER with "
    "PREFIX one of PYSEC, CVE, OSV, MAL, GSD (e.g. PYSEC-2024-12, CVE-2024-1234)"
)
# ``until 2027-01-31`` opening an advisory rule's comment, then ``,`` ``;`` ``:`` or a blank.
# A day or month of one digit is read too, so a loosely written expiry is never taken for reason.
_UNTIL_RE = re.compile(
    r"until\s+(?P<date>(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2}))\b\s*[,;:]?\s*",
    re.ASCII | re.IGNORECASE,
)


def advisory_id(text: str) -> str | None:
    """``text`` as OSV writes the id (``GHSA-`` then lowercase, the others uppercase), or None
    when it is no advisory id."""
    found = _ADVISORY_ID_RE.fullmatch(text)
    if found is None:
        return None
    if found.group("prefix") is not None:
        return "GHSA" + found.group("body").lower()
    return found.group("other").upper() + found.group("number")


def _until_and_reason(comment: str) -> tuple[date | None, str]:
    """(expiry, reason) of an advisory rule's comment; ValueError says what is wrong."""
    until: date | None = None
    opening = _UNTIL_RE.match(comment)
    if opening is not None:
        try:
            until = date(*(int(opening.group(part)) for part in "ymd"))
        except ValueError as exc:
            raise ValueError(
                f"'until {opening.group('date')}' is not a date; write 'until YYYY-MM-DD'"
            ) from exc
        comment = comment[opening.end() :]
    return until, comment.strip()


def _advisory_rule(code: str, comment: str | None, number: int) -> AdvisoryIgnore | None:
    """The advisory rule of a line, or None when its first word is no advisory id."""
    words = code.split(maxsplit=1)
    ident = advisory_id(words[0])
    if ident is None:
        return None
    if len(words) > 1:
        raise ValueError(
            f"an advisory rule is the id alone: write '{ident}  # [until YYYY-MM-DD,] reason'"
        )
    until, reason = _until_and_reason(comment or "")
    if not reason:
        raise ValueError(
            f"{ident} has no reason; write '{ident}  # [until YYYY-MM-DD,] why it is ignored'"
        )
    return AdvisoryIgnore(ident, reason, until, number)


# -- files ---------------------------------------------------------------------------------------


def _parse_file(text: str, path: str) -> tuple[tuple[IgnoreRule, ...], tuple[AdvisoryIgnore, ...]]:
    """Both kinds of rules of an ignore file; ``LockfileParseError`` names the bad line."""
    rules: list[IgnoreRule] = []
    advisories: dict[str, AdvisoryIgnore] = {}
    for number, raw in enumerate(physical_lines(text.removeprefix("\ufeff")), start=1):
        code, comment = _split_comment(raw.rstrip("\r\n"))
        if not code:
            continue
        if code.endswith("\\"):
            raise LockfileParseError(
                path, number, "line continuations are not supported; write one rule a line"
            )
        try:
            advisory = _advisory_rule(code, comment, number)
            if advisory is None:
                package, specifier = _check_rule(code)
        except ValueError as exc:
            raise LockfileParseError(path, number, str(exc)) from exc
        if advisory is None:
            rules.append(IgnoreRule(package, specifier, comment or None, number))
        elif advisory.id in advisories:
            first = advisories[advisory.id].line
            raise LockfileParseError(
                path, number, f"{advisory.id} is already ignored on line {first}; keep one line"
            )
        else:
            advisories[advisory.id] = advisory
    return tuple(rules), tuple(advisories.values())


def parse_ignores(text: str, path: str = IGNORE_FILE) -> tuple[IgnoreRule, ...]:
    """The package rules of an ignore file; ``LockfileParseError`` names ``path`` and the bad
    line (of either kind)."""
    return _parse_file(text, path)[0]


def parse_advisory_ignores(text: str, path: str = IGNORE_FILE) -> tuple[AdvisoryIgnore, ...]:
    """The advisory rules of an ignore file, expired ones included; ``LockfileParseError``
    names ``path`` and the bad line (of either kind)."""
    return _parse_file(text, path)[1]


def read_ignore_file(root: Path) -> str | None:
    """The text of ``root``'s ignore file; None when there is none. A symlink leading outside
    ``root`` raises ``PathEscapeError``: its target is never read."""
    path = resolve_inside(root, IGNORE_FILE, source=IGNORE_FILE)
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LockfileParseError(
            IGNORE_FILE, line, f"not valid UTF-8 ({exc.reason}); save the file as UTF-8"
        ) from exc


def read_ignores(root: Path) -> tuple[IgnoreRule, ...]:
    """The package rules of ``root``'s ignore file; () when there is none."""
    text = read_ignore_file(root)
    return () if text is None else parse_ignores(text)


def read_advisory_ignores(root: Path) -> tuple[AdvisoryIgnore, ...]:
    """The advisory rules of ``root``'s ignore file, expired ones included (``active`` tells);
    () when there is none."""
    text = read_ignore_file(root)
    return () if text is None else parse_advisory_ignores(text)


def _one_line(text: str | None) -> str | None:
    """A note fit for an inline comment: one line, no surrounding blanks."""
    if text is None:
        return None
    return " ".join(text.split()) or None


def _line_ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _put_line(text: str | None, new_line: str, same: Collection[int]) -> str:
    """``text`` with ``new_line`` in place of the lines ``same`` (at the first of them), or
    appended when there are none; a new file with its header when ``text`` is None. Every
    other line stays byte-for-byte."""
    if text is None:
        return f"{HEADER}{new_line}\n"
    lines = physical_lines(text)
    eol = _line_ending(text)
    if not same:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += eol
        return "".join(lines) + new_line + eol
    out = []
    first = min(same)
    for number, line in enumerate(lines, start=1):
        if number == first:
            out.append(new_line + line[len(line.rstrip("\r\n")) :])
        elif number not in same:  # later copies of the same rule would only repeat it
            out.append(line)
    return "".join(out)


def _drop_lines(text: str, drop: Collection[int]) -> tuple[str, int]:
    lines = physical_lines(text)
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    return "".join(kept), len(drop)


def add_ignore(text: str | None, package: str, specifier: str | None, note: str | None) -> str:
    """The ignore file's text with the rule added (a new file when ``text`` is None).

    A rule for the same package and specifier is replaced, so its note is updated; every
    other line stays byte-for-byte.
    """
    code = f"{package}{specifier or ''}".strip()
    try:
        name, spec = _check_rule(code)
    except ValueError as exc:
        raise IgnoreRuleError(f"cannot ignore {code!r}: {exc}") from exc
    note = _one_line(note)
    new_line = f"{name}{spec or ''}" + (f"  # {note}" if note else "")
    if text is None:
        return _put_line(None, new_line, ())
    same = {
        rule.line for rule in parse_ignores(text) if (rule.package, rule.specifier) == (name, spec)
    }
    return _put_line(text, new_line, same)


def remove_ignore(text: str, package: str) -> tuple[str, int]:
    """The text without any rule for ``package``, and how many rules were removed."""
    wanted = canonicalize_name(package)
    return _drop_lines(text, {rule.line for rule in parse_ignores(text) if rule.package == wanted})


def add_advisory_ignore(text: str | None, ident: str, reason: str, until: date | None) -> str:
    """The ignore file's text with the advisory rule added (a new file when ``text`` is None).

    A rule for the same id is replaced, so its reason and expiry are updated; every other line
    stays byte-for-byte. Whether ``until`` is in the past is the caller's to judge.
    """
    canonical = advisory_id(ident)
    if canonical is None:
        raise IgnoreRuleError(f"cannot ignore {ident!r}: {ADVISORY_ID_HELP}")
    note = _one_line(reason)
    if note is None:
        raise IgnoreRuleError(f"cannot ignore {canonical} without a reason; say why it is safe")
    if until is None and _UNTIL_RE.match(note):
        raise IgnoreRuleError(
            f"the reason for {canonical} starts with an expiry; give it as the expiry instead"
        )
    new_line = str(AdvisoryIgnore(canonical, note, until, 0))
    if text is None:
        return _put_line(None, new_line, ())
    same = {rule.line for rule in parse_advisory_ignores(text) if rule.id == canonical}
    return _put_line(text, new_line, same)


def remove_advisory_ignore(text: str, ident: str) -> tuple[str, int]:
    """The text without the rule for advisory ``ident``, and how many rules were removed."""
    canonical = advisory_id(ident)
    drop = {rule.line for rule in parse_advisory_ignores(text) if rule.id == canonical}
    return _drop_lines(text, drop)


def exclusion_constraints(rules: Sequence[IgnoreRule], locked: Mapping[str, str]) -> list[str]:
    """Constraint lines that keep the ignored versions out of a compile.

    ``locked`` maps canonical names to the versions of the environment's current lock: a
    rule without a version holds that one (and says nothing where the package is not locked).
    Several lines for one package all apply: pip combines constraint lines with AND.
    """
    out: list[str] = []
    for rule in rules:
        if rule.specifier is None:
            version = locked.get(rule.package)
            line = f"{rule.package}=={version}" if version is not None else None
        else:
            clause = Specifier(rule.specifier)
            line = f"{rule.package}{_COMPLEMENT[clause.operator]}{clause.version}"
        if line is not None and line not in out:
            out.append(line)
    return out


def ignore_note(
    rules: Sequence[IgnoreRule], locked: Mapping[str, str], present: Collection[str] | None
) -> tuple[str, ...]:
    """The note of a compile the rules applied to, e.g. ``kept out by
    .github/lockwarden-ignore.txt: numpy>=2.0, torch (held at 2.1.0)``; () when none did.

    ``present`` (canonical names in the lock) leaves out rules for packages the environment
    does not have; None keeps every rule that produced a constraint.
    """
    used: list[str] = []
    for rule in rules:
        if present is not None and rule.package not in present:
            continue
        if rule.specifier is not None:
            used.append(str(rule))
        elif rule.package in locked:
            used.append(f"{rule.package} (held at {locked[rule.package]})")
    if not used:
        return ()
    return (f"kept out by {IGNORE_FILE}: {', '.join(dict.fromkeys(used))}",)


# ``    # via`` opening a multi-line annotation block, and one ``    #   item`` inside it.
_VIA_BLOCK_RE = re.compile(r"^(?P<indent>[ \t]+)# via$")
_VIA_ITEM_RE = re.compile(r"^[ \t]+#   (?P<item>\S.*)$")
# A one-line annotation, alone (``    # via a, b``) or after a requirement (``x==1  # via a``).
_VIA_LINE_RE = re.compile(r"^(?P<head>(?:.*\s)?)# via (?P<items>\S.*)$")


def strip_constraint_annotations(lock_text: str, constraint_path: str) -> str:
    """Remove ``-c <constraint_path>`` from a lock's ``# via`` annotations.

    A multi-line block left with a single source becomes the one-line ``# via source`` the
    compilers write for a single source, so the lock reads as if compiled without the file.
    Requirement, hash and header lines are not touched.
    """
    target = f"-c {constraint_path}"
    lines = physical_lines(lock_text)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        body = line.rstrip("\r\n")
        eol = line[len(body) :]
        i += 1
        if body.startswith("#"):  # the header and the unsafe-section comments
            out.append(line)
            continue
        block = _VIA_BLOCK_RE.match(body)
        if block is not None:
            items: list[tuple[str, str]] = []  # (line, source)
            while i < len(lines):
                item = _VIA_ITEM_RE.match(lines[i].rstrip("\r\n"))
                if item is None:
                    break
                items.append((lines[i], item.group("item").rstrip()))
                i += 1
            kept = [(text, source) for text, source in items if source != target]
            if len(kept) == 1 and len(items) > 1:
                out.append(f"{block.group('indent')}# via {kept[0][1]}{eol}")
            elif kept or not items:
                out.append(line)
                out.extend(text for text, _ in kept)
            # else every source was the constraint file: the block goes with it
            continue
        one = _VIA_LINE_RE.match(body)
        if one is None:
            out.append(line)
            continue
        sources = one.group("items").split(", ")
        remaining = [s for s in sources if s != target]
        head = one.group("head")
        if len(remaining) == len(sources):
            out.append(line)
        elif remaining:
            out.append(f"{head}# via {', '.join(remaining)}{eol}")
        elif head.strip():
            out.append(f"{head.rstrip()}{eol}")
    return "".join(out)
