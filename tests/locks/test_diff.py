"""Lock diffs: matching, change types, version-jump sizes, direct vs transitive."""

from __future__ import annotations

import textwrap
from typing import get_args

import pytest

from bot.locks.diff import (
    ChangeType,
    LockDiff,
    PackageChange,
    classify_version_change,
    diff_locks,
)
from bot.locks.lockfile import Lockfile, parse_lockfile

H1 = "sha256:" + "a" * 64
H2 = "sha256:" + "b" * 64
H3 = "sha256:" + "c" * 64


def lock(text: str) -> Lockfile:
    return parse_lockfile(textwrap.dedent(text), "requirements.txt")


# -- classify_version_change ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "direction", "kind"),
    [
        pytest.param("1.2.3", "2.0.0", "upgraded", "major", id="major"),
        pytest.param("1.2.3", "1.3.0", "upgraded", "minor", id="minor"),
        pytest.param("1.2.3", "1.2.4", "upgraded", "patch", id="patch"),
        pytest.param("1.2.3.4", "1.2.3.5", "upgraded", "patch", id="fourth-part-is-patch"),
        pytest.param("2.0", "1.9", "downgraded", "major", id="downgrade-major"),
        pytest.param("1.3", "1.2.9", "downgraded", "minor", id="downgrade-minor"),
        pytest.param("1.0", "1.0.1", "upgraded", "patch", id="shorter-release-padded"),
        pytest.param("1.0", "1.0.0", "same", None, id="padded-equal-is-same"),
        pytest.param("1.0", "1.0", "same", None, id="same"),
        pytest.param("2.0rc1", "2.0rc2", "upgraded", "pre-release", id="pre-to-pre"),
        pytest.param("2.0rc1", "2.0", "upgraded", "pre-release", id="pre-to-final"),
        pytest.param("2.0.dev1", "2.0.dev2", "upgraded", "pre-release", id="dev-segment"),
        pytest.param("1.2.0", "2.0.0rc1", "upgraded", "pre-release", id="jump-onto-pre-release"),
        pytest.param("1.2.0", "1.2.1.dev3", "upgraded", "pre-release", id="jump-onto-dev"),
        pytest.param("1.9rc1", "2.0", "upgraded", "major", id="from-pre-release-by-release"),
        pytest.param("2.1", "2.0rc1", "downgraded", "pre-release", id="down-onto-pre-release"),
        pytest.param("1.0", "1.0.post1", "upgraded", "post", id="post"),
        pytest.param("1.0.post2", "1.0.post1", "downgraded", "post", id="post-downgrade"),
        pytest.param("2.3.0+cu118", "2.3.0+cu121", "upgraded", "local", id="local"),
        pytest.param("2.3.0", "2.3.0+cpu", "upgraded", "local", id="local-added"),
        pytest.param("2.3.0+cu121", "2.4.0+cu121", "upgraded", "minor", id="release-beats-local"),
        pytest.param("2024.1", "1!1.0", "upgraded", "major", id="epoch"),
        pytest.param("abc", "abd", "upgraded", None, id="invalid-versions-by-string"),
        pytest.param("abd", "1.0", "downgraded", None, id="one-invalid-version"),
        pytest.param("weird-1", "weird-1", "same", None, id="invalid-same"),
    ],
)
def test_classify_version_change(before: str, after: str, direction: str, kind: str | None) -> None:
    assert classify_version_change(before, after) == (direction, kind)


# -- single-package changes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            "six==1.15.0\n    # via a\n",
            "six==1.16.0\n    # via a\n",
            PackageChange("six", "1.15.0", "1.16.0", "upgraded", "minor", direct=False),
            id="upgraded-transitive",
        ),
        pytest.param(
            "six==1.16.0\n    # via -r requirements.in\n",
            "six==1.15.0\n    # via -r requirements.in\n",
            PackageChange("six", "1.16.0", "1.15.0", "downgraded", "minor", direct=True),
            id="downgraded-direct-by-via",
        ),
        pytest.param(
            "",
            "torch==2.3.0\n    # via\n    #   -r requirements/serve.in\n",
            PackageChange("torch", None, "2.3.0", "added", None, direct=True),
            id="added",
        ),
        pytest.param(
            "torch==2.3.0\n    # via -r requirements.in\n",
            "",
            PackageChange("torch", "2.3.0", None, "removed", None, direct=True),
            id="removed-direct-from-before-via",
        ),
        pytest.param(
            "feast==0.40\n    # via feast (pyproject.toml)\n",
            "feast==0.41\n    # via feast (pyproject.toml)\n",
            PackageChange("feast", "0.40", "0.41", "upgraded", "minor", direct=True),
            id="direct-from-project-file",
        ),
        pytest.param(
            f"six==1.16.0 --hash={H1} --hash={H2}\n",
            f"six==1.16.0 --hash={H2} --hash={H3}\n",
            PackageChange(
                "six",
                "1.16.0",
                "1.16.0",
                "hash-only",
                None,
                direct=False,
                hashes_added=(H3,),
                hashes_removed=(H1,),
            ),
            id="hash-only",
        ),
        pytest.param(
            "a @ https://example.com/a-1.0.tar.gz\n",
            "a @ https://example.com/a-1.1.tar.gz\n",
            PackageChange(
                "a",
                "https://example.com/a-1.0.tar.gz",
                "https://example.com/a-1.1.tar.gz",
                "source",
                None,
                direct=False,
            ),
            id="url-changed",
        ),
        pytest.param(
            "git+https://github.com/a/b.git@111#egg=b\n",
            "git+https://github.com/a/b.git@222#egg=b\n",
            PackageChange(
                "b",
                "git+https://github.com/a/b.git@111#egg=b",
                "git+https://github.com/a/b.git@222#egg=b",
                "source",
                None,
                direct=False,
            ),
            id="vcs-revision-changed",
        ),
        pytest.param(
            "opustrainer==0.4\n",
            "opustrainer @ git+https://github.com/mozilla/OpusTrainer.git@554b72\n",
            PackageChange(
                "opustrainer",
                "0.4",
                "git+https://github.com/mozilla/OpusTrainer.git@554b72",
                "source",
                None,
                direct=False,
            ),
            id="pin-replaced-by-url",
        ),
        pytest.param(
            "numpy>=1.26\n",
            "numpy>=2.0\n",
            PackageChange("numpy", ">=1.26", ">=2.0", "source", None, direct=False),
            id="unpinned-specifier-changed",
        ),
        pytest.param(
            "a==1.0 ; python_version < '3.12'\n",
            "a==1.1 ; python_version < '3.13'\n",
            PackageChange(
                "a",
                "1.0",
                "1.1",
                "upgraded",
                "minor",
                direct=False,
                marker='python_version < "3.13"',
                marker_before='python_version < "3.12"',
            ),
            id="single-entry-matched-although-marker-changed",
        ),
        pytest.param(
            "Foo_Bar==1.0\n",
            "foo-bar==1.0.1\n",
            PackageChange("foo-bar", "1.0", "1.0.1", "upgraded", "patch", direct=False),
            id="matched-by-canonical-name",
        ),
        pytest.param(
            "jax==0.4.30\n",
            "jax==0.5.0rc1\n",
            PackageChange("jax", "0.4.30", "0.5.0rc1", "upgraded", "pre-release", direct=False),
            id="upgrade-onto-pre-release",
        ),
    ],
)
def test_single_change(before: str, after: str, expected: PackageChange) -> None:
    diff = diff_locks(lock(before), lock(after))
    assert diff.changes == (expected,)
    assert diff.changed


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("six==1.16.0\n", "six==1.16.0\n", id="identical"),
        pytest.param(
            "six==1.16.0\n    # via a\n",
            "six==1.16.0\n    # via\n    #   a\n    #   b\n",
            id="only-via-changed",
        ),
        pytest.param(
            f"six==1.16.0 --hash={H1} --hash={H2}\n",
            f"six==1.16.0 --hash={H2} --hash={H1}\n",
            id="same-hashes-other-order",
        ),
        pytest.param("six==1.16.0\n", f"six==1.16.0 --hash={H1}\n", id="hashes-newly-generated"),
        pytest.param(f"six==1.16.0 --hash={H1}\n", "six==1.16.0\n", id="hashes-dropped"),
        pytest.param("six==1.0\n", "six==1.0.0\n", id="equal-versions-spelled-differently"),
        pytest.param(
            "a @ https://example.com/a-1.0.tar.gz\n",
            "a @ https://example.com/a-1.0.tar.gz\n",
            id="same-url",
        ),
        pytest.param("numpy>=1.26\n", "numpy>=1.26\n", id="same-range"),
    ],
)
def test_no_change(before: str, after: str) -> None:
    diff = diff_locks(lock(before), lock(after))
    assert diff.changes == ()
    assert not diff.changed
    assert diff.counts() == dict.fromkeys(get_args(ChangeType), 0)


# -- direct vs transitive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "direct_names", "direct"),
    [
        pytest.param("six==2\n    # via a\n", frozenset(), False, id="transitive"),
        pytest.param("six==2\n    # via a\n", frozenset({"six"}), True, id="named-direct"),
        pytest.param("Six==2\n    # via a\n", frozenset({"SIX"}), True, id="named-non-canonical"),
        pytest.param("six==2\n    # via -c constraints.txt\n", frozenset(), False, id="constraint"),
        pytest.param("six==2\n    # via\n    #   a\n    #   -r x.in\n", frozenset(), True, id="r"),
        pytest.param("six==2  # via -r -, a\n", frozenset(), True, id="old-one-line-stdin"),
    ],
)
def test_direct(after: str, direct_names: frozenset[str], direct: bool) -> None:
    diff = diff_locks(lock("six==1\n"), lock(after), direct_names=direct_names)
    assert [c.direct for c in diff.changes] == [direct]


# -- duplicates ---------------------------------------------------------------------------------

UV_BEFORE = """\
numpy==2.1.3 ; python_full_version < '3.14'
    # via -r build/requirements.in
numpy==2.5.1 ; python_full_version >= '3.14'
    # via -r build/requirements.in
"""


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param(
            """\
            numpy==2.1.3 ; python_full_version < '3.14'
                # via -r build/requirements.in
            numpy==2.6.0 ; python_full_version >= '3.14'
                # via -r build/requirements.in
            """,
            [("numpy", "2.5.1", "2.6.0", "upgraded", 'python_full_version >= "3.14"')],
            id="one-marker-upgraded",
        ),
        pytest.param(
            """\
            numpy==2.2.0 ; python_full_version < '3.14'
            numpy==3.0.0 ; python_full_version >= '3.14'
            """,
            [
                ("numpy", "2.1.3", "2.2.0", "upgraded", 'python_full_version < "3.14"'),
                ("numpy", "2.5.1", "3.0.0", "upgraded", 'python_full_version >= "3.14"'),
            ],
            id="both-markers-upgraded",
        ),
        pytest.param(
            "numpy==2.5.1\n",
            [
                # The pin that stays pairs with the new entry: its marker went, not it.
                ("numpy", "2.5.1", "2.5.1", "marker", None),
                ("numpy", "2.1.3", None, "removed", 'python_full_version < "3.14"'),
            ],
            id="markers-collapsed-into-one-entry",
        ),
        pytest.param(
            """\
            numpy==2.1.3 ; python_full_version < '3.14'
            numpy==2.5.1 ; python_full_version >= '3.14'
            numpy==2.7.0 ; python_full_version >= '3.15'
            """,
            [("numpy", None, "2.7.0", "added", 'python_full_version >= "3.15"')],
            id="marker-added",
        ),
    ],
)
def test_duplicate_markers(after: str, expected: list[tuple[object, ...]]) -> None:
    diff = diff_locks(lock(UV_BEFORE), lock(after))
    assert [(c.name, c.before, c.after, c.change, c.marker) for c in diff.changes] == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("cython==3.0.12\ncython==3.1.1\n", [], id="unchanged"),
        pytest.param(
            "cython==3.1.1\ncython==3.0.12\n", [], id="reordered-duplicates-are-no-change"
        ),
        pytest.param(
            "cython==3.0.12\ncython==3.2.9\n",
            [("3.1.1", "3.2.9", "upgraded")],
            id="one-of-two-versions-moved",
        ),
        pytest.param(
            "cython==3.0.12\ncython==3.1.1\ncython==3.2.9\n",
            [(None, "3.2.9", "added")],
            id="third-version-added",
        ),
        pytest.param("cython==3.1.1\n", [("3.0.12", None, "removed")], id="one-version-removed"),
    ],
)
def test_duplicate_versions_same_marker(after: str, expected: list[tuple[object, ...]]) -> None:
    diff = diff_locks(lock("cython==3.0.12\ncython==3.1.1\n"), lock(after))
    assert [(c.before, c.after, c.change) for c in diff.changes] == expected


# -- whole diffs --------------------------------------------------------------------------------


def test_new_lock_lists_everything_as_added() -> None:
    after = lock(f"""\
        zlib-ng==0.4 --hash={H1}
            # via a
        a==1.0
            # via -r requirements.in
        """)
    diff = diff_locks(None, after)
    assert diff.changes == (
        PackageChange("a", None, "1.0", "added", None, direct=True),
        PackageChange("zlib-ng", None, "0.4", "added", None, direct=False),
    )
    assert diff.counts()["added"] == 2


def test_sorting_counts_and_hash_only() -> None:
    before = lock(f"""\
        zeta==1.0
        alpha==1.0
        beta==2.0 --hash={H1}
        gamma==1.0
        delta @ https://example.com/delta-1.tar.gz
        numpy==1.0 ; python_version >= '3.14'
        numpy==1.0 ; python_version < '3.14'
        """)
    after = lock(f"""\
        alpha==2.0
        beta==2.0 --hash={H2}
        delta @ https://example.com/delta-2.tar.gz
        epsilon==0.1
        numpy==1.1 ; python_version >= '3.14'
        numpy==0.9 ; python_version < '3.14'
        zeta==1.0.1
        """)
    diff = diff_locks(before, after)
    assert [(c.name, c.marker, c.change) for c in diff.changes] == [
        ("alpha", None, "upgraded"),
        ("beta", None, "hash-only"),
        ("delta", None, "source"),
        ("epsilon", None, "added"),
        ("gamma", None, "removed"),
        ("numpy", 'python_version < "3.14"', "downgraded"),
        ("numpy", 'python_version >= "3.14"', "upgraded"),
        ("zeta", None, "upgraded"),
    ]
    assert diff.counts() == {
        "added": 1,
        "removed": 1,
        "upgraded": 3,
        "downgraded": 1,
        "hash-only": 1,
        "source": 1,
        "rebuilt": 0,
        "group": 0,
        "files-added": 0,
        "files-changed": 0,
        "marker": 0,
    }
    assert [c.name for c in diff.hash_only] == ["beta"]
    assert diff.hash_only[0].hashes_added == (H2,)
    assert diff.hash_only[0].hashes_removed == (H1,)


def test_empty_diff_object() -> None:
    diff = LockDiff(changes=())
    assert not diff.changed
    assert diff.hash_only == ()
    assert sum(diff.counts().values()) == 0
