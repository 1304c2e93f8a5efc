"""Exact change reports: new files are no re-upload, extras lines pair with their package,
marker-only changes show, unrecorded groups are unknown, and changed bytes are never "none"."""

from __future__ import annotations

import textwrap

import pytest

from bot.locks.diff import TextChange, describe_text_change, diff_locks
from bot.locks.formats.poetry.project import parse_poetry_lock
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.report.markdown import change_summary

H1, H2, H3 = ("sha256:" + c * 64 for c in "abc")


def req(text: str) -> Lockfile:
    return parse_lockfile(textwrap.dedent(text), "requirements.txt")


def poetry(packages: str, lock_version: str = "2.1") -> Lockfile:
    text = f'{textwrap.dedent(packages)}\n[metadata]\nlock-version = "{lock_version}"\n'
    return parse_poetry_lock(text, "poetry.lock")


def package(files: str, groups: str | None = '["main"]', name: str = "beta") -> str:
    group_line = f"groups = {groups}\n" if groups is not None else ""
    return f'[[package]]\nname = "{name}"\nversion = "1.0"\n{group_line}files = [{files}]\n'


def file(name: str, sha: str) -> str:
    return f'{{file = "{name}", hash = "{sha}"}},'


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            req(f"beta==1.0 --hash={H1}\n"),
            req(f"beta==1.0 --hash={H1} --hash={H2}\n"),
            [("beta", "files-added", 1, 0, ())],
            id="requirements-hashes-added-only",
        ),
        pytest.param(
            req(f"beta==1.0 --hash={H1} --hash={H2}\n"),
            req(f"beta==1.0 --hash={H1} --hash={H3}\n"),
            [("beta", "hash-only", 1, 1, ())],
            id="requirements-hash-replaced",
        ),
        pytest.param(
            poetry(package(file("b.whl", H1))),
            poetry(package(file("b.whl", H1) + file("b-arm.whl", H2))),
            [("beta", "files-added", 1, 0, ())],
            id="poetry-new-wheel",
        ),
        pytest.param(
            poetry(package(file("b.whl", H1) + file("b-arm.whl", H2))),
            poetry(package(file("b.whl", H1) + file("b-new.whl", H3))),
            [("beta", "files-changed", 1, 1, ())],
            id="poetry-file-swapped-under-another-name",
        ),
        pytest.param(
            poetry(package(file("b.whl", H1))),
            poetry(package(file("b.whl", H2))),
            [("beta", "hash-only", 1, 1, ("b.whl",))],
            id="poetry-same-name-new-hash",
        ),
    ],
)
def test_files_and_hashes(
    before: Lockfile, after: Lockfile, expected: list[tuple[object, ...]]
) -> None:
    diff = diff_locks(before, after)
    got = [
        (c.name, c.change, len(c.hashes_added), len(c.hashes_removed), c.files_changed)
        for c in diff.changes
    ]
    assert got == expected
    # Only a changed or removed hash without a name to explain it is a possible re-upload.
    assert [c.name for c in diff.hash_only] == [
        n for n, kind, *_ in expected if kind == "hash-only"
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            'requests[socks]==2.32.3 ; python_version >= "3.8"\n',
            'requests==2.32.3 ; python_version >= "3.8"\n',
            [],
            id="extras-line-is-the-same-package",
        ),
        pytest.param(
            "requests==2.32.3\nrequests[socks]==2.32.3\n",
            "requests[socks]==2.32.3\n",
            [],
            id="extras-duplicate-collapsed",
        ),
        pytest.param(
            'pydantic==2.5.0 ; python_version >= "3.8"\n'
            'pydantic[email]==2.5.0 ; python_version >= "3.8"\n',
            'pydantic[email]==2.6.0 ; python_version >= "3.8"\n',
            [("pydantic", "2.5.0", "2.6.0", "upgraded")],
            id="upgrade-is-one-line-not-added-and-removed",
        ),
        pytest.param(
            'six==1.16.0 ; python_version >= "3.8"\n',
            'six==1.16.0 ; python_version >= "3.9"\n',
            [("six", "1.16.0", "1.16.0", "marker")],
            id="marker-only-change",
        ),
    ],
)
def test_pairing_and_markers(before: str, after: str, expected: list[tuple[object, ...]]) -> None:
    diff = diff_locks(req(before), req(after))
    assert [(c.name, c.before, c.after, c.change) for c in diff.changes] == expected


def test_marker_change_keeps_the_marker_before() -> None:
    (change,) = diff_locks(req("six==1.0 ; os_name == 'nt'\n"), req("six==1.0\n")).changes
    assert (change.change, change.marker_before, change.marker) == (
        "marker",
        'os_name == "nt"',
        None,
    )


@pytest.mark.parametrize(
    ("before_groups", "after_groups", "expected"),
    [
        pytest.param(None, '["main"]', [], id="old-lock-records-none-unknown"),
        pytest.param('["dev"]', '["main"]', [("group", ("dev",), ("main",))], id="moved"),
    ],
)
def test_groups_are_only_compared_when_recorded(
    before_groups: str | None, after_groups: str, expected: list[tuple[object, ...]]
) -> None:
    before = poetry(
        package(file("b.whl", H1), before_groups), "2.0" if not before_groups else "2.1"
    )
    after = poetry(package(file("b.whl", H1), after_groups))
    diff = diff_locks(before, after)
    assert [(c.change, c.groups_before, c.groups) for c in diff.changes] == expected


POETRY_18 = (
    "# This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand."
    '\n\n[metadata]\nlock-version = "2.0"\n'
)
POETRY_25 = (
    "# This file is automatically @generated by Poetry 2.5.1 and should not be changed by hand."
    '\n\n[metadata]\nlock-version = "2.1"\n'
)
PIN = "six==1.16.0\n    # via -r requirements.in\n"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(PIN, PIN, None, id="same-bytes"),
        pytest.param(
            "# pip-compile requirements.in\n" + PIN,
            "# pip-compile --output-file=requirements.txt requirements.in\n" + PIN,
            TextChange("header"),
            id="header",
        ),
        pytest.param(
            PIN, "six==1.16.0\n    # via -r base.in\n", TextChange("annotations"), id="via"
        ),
        pytest.param(
            PIN, "six==1.16.0  # via -r requirements.in\n", TextChange("annotations"), id="style"
        ),
        pytest.param(PIN, "six == 1.16.0\n", TextChange("layout"), id="layout"),
        pytest.param(
            POETRY_18,
            POETRY_25,
            TextChange("format-migration", "from Poetry 1.8.3 (lock-version 2.0) to Poetry 2.5.1"),
            id="poetry-format-migration",
        ),
    ],
)
def test_describe_text_change(old: str, new: str, expected: TextChange | None) -> None:
    assert describe_text_change(old, new) == expected


def test_changed_bytes_are_never_summarised_none() -> None:
    same = diff_locks(req(PIN), req(PIN))
    assert change_summary(same, PIN, PIN) == "none"
    assert change_summary(same, "# old\n" + PIN, "# new\n" + PIN) == "header only"
    assert change_summary(same, POETRY_18, POETRY_25) == (
        "format migration from Poetry 1.8.3 (lock-version 2.0) to Poetry 2.5.1"
    )
    files = diff_locks(req(f"six==1.0 --hash={H1}\n"), req(f"six==1.0 --hash={H1} --hash={H2}\n"))
    assert change_summary(files) == "1 with files added"
