"""Pins written into a requirements spec: notes, pin, unpin, and their round trip."""

from __future__ import annotations

import pytest

from bot.errors import LockwardenError
from bot.locks.formats.requirements.spec_edit import pin_in_spec, spec_requirement, unpin_in_spec
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


# -- spec_requirement ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "package", "expected"),
    [
        pytest.param(SPEC, "NumPy", "numpy>=1.20", id="canonical-match"),
        pytest.param(SPEC, "torch", "torch", id="inline-comment-dropped"),
        pytest.param(SPEC, "uvicorn", "uvicorn[standard]", id="extras-as-written"),
        pytest.param(SPEC, "base", None, id="include-is-no-requirement"),
        pytest.param(SPEC, "jax", None, id="absent"),
        pytest.param(
            "numpy >= 1.20 ; python_version<'3.12'\nnumpy>=2\n",
            "numpy",
            "numpy >= 1.20 ; python_version<'3.12'",
            id="first-line-as-written",
        ),
        pytest.param("numpy==1.0 --hash=sha256:abc\n", "numpy", "numpy==1.0", id="options-dropped"),
        pytest.param("numpy>=1 \\\n  ,<2\n", "numpy", "numpy>=1    ,<2", id="continued"),
        pytest.param("./local/pkg\n-e .\n", "pkg", None, id="paths-skipped"),
    ],
)
def test_spec_requirement(text: str, package: str, expected: str | None) -> None:
    assert spec_requirement(text, package) == expected


# -- pin_in_spec -----------------------------------------------------------------------------

NOTE = "pinned by @alice in #12: breaks tokenizer"


@pytest.mark.parametrize(
    ("text", "requirement", "expected"),
    [
        pytest.param(
            SPEC,
            "numpy==1.26.4",
            SPEC.replace("numpy>=1.20\n", f"numpy==1.26.4  # {NOTE}\n"),
            id="replace",
        ),
        pytest.param(
            SPEC,
            "torch==2.3.1",
            SPEC.replace("torch  # CUDA build comes from the index\n", f"torch==2.3.1  # {NOTE}\n"),
            id="replace-line-with-comment",
        ),
        pytest.param(
            "a\r\nNumPy >= 1.20\r\nb\r\n",
            "numpy==1.26.4",
            f"a\r\nnumpy==1.26.4  # {NOTE}\r\nb\r\n",
            id="crlf-kept",
        ),
        pytest.param(
            "numpy<2; python_version<'3.12'\nscipy\nnumpy>=2; python_version>='3.12'\n",
            "numpy==1.26.4",
            f"numpy==1.26.4  # {NOTE}\nscipy\n",
            id="every-line-of-the-package",
        ),
        pytest.param(SPEC, "jax==0.4.30", SPEC + f"jax==0.4.30  # {NOTE}\n", id="append"),
        pytest.param("scipy", "numpy==1", f"scipy\nnumpy==1  # {NOTE}\n", id="append-newline"),
        pytest.param("scipy\r\n", "numpy==1", f"scipy\r\nnumpy==1  # {NOTE}\r\n", id="append-crlf"),
        pytest.param("", "numpy==1", f"numpy==1  # {NOTE}\n", id="empty-spec"),
        pytest.param(
            "numpy>=1\nscipy \\\n  >=1\n",
            "numpy==1",
            f"numpy==1  # {NOTE}\nscipy \\\n  >=1\n",
            id="continuation-elsewhere-kept",
        ),
        pytest.param(
            "numpy>=1\n", "numpy==1", f"numpy==1  # {NOTE}\n", id="no-trailing-content-lost"
        ),
        pytest.param("numpy  # x", "numpy==1", f"numpy==1  # {NOTE}", id="last-line-no-eol"),
    ],
)
def test_pin_in_spec(text: str, requirement: str, expected: str) -> None:
    assert pin_in_spec(text, requirement, NOTE) == expected


def test_pin_without_note() -> None:
    assert pin_in_spec("numpy\n", "numpy==1", " \n") == "numpy==1\n"


def test_pin_refuses_a_continued_line() -> None:
    text = "scipy\nnumpy>=1.20 \\\n    ,<2\n"
    with pytest.raises(LockwardenError) as excinfo:
        pin_in_spec(text, "numpy==1.26.4", NOTE, path="requirements/serve.in")
    message = str(excinfo.value)
    assert message.startswith("requirements/serve.in:2: ")
    assert "is continued with '\\' at the end of a line" in message
    assert "join it into one line" in message


def test_pin_refuses_a_continued_line_at_the_end_of_the_file() -> None:
    with pytest.raises(LockwardenError, match=r"^the spec:1: the requirement for numpy"):
        pin_in_spec("numpy>=1 \\\n", "numpy==1", NOTE)


def test_pin_rejects_a_bad_requirement() -> None:
    with pytest.raises(LockwardenError, match=r"cannot pin 'numpy=>1'"):
        pin_in_spec(SPEC, "numpy=>1", NOTE)


# -- unpin_in_spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "package", "expected"),
    [
        pytest.param(
            "a\nnumpy==1.26.4  # pinned by @alice in #12 (was: numpy>=1.20): x\nb\n",
            "NumPy",
            ("a\nnumpy>=1.20\nb\n", True),
            id="was-restored",
        ),
        pytest.param(
            "a\r\nnumpy==1  # rolled back by @bob\r\nb\r\n",
            "numpy",
            ("a\r\nb\r\n", True),
            id="no-was-line-removed",
        ),
        pytest.param(
            "numpy==1  # pinned by hand, do not touch\n",
            "numpy",
            ("numpy==1  # pinned by hand, do not touch\n", False),
            id="hand-written-pin-left",
        ),
        pytest.param("numpy==1\n", "numpy", ("numpy==1\n", False), id="no-comment"),
        pytest.param(
            "scipy==1  # pinned by @a\n",
            "numpy",
            ("scipy==1  # pinned by @a\n", False),
            id="other-package",
        ),
        pytest.param(
            "# pinned by @a\n-r base.in  # pinned by @a\n",
            "numpy",
            ("# pinned by @a\n-r base.in  # pinned by @a\n", False),
            id="comments-and-includes",
        ),
        pytest.param(
            "numpy>=1 \\\n  ,<2  # pinned by @a\n",
            "numpy",
            ("numpy>=1 \\\n  ,<2  # pinned by @a\n", False),
            id="continued-line-is-no-pin-of-ours",
        ),
        pytest.param(
            "numpy==1  # pinned by @a (was: numpy>=1)",
            "numpy",
            ("numpy>=1", True),
            id="last-line-no-eol",
        ),
    ],
)
def test_unpin_in_spec(text: str, package: str, expected: tuple[str, bool]) -> None:
    assert unpin_in_spec(text, package) == expected


# -- round trips -----------------------------------------------------------------------------


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
    was = spec_requirement(spec, package)
    note = pin_note("pinned", "alice", 12, "breaks tokenizer", was)
    pinned = pin_in_spec(spec, requirement, note)
    assert pinned != spec
    assert spec_requirement(pinned, package) == requirement
    assert unpin_in_spec(pinned, package) == (spec, True)
