"""Ignore rules: parsing, editing, the constraints they become, and annotation clean-up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.errors import LockfileParseError, LockwardenError
from bot.locks.ignore import (
    HEADER,
    IGNORE_FILE,
    AdvisoryIgnore,
    IgnoreRule,
    IgnoreRuleError,
    add_advisory_ignore,
    add_ignore,
    advisory_id,
    exclusion_constraints,
    ignore_note,
    parse_advisory_ignores,
    parse_ignores,
    read_advisory_ignores,
    read_ignores,
    remove_advisory_ignore,
    remove_ignore,
    strip_constraint_annotations,
)

EXAMPLE = (
    HEADER + "numpy>=2.0  # ignored by @alice in #12: waiting for the 2.x migration\n"
    "torch  # ignored by @bob in #15\n"
)


def rule(package: str, specifier: str | None = None, line: int = 1) -> IgnoreRule:
    return IgnoreRule(package, specifier, None, line)


# -- parse_ignores ---------------------------------------------------------------------------


def test_example_file_parses() -> None:
    assert parse_ignores(EXAMPLE) == (
        IgnoreRule("numpy", ">=2.0", "ignored by @alice in #12: waiting for the 2.x migration", 3),
        IgnoreRule("torch", None, "ignored by @bob in #15", 4),
    )
    assert str(parse_ignores(EXAMPLE)[0]) == "numpy>=2.0"
    assert str(parse_ignores(EXAMPLE)[1]) == "torch"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("\n  \n# only a comment\n   # indented\n", (), id="blank-and-comments"),
        pytest.param("Scikit_Learn\n", (rule("scikit-learn"),), id="canonical-name"),
        pytest.param("numpy >= 2.0\n", (rule("numpy", ">=2.0"),), id="spaces-normalised"),
        pytest.param("numpy==1.2.3", (rule("numpy", "==1.2.3"),), id="exact-no-newline"),
        pytest.param("numpy==2.*\r\n", (rule("numpy", "==2.*"),), id="wildcard-crlf"),
        pytest.param("numpy>2\n", (rule("numpy", ">2"),), id="gt"),
        pytest.param("numpy<=1.9\n", (rule("numpy", "<=1.9"),), id="le"),
        pytest.param("numpy<1.9\n", (rule("numpy", "<1.9"),), id="lt"),
        pytest.param("\ufefftorch\n", (rule("torch"),), id="bom"),
        pytest.param(
            "numpy>=2\nnumpy==1.26.1\n",
            (rule("numpy", ">=2"), rule("numpy", "==1.26.1", 2)),
            id="several-rules-one-package",
        ),
        pytest.param(
            "torch#not-a-comment\n", None, id="hash-without-space-is-no-comment"
        ),  # an invalid requirement, see below
    ],
)
def test_parse_ignores(text: str, expected: tuple[IgnoreRule, ...] | None) -> None:
    if expected is None:
        with pytest.raises(LockfileParseError):
            parse_ignores(text)
        return
    assert tuple(IgnoreRule(r.package, r.specifier, None, r.line) for r in parse_ignores(text)) == (
        expected
    )


def test_note_is_the_inline_comment() -> None:
    (only,) = parse_ignores("numpy>=2  #   see #12 # twice  \n")
    assert only.note == "see #12 # twice"
    (bare,) = parse_ignores("numpy>=2  #\n")
    assert bare.note is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("-r other.txt", "options are not rules", id="option"),
        pytest.param("--index-url https://x", "options are not rules", id="long-option"),
        pytest.param("numpy>>2", "invalid rule 'numpy>>2'", id="bad-requirement"),
        pytest.param("https://example.com/x.whl", "invalid rule", id="bare-url"),
        pytest.param("pkg @ https://example.com/pkg.whl", "is a URL", id="url"),
        pytest.param("numpy[extra]>=2", "extras and markers", id="extras"),
        pytest.param('numpy>=2; python_version<"3.12"', "extras and markers", id="marker"),
        pytest.param("numpy>=2,<3", "has 2 version clauses", id="two-clauses"),
        pytest.param("numpy~=2.1", "'numpy>=2.1'", id="compatible-release"),
        pytest.param("numpy!=2.1", "'numpy' to hold", id="not-equal"),
        pytest.param("numpy===2.1", "'numpy==2.1'", id="arbitrary-equality"),
        pytest.param("numpy>=2 \\", "line continuations", id="continuation"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(LockfileParseError) as excinfo:
        parse_ignores(f"# header\n\ntorch\n{line}\n", path="x/ignore.txt")
    assert excinfo.value.line == 4
    assert excinfo.value.path == "x/ignore.txt"
    assert str(excinfo.value).startswith("x/ignore.txt:4: ")
    assert message in str(excinfo.value)


def test_default_path_is_the_ignore_file() -> None:
    with pytest.raises(LockfileParseError, match=r"^\.github/lockwarden-ignore\.txt:1: "):
        parse_ignores("numpy~=2\n")


# -- read_ignores ----------------------------------------------------------------------------


def test_read_ignores(tmp_path: Path) -> None:
    assert read_ignores(tmp_path) == ()
    path = tmp_path / IGNORE_FILE
    path.parent.mkdir()
    path.write_text(EXAMPLE, "utf-8")
    assert [str(r) for r in read_ignores(tmp_path)] == ["numpy>=2.0", "torch"]


def test_read_ignores_rejects_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / IGNORE_FILE
    path.parent.mkdir()
    path.write_bytes(b"numpy\ntorch  # caf\xe9\n")
    with pytest.raises(LockfileParseError, match=r"lockwarden-ignore\.txt:2: not valid UTF-8"):
        read_ignores(tmp_path)


def test_directory_in_place_of_the_file_is_no_file(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).mkdir(parents=True)
    assert read_ignores(tmp_path) == ()


# -- add_ignore / remove_ignore --------------------------------------------------------------


def test_add_creates_the_file_with_its_header() -> None:
    text = add_ignore(None, "NumPy", ">=2.0", "ignored by @alice in #12: waiting")
    assert text == HEADER + "numpy>=2.0  # ignored by @alice in #12: waiting\n"
    assert text.startswith(
        "# What Lockwarden keeps out: a package (optional version range) or an advisory id a "
        "line,\n# advisories with '# [until YYYY-MM-DD,] reason'. Edit by hand or with "
        "/lockwarden ignore.\n"
    )
    assert parse_ignores(text) == (
        IgnoreRule("numpy", ">=2.0", "ignored by @alice in #12: waiting", 3),
    )


@pytest.mark.parametrize(
    ("before", "package", "specifier", "note", "after"),
    [
        pytest.param(
            "# mine\n\ntorch\n",
            "numpy",
            ">=2",
            None,
            "# mine\n\ntorch\nnumpy>=2\n",
            id="append",
        ),
        pytest.param("torch", "numpy", None, "n", "torch\nnumpy  # n\n", id="append-no-newline"),
        pytest.param(
            "torch\r\n", "numpy", "<1", None, "torch\r\nnumpy<1\r\n", id="append-crlf-kept"
        ),
        pytest.param("", "numpy", None, None, "numpy\n", id="append-to-empty"),
        pytest.param(
            "# c\nnumpy >= 2.0   # old note\r\ntorch\n",
            "numpy",
            ">=2.0",
            "new\nnote",
            "# c\nnumpy>=2.0  # new note\r\ntorch\n",
            id="same-rule-replaced-note-updated",
        ),
        pytest.param(
            "numpy>=2  # old\ntorch\nnumpy>=2\n",
            "numpy",
            ">=2",
            None,
            "numpy>=2\ntorch\n",
            id="repeated-same-rule-collapsed",
        ),
        pytest.param(
            "numpy>=2  # keep\n",
            "numpy",
            ">=3",
            None,
            "numpy>=2  # keep\nnumpy>=3\n",
            id="other-specifier-appended",
        ),
        pytest.param(
            "numpy>=2  # keep\n",
            "numpy",
            None,
            "hold",
            "numpy>=2  # keep\nnumpy  # hold\n",
            id="hold-beside-range",
        ),
        pytest.param(
            "torch\n", "torch", "", "  ", "torch\n", id="empty-specifier-and-note-mean-none"
        ),
    ],
)
def test_add_ignore(
    before: str, package: str, specifier: str | None, note: str | None, after: str
) -> None:
    assert add_ignore(before, package, specifier, note) == after


@pytest.mark.parametrize(
    ("package", "specifier", "message"),
    [
        pytest.param("numpy", "~=2.1", "'numpy>=2.1'", id="compatible-release"),
        pytest.param("numpy", ">=2,<3", "version clauses", id="two-clauses"),
        pytest.param("not a name", None, "invalid rule", id="bad-name"),
        pytest.param("-r", "x.txt", "options are not rules", id="option"),
    ],
)
def test_add_ignore_rejects_what_cannot_be_kept_out(
    package: str, specifier: str | None, message: str
) -> None:
    with pytest.raises(IgnoreRuleError) as excinfo:
        add_ignore(None, package, specifier, None)
    assert isinstance(excinfo.value, LockwardenError)
    assert str(excinfo.value).startswith("cannot ignore ")
    assert message in str(excinfo.value)


def test_add_ignore_refuses_a_broken_file() -> None:
    with pytest.raises(LockfileParseError, match=r"lockwarden-ignore\.txt:2: "):
        add_ignore("torch\nnumpy~=2\n", "jax", None, None)


@pytest.mark.parametrize(
    ("before", "package", "after", "removed"),
    [
        pytest.param(EXAMPLE, "torch", HEADER + EXAMPLE.splitlines(True)[2], 1, id="one"),
        pytest.param(
            "# c\nNumPy>=2\r\ntorch\nnumpy==1.2  # x\n\n",
            "numpy",
            "# c\ntorch\n\n",
            2,
            id="every-rule-canonical-name",
        ),
        pytest.param("torch\n# numpy\n", "numpy", "torch\n# numpy\n", 0, id="none"),
    ],
)
def test_remove_ignore(before: str, package: str, after: str, removed: int) -> None:
    assert remove_ignore(before, package) == (after, removed)


def test_add_then_remove_restores_the_file() -> None:
    text = add_ignore(EXAMPLE, "jax", "==0.4.*", "ignored by @carol")
    assert remove_ignore(text, "JAX") == (EXAMPLE, 1)


# -- exclusion_constraints / ignore_note -----------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "locked", "lines"),
    [
        pytest.param([rule("numpy", "==2.0.1")], {}, ["numpy!=2.0.1"], id="exact"),
        pytest.param([rule("numpy", "==2.*")], {}, ["numpy!=2.*"], id="wildcard"),
        pytest.param([rule("numpy", ">=2.0")], {}, ["numpy<2.0"], id="ge"),
        pytest.param([rule("numpy", ">2.0")], {}, ["numpy<=2.0"], id="gt"),
        pytest.param([rule("numpy", "<=1.0")], {}, ["numpy>1.0"], id="le"),
        pytest.param([rule("numpy", "<1.0")], {}, ["numpy>=1.0"], id="lt"),
        pytest.param([rule("torch")], {"torch": "2.1.0"}, ["torch==2.1.0"], id="hold-locked"),
        pytest.param([rule("torch")], {"numpy": "1.0"}, [], id="hold-not-locked"),
        pytest.param(
            [rule("numpy", ">=2"), rule("numpy", "==1.26.1"), rule("numpy", ">=2")],
            {},
            ["numpy<2", "numpy!=1.26.1"],
            id="several-lines-no-repeats",
        ),
    ],
)
def test_exclusion_constraints(
    rules: list[IgnoreRule], locked: dict[str, str], lines: list[str]
) -> None:
    assert exclusion_constraints(rules, locked) == lines


@pytest.mark.parametrize(
    ("present", "note"),
    [
        pytest.param(
            None,
            (f"kept out by {IGNORE_FILE}: numpy>=2.0, torch (held at 2.1.0), jax==0.4.*",),
            id="every-rule",
        ),
        pytest.param({"torch"}, (f"kept out by {IGNORE_FILE}: torch (held at 2.1.0)",), id="some"),
        pytest.param({"scipy"}, (), id="none-present"),
    ],
)
def test_ignore_note(present: set[str] | None, note: tuple[str, ...]) -> None:
    rules = [
        rule("numpy", ">=2.0"),
        rule("torch"),
        rule("absent"),  # a hold on a package this environment does not lock
        rule("jax", "==0.4.*"),
        rule("numpy", ">=2.0"),
    ]
    assert ignore_note(rules, {"torch": "2.1.0"}, present) == note


# -- strip_constraint_annotations ------------------------------------------------------------

HIDDEN = "requirements/.serve.txt.lockwarden-ignore.txt"
H = "    --hash=sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("compiled", "clean"),
    [
        pytest.param(
            f"beta==1.1.0 \\\n{H}\n    # via\n    #   -c {HIDDEN}\n"
            "    #   -r requirements/serve.in\n    #   alpha\n    #   gamma\n",
            f"beta==1.1.0 \\\n{H}\n    # via\n    #   -r requirements/serve.in\n"
            "    #   alpha\n    #   gamma\n",
            id="split-block-keeps-the-rest",
        ),
        pytest.param(
            f"gamma==1.0.0\n    # via\n    #   -c {HIDDEN}\n    #   -r requirements/serve.in\n"
            "delta==1.0\n",
            "gamma==1.0.0\n    # via -r requirements/serve.in\ndelta==1.0\n",
            id="split-block-collapses-to-one-line",
        ),
        pytest.param(
            f"gamma==1.0.0\r\n    # via\r\n    #   scikit-learn\r\n    #   -c {HIDDEN}\r\n",
            "gamma==1.0.0\r\n    # via scikit-learn\r\n",
            id="collapse-crlf-hidden-last",
        ),
        pytest.param(
            f"x==1\n    # via\n    #   -c {HIDDEN}\n\n# unsafe\n",
            "x==1\n\n# unsafe\n",
            id="block-of-only-the-file-goes",
        ),
        pytest.param(
            "x==1\n    # via\ny==2\n", "x==1\n    # via\ny==2\n", id="empty-block-untouched"
        ),
        pytest.param(
            "x==1\n    # via\n    #   -c requirements/serve.txt\n    #   alpha\n",
            "x==1\n    # via\n    #   -c requirements/serve.txt\n    #   alpha\n",
            id="other-constraint-kept",
        ),
        pytest.param(
            f"x==1\n    # via -c {HIDDEN}, -r requirements/serve.in, alpha\n",
            "x==1\n    # via -r requirements/serve.in, alpha\n",
            id="line-style-own-line-pip",
        ),
        pytest.param(
            f"x==1\n    # via alpha, gamma, -c {HIDDEN}, -r requirements/serve.in\n",
            "x==1\n    # via alpha, gamma, -r requirements/serve.in\n",
            id="line-style-own-line-uv",
        ),
        pytest.param(
            f"gamma==1.0.0              # via -c {HIDDEN}, -r requirements/serve.in\n",
            "gamma==1.0.0              # via -r requirements/serve.in\n",
            id="line-style-after-requirement",
        ),
        pytest.param(f"x==1\n    # via -c {HIDDEN}\ny==2\n", "x==1\ny==2\n", id="one-line-only"),
        pytest.param(f"x==1  # via -c {HIDDEN}\n", "x==1\n", id="after-requirement-only-the-file"),
        pytest.param(
            "x==1  # via -c requirements/serve.txt\n",
            "x==1  # via -c requirements/serve.txt\n",
            id="one-line-other-kept",
        ),
        pytest.param(
            f"#\n# pip-compile --constraint={HIDDEN} x.in\n# via -c {HIDDEN}\nx==1\n",
            f"#\n# pip-compile --constraint={HIDDEN} x.in\n# via -c {HIDDEN}\nx==1\n",
            id="header-comments-untouched",
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_strip_constraint_annotations(compiled: str, clean: str) -> None:
    assert strip_constraint_annotations(compiled, HIDDEN) == clean


# -- advisory rules ----------------------------------------------------------------------------

MIXED = (
    HEADER + "numpy>=2.0  # ignored by @alice in #12: waiting for the 2.x migration\n"
    "GHSA-abcd-1234-wxyz  # until 2027-01-31, ignored by @alice in #12: no fix we can take yet\n"
    "torch  # ignored by @bob in #15\n"
    "PYSEC-2024-12  # ignored by @bob in #15: the code path is never imported\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("GHSA-abcd-1234-wxyz", "GHSA-abcd-1234-wxyz", id="ghsa"),
        pytest.param("ghsa-ABCD-1234-WXYZ", "GHSA-abcd-1234-wxyz", id="ghsa-any-case"),
        pytest.param("PYSEC-2024-12", "PYSEC-2024-12", id="pysec"),
        pytest.param("cve-2024-1234", "CVE-2024-1234", id="cve-any-case"),
        pytest.param("OSV-2020-111", "OSV-2020-111", id="osv"),
        pytest.param("MAL-2024-7426", "MAL-2024-7426", id="mal"),
        pytest.param("GSD-2021-1000001", "GSD-2021-1000001", id="gsd"),
        pytest.param("GHSA-abcd-1234", None, id="ghsa-short"),
        pytest.param("GHSA-abcd-1234-wxyz-1", None, id="ghsa-long"),
        pytest.param("GHSA-abc_-1234-wxyz", None, id="ghsa-underscore"),
        pytest.param("CVE-24-1234", None, id="short-year"),
        pytest.param("CVE-2024-", None, id="no-number"),
        pytest.param("CVE-2024-12a", None, id="letters-in-number"),
        pytest.param("RHSA-2024-1234", None, id="unknown-prefix"),
        pytest.param("cve-bin-tool", None, id="package-name"),
        pytest.param("PYSEC-2024-1\u0661", None, id="arabic-digit"),
        pytest.param(" PYSEC-2024-1", None, id="blank"),
    ],
)
def test_advisory_id(text: str, expected: str | None) -> None:
    assert advisory_id(text) == expected


def test_mixed_file_splits_package_and_advisory_rules() -> None:
    assert parse_ignores(MIXED) == (
        IgnoreRule("numpy", ">=2.0", "ignored by @alice in #12: waiting for the 2.x migration", 3),
        IgnoreRule("torch", None, "ignored by @bob in #15", 5),
    )
    assert parse_advisory_ignores(MIXED) == (
        AdvisoryIgnore(
            "GHSA-abcd-1234-wxyz",
            "ignored by @alice in #12: no fix we can take yet",
            date(2027, 1, 31),
            4,
        ),
        AdvisoryIgnore(
            "PYSEC-2024-12", "ignored by @bob in #15: the code path is never imported", None, 6
        ),
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("CVE-2024-1234  # why", AdvisoryIgnore("CVE-2024-1234", "why", None, 1)),
        pytest.param(
            "cve-2024-1234\t#until 2027-1-5: why  \r\n",
            AdvisoryIgnore("CVE-2024-1234", "why", date(2027, 1, 5), 1),
            id="loose-spelling",
        ),
        pytest.param(
            "PYSEC-2024-12  # until 2027-01-31 why",
            AdvisoryIgnore("PYSEC-2024-12", "why", date(2027, 1, 31), 1),
            id="no-separator",
        ),
        pytest.param(
            "PYSEC-2024-12  # until upstream ships a fix",
            AdvisoryIgnore("PYSEC-2024-12", "until upstream ships a fix", None, 1),
            id="until-without-a-date-is-reason",
        ),
        pytest.param(
            "PYSEC-2024-12  # see #12 # and #13",
            AdvisoryIgnore("PYSEC-2024-12", "see #12 # and #13", None, 1),
            id="hashes-in-reason",
        ),
    ],
)
def test_advisory_rule_spellings(line: str, expected: AdvisoryIgnore) -> None:
    assert parse_advisory_ignores(line) == (expected,)
    assert parse_ignores(line) == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("GHSA-abcd-1234-wxyz", "has no reason", id="no-comment"),
        pytest.param("GHSA-abcd-1234-wxyz  #   ", "has no reason", id="empty-comment"),
        pytest.param("GHSA-abcd-1234-wxyz  # until 2027-01-31", "has no reason", id="only-until"),
        pytest.param("GHSA-abcd-1234-wxyz  # until 2027-02-30, x", "is not a date", id="bad-day"),
        pytest.param("GHSA-abcd-1234-wxyz >=2  # x", "the id alone", id="with-range"),
        pytest.param("PYSEC-2024-1 PYSEC-2024-2  # x", "the id alone", id="two-ids"),
        pytest.param("PYSEC-2024-1  # a\nPYSEC-2024-1  # b", "already ignored on line 5", id="dup"),
    ],
)
def test_bad_advisory_lines_name_file_and_line(line: str, message: str) -> None:
    text = f"# header\n\ntorch\nnumpy>=2\n{line}\n"
    number = 5 if "\n" not in line else 6
    for parse in (parse_ignores, parse_advisory_ignores):
        with pytest.raises(LockfileParseError) as excinfo:
            parse(text, path="x/ignore.txt")
        assert str(excinfo.value).startswith(f"x/ignore.txt:{number}: "), str(excinfo.value)
        assert message in str(excinfo.value)


def test_active_through_the_until_day() -> None:
    rule = AdvisoryIgnore("CVE-2024-1234", "why", date(2027, 1, 31), 1)
    assert rule.active(date(2026, 12, 1))
    assert rule.active(date(2027, 1, 31))
    assert not rule.active(date(2027, 2, 1))
    assert AdvisoryIgnore("CVE-2024-1234", "why", None, 1).active(date(9999, 1, 1))


def test_read_advisory_ignores(tmp_path: Path) -> None:
    assert read_advisory_ignores(tmp_path) == ()
    path = tmp_path / IGNORE_FILE
    path.parent.mkdir()
    path.write_text(MIXED, "utf-8")
    assert [r.id for r in read_advisory_ignores(tmp_path)] == [
        "GHSA-abcd-1234-wxyz",
        "PYSEC-2024-12",
    ]
    assert [str(r) for r in read_ignores(tmp_path)] == ["numpy>=2.0", "torch"]


def test_read_advisory_ignores_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / IGNORE_FILE
    path.parent.mkdir()
    path.write_text("torch\nCVE-2024-1234\n", "utf-8")
    with pytest.raises(LockfileParseError, match=r"^\.github/lockwarden-ignore\.txt:2: CVE-2024"):
        read_advisory_ignores(tmp_path)


def test_advisory_rules_never_become_constraints() -> None:
    rules = parse_ignores(MIXED)
    # even with a locked package whose name reads like an id, only package rules constrain
    locked = {"torch": "2.1.0", "ghsa-abcd-1234-wxyz": "1.0", "pysec-2024-12": "1.0"}
    assert exclusion_constraints(rules, locked) == ["numpy<2.0", "torch==2.1.0"]
    assert ignore_note(rules, locked, None) == (
        f"kept out by {IGNORE_FILE}: numpy>=2.0, torch (held at 2.1.0)",
    )


@pytest.mark.parametrize(
    "rule",
    [
        AdvisoryIgnore(
            "GHSA-abcd-1234-wxyz", "ignored by @alice in #12: no fix", date(2027, 1, 31), 0
        ),
        AdvisoryIgnore("PYSEC-2024-12", "until upstream ships: see #3 # and more", None, 0),
        AdvisoryIgnore("CVE-2024-1234", "x", date(2026, 1, 1), 0),
    ],
)
def test_advisory_rule_round_trip(rule: AdvisoryIgnore) -> None:
    text = add_advisory_ignore(None, rule.id, rule.reason, rule.until)
    assert text == f"{HEADER}{rule}\n"
    (read,) = parse_advisory_ignores(text)
    assert (read.id, read.reason, read.until, read.line) == (rule.id, rule.reason, rule.until, 3)
    assert parse_ignores(text) == ()


def test_add_advisory_ignore_keeps_every_other_byte() -> None:
    before = MIXED.replace("\n", "\r\n").removesuffix("\r\n")  # CRLF, no final line end
    text = add_advisory_ignore(before, "cve-2024-1234", "ignored by @carol in #3: why", None)
    assert text == before + "\r\nCVE-2024-1234  # ignored by @carol in #3: why\r\n"
    # the same id again replaces its line in place: a renewal
    renewed = add_advisory_ignore(
        MIXED, "ghsa-ABCD-1234-wxyz", "renewed  by\n@alice", date(2028, 1, 1)
    )
    lines = renewed.splitlines()
    assert lines[3] == "GHSA-abcd-1234-wxyz  # until 2028-01-01, renewed by @alice"
    assert renewed.replace(lines[3], MIXED.splitlines()[3]) == MIXED
    assert parse_ignores(renewed) == parse_ignores(MIXED)


@pytest.mark.parametrize(
    ("ident", "reason", "until", "message"),
    [
        pytest.param("GHSA-abcd", "x", None, "is GHSA-xxxx-xxxx-xxxx", id="bad-id"),
        pytest.param("numpy", "x", None, "is GHSA-xxxx-xxxx-xxxx", id="package"),
        pytest.param("CVE-2024-1234", " \n ", None, "without a reason", id="no-reason"),
        pytest.param(
            "CVE-2024-1234", "until 2027-01-01 x", None, "starts with an expiry", id="until"
        ),
    ],
)
def test_add_advisory_ignore_refuses(
    ident: str, reason: str, until: date | None, message: str
) -> None:
    with pytest.raises(IgnoreRuleError, match=message):
        add_advisory_ignore(MIXED, ident, reason, until)


def test_add_advisory_ignore_refuses_a_broken_file() -> None:
    with pytest.raises(LockfileParseError, match=r"lockwarden-ignore\.txt:2: "):
        add_advisory_ignore("torch\nPYSEC-2024-1\n", "CVE-2024-1234", "x", None)


def test_remove_advisory_ignore() -> None:
    text = add_advisory_ignore(EXAMPLE, "CVE-2024-1234", "ignored by @carol", date(2027, 1, 1))
    assert remove_advisory_ignore(text, "cve-2024-1234") == (EXAMPLE, 1)
    assert remove_advisory_ignore(EXAMPLE, "CVE-2024-1234") == (EXAMPLE, 0)
    # a package rule is never removed by an advisory id, nor an advisory rule by a name
    assert remove_ignore(MIXED, "ghsa-abcd-1234-wxyz") == (MIXED, 0)
    without, removed = remove_advisory_ignore(MIXED, "GHSA-abcd-1234-wxyz")
    assert removed == 1
    assert parse_ignores(without) == tuple(
        IgnoreRule(r.package, r.specifier, r.note, r.line - (r.line > 4))
        for r in parse_ignores(MIXED)
    )
