"""Pins that remember: pin -> pin -> unpin, pin -> rollback -> unpin, and a line edited by
hand in between, for every spec format. The person's own line comes back byte for byte."""

from __future__ import annotations

import pytest

from bot.locks.formats import format_for
from bot.locks.formats.base import LockFormat
from bot.locks.pinning import PinAuthor, pin_spec, read_entry, unpin_spec

REQUIREMENTS = "--index-url https://pypi.example/simple\nhcore<2   # tokenizer (v1 API)\nnumpy\n"
PYPROJECT = (
    '[tool.poetry]\nname = "app"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n'
    'hcore = "<2"   # tokenizer (v1 API)\nnumpy = "*"\n'
)
ENVIRONMENT = (
    "name: app\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n"
    "  - hcore<2   # tokenizer (v1 API)\n  - numpy\n"
)
# (backend, spec path, text, the hcore line as a person would edit it by hand)
SPECS = [
    pytest.param("pip-tools", "requirements/serve.in", REQUIREMENTS, "hcore>=1.0.1,<2", id="req"),
    pytest.param("poetry", "pyproject.toml", PYPROJECT, 'hcore = ">=1.0.1,<2"', id="poetry"),
    pytest.param("conda", "environment.yml", ENVIRONMENT, "hcore>=1.0.1,<2", id="conda"),
]
ALICE = PinAuthor("pinned", "alice", 2, "breaks tokenizer")
BOB = PinAuthor("pinned", "bob", 5, None)


def pin(fmt: LockFormat, spec: str, text: str, requirement: str, who: PinAuthor) -> str:
    new = pin_spec(fmt, read_entry(fmt, text, spec, "hcore"), spec, requirement, who)
    assert isinstance(new, str)
    assert new not in ("already-pinned", "edited-by-hand")
    return new


def unpin(fmt: LockFormat, spec: str, text: str) -> str:
    new = unpin_spec(fmt, read_entry(fmt, text, spec, "hcore"), spec, "hcore")
    assert new not in ("already-pinned", "edited-by-hand")
    return new


def note(fmt: LockFormat, spec: str, text: str) -> str:
    entry = fmt.spec_entry(text, spec, "hcore")
    assert entry is not None
    assert entry.comment is not None
    return entry.comment


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
def test_a_repin_keeps_the_first_was_and_reason_and_unpin_restores_the_line(
    backend: str, spec: str, text: str, hand: str
) -> None:
    fmt = format_for(backend)
    first = pin(fmt, spec, text, "hcore==1.0.0", ALICE)
    was = fmt.spec_entry(text, spec, "hcore")
    assert was is not None
    assert (
        note(fmt, spec, first) == f"pinned by @alice in #2 (was: {was.written}): breaks tokenizer"
    )

    second = pin(fmt, spec, first, "hcore==1.0.1", BOB)

    assert note(fmt, spec, second) == f"pinned by @bob in #5 (was: {was.written}): breaks tokenizer"
    entry = fmt.spec_entry(second, spec, "hcore")
    assert entry is not None
    assert entry.pinned_version == "1.0.1"
    assert unpin(fmt, spec, second) == text


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
def test_a_new_reason_replaces_the_old_one(backend: str, spec: str, text: str, hand: str) -> None:
    fmt = format_for(backend)
    first = pin(fmt, spec, text, "hcore==1.0.0", ALICE)
    second = pin(fmt, spec, first, "hcore==1.0.1", PinAuthor("pinned", "bob", 5, "CVE fix"))
    assert note(fmt, spec, second).endswith("): CVE fix")
    assert unpin(fmt, spec, second) == text


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
@pytest.mark.parametrize("version", ["1.0.0", "1.0"])
def test_pinning_the_pinned_version_again_changes_nothing(
    backend: str, spec: str, text: str, hand: str, version: str
) -> None:
    fmt = format_for(backend)
    first = pin(fmt, spec, text, "hcore==1.0.0", ALICE)
    again = pin_spec(fmt, read_entry(fmt, first, spec, "hcore"), spec, f"hcore=={version}", BOB)
    assert again == "already-pinned"


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
def test_pin_rollback_unpin_gives_the_person_their_line_back(
    backend: str, spec: str, text: str, hand: str
) -> None:
    fmt = format_for(backend)
    pinned = pin(fmt, spec, text, "hcore==1.0.1", ALICE)
    rolled = pin(fmt, spec, pinned, "hcore==1.0.0", PinAuthor("rolled back", "carol", 7))
    assert note(fmt, spec, rolled).startswith("rolled back by @carol in #7 (was: ")
    assert note(fmt, spec, rolled).endswith("): breaks tokenizer")
    assert unpin(fmt, spec, rolled) == text


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
def test_a_pinned_line_edited_by_hand_is_left_alone(
    backend: str, spec: str, text: str, hand: str
) -> None:
    fmt = format_for(backend)
    pinned = pin(fmt, spec, text, "hcore==1.0.0", ALICE)
    line = next(line for line in pinned.splitlines() if "pinned by" in line)
    pinned_code = 'hcore = "==1.0.0"' if backend == "poetry" else "hcore==1.0.0"
    edited = pinned.replace(line, line.replace(pinned_code, hand))
    assert edited != pinned

    edit = read_entry(fmt, edited, spec, "hcore")
    assert pin_spec(fmt, edit, spec, "hcore==1.0.2", BOB) == "edited-by-hand"
    assert unpin_spec(fmt, edit, spec, "hcore") == "edited-by-hand"


@pytest.mark.parametrize(("backend", "spec", "text", "hand"), SPECS)
def test_a_package_the_spec_lacks_is_added_and_unpin_removes_it(
    backend: str, spec: str, text: str, hand: str
) -> None:
    fmt = format_for(backend)
    added = pin_spec(fmt, read_entry(fmt, text, spec, "zeta"), spec, "zeta==3.0", ALICE)
    assert isinstance(added, str)
    assert "zeta" in added
    assert unpin_spec(fmt, read_entry(fmt, added, spec, "zeta"), spec, "zeta") == text
