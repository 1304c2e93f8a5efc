"""Pins written into a requirements spec: notes, pin, unpin, and their round trip."""

from __future__ import annotations

import pytest

from bot.errors import LockwardenError
from bot.locks.formats.base import SpecEntry
from bot.locks.formats.requirements.spec_edit import pin_in_spec, spec_entry, unpin_in_spec
from bot.locks.pin_notes import PIN_NOTE_RE, pin_note

SPEC = """\
# Serving stack
--index-url https://pypi.example/simple
-r base.in
-c ../constraints.txt
numpy>=1.20
torch  # CUDA build comes from the index
uvicorn[standard]
"""


# -- pin_note / PIN_NOTE_RE ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "note"),
    [
        pytest.param(
            ("pinned", "alice", 12, "breaks tokenizer", None),
            "pinned by @alice in #12: breaks tokenizer",
            id="pinned",
        ),
        pytest.param(
            ("pinned", "alice", 12, "breaks tokenizer", "numpy>=1.20"),
            "pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer",
            id="with-was",
        ),
        pytest.param(
            ("rolled back", "@bob", None, None, None), "rolled back by @bob", id="bare-rollback"
        ),
        pytest.param(
            ("pinned", "dependabot[bot]", 3, "  two\n lines  ", "  "),
            "pinned by @dependabot[bot] in #3: two lines",
            id="one-line-blank-was",
        ),
        pytest.param(
            ("pinned", "carol", 7, "", 'numpy>=1.20; (python_version < "3.12")'),
            'pinned by @carol in #7 (was: numpy>=1.20; (python_version < "3.12"))',
            id="was-with-parentheses-no-reason",
        ),
    ],
)
def test_pin_note(args: tuple[str, str, int | None, str | None, str | None], note: str) -> None:
    assert pin_note(*args) == note
    match = PIN_NOTE_RE.match(note)
    assert match is not None
    verb, login, number, reason, was = args
    assert match.group("verb") == verb
    assert match.group("login") == login.removeprefix("@")
    assert match.group("number") == (str(number) if number is not None else None)
    assert match.group("was") == ((was or "").strip() or None)
    assert match.group("reason") == (" ".join((reason or "").split()) or None)


def test_note_reason_may_hold_parentheses_and_colons() -> None:
    note = pin_note("pinned", "a", 1, "see (upstream): #99", "x>=1")
    match = PIN_NOTE_RE.match(note)
    assert match is not None
    assert (match.group("was"), match.group("reason")) == ("x>=1", "see (upstream): #99")


def test_unknown_verb() -> None:
    with pytest.raises(LockwardenError, match="unknown pin verb 'held'"):
        pin_note("held", "a", None, None, None)


@pytest.mark.parametrize(
    "comment",
    ["CUDA build comes from the index", "pinned by alice", "pinned by @alice in #x", "pinned"],
)
def test_other_comments_are_no_pin_notes(comment: str) -> None:
    assert PIN_NOTE_RE.match(comment) is None


# -- spec_entry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "package", "expected"),
    [
        pytest.param(SPEC, "NumPy", SpecEntry("numpy>=1.20", None, None), id="canonical-match"),
        pytest.param(
            SPEC,
            "torch",
            SpecEntry(
                "torch  # CUDA build comes from the index", "CUDA build comes from the index", None
            ),
            id="comment-kept-as-written",
        ),
        pytest.param(SPEC, "uvicorn", SpecEntry("uvicorn[standard]", None, None), id="extras"),
        pytest.param(SPEC, "base", None, id="include-is-no-requirement"),
        pytest.param(SPEC, "jax", None, id="absent"),
        pytest.param(
            "numpy >= 1.20 ; python_version<'3.12'\nnumpy>=2\n",
            "numpy",
            SpecEntry("numpy >= 1.20 ; python_version<'3.12'", None, None),
            id="first-line-as-written",
        ),
        pytest.param(
            "numpy==1.0 --hash=sha256:abc\n",
            "numpy",
            SpecEntry("numpy==1.0 --hash=sha256:abc", None, "1.0"),
            id="exact-pin-with-options",
        ),
        pytest.param("numpy==1.*\n", "numpy", SpecEntry("numpy==1.*", None, None), id="wildcard"),
        pytest.param("./local/pkg\n-e .\n", "pkg", None, id="paths-skipped"),
    ],
)
def test_spec_entry(text: str, package: str, expected: SpecEntry | None) -> None:
    assert spec_entry(text, package) == expected


@pytest.mark.parametrize(
    ("spec", "package", "requirement"),
    [
        pytest.param(SPEC, "numpy", "numpy==1.26.4", id="existing-line"),
        pytest.param(SPEC, "jax", "jax==0.4.30", id="appended-line"),
        pytest.param(SPEC.replace("\n", "\r\n"), "NumPy", "numpy==1.26.4", id="crlf"),
        pytest.param(
            'a\nnumpy >= 1.20 ; python_version < "3.12"\nb\n',
            "numpy",
            "numpy==1.26.4",
            id="marker-with-spaces",
        ),
    ],
)
def test_pin_then_unpin_restores_the_spec(spec: str, package: str, requirement: str) -> None:
    entry = spec_entry(spec, package)
    note = pin_note("pinned", "alice", 12, "breaks tokenizer", entry.written if entry else None)
    pinned = pin_in_spec(spec, requirement, note)
    assert pinned != spec
    after = spec_entry(pinned, package)
    assert after is not None
    assert after.pinned_version == requirement.partition("==")[2]
    assert unpin_in_spec(pinned, package) == (spec, True)
