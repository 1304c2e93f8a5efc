"""OS packages: apt and apk arguments found in RUN, pins rewritten byte for byte, candidates
read from ``apt-cache policy``/``apk policy`` and looked up in a real image.

apk has no image here (no Alpine image is available offline), so its output parser is
covered with samples written from apk-tools' documented format, and its lookup path with
a builder that answers with such output. apt runs for real: a base image whose only apt
source is a repository of tiny ``.deb`` packages served on 127.0.0.1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.images import BuilderName, BuildOutcome, BuildSpec, ImageInfo, RunOutcome, RunSpec
from bot.images.buildah import BuildahBuilder
from bot.images.os_packages import (
    APK_SCRIPT,
    APT_SCRIPT,
    BEGIN_MARKER,
    END_MARKER,
    NOTE_PREFIX,
    Manager,
    OsPackage,
    apk_version_key,
    compare_deb_versions,
    find_os_packages,
    is_downgrade,
    lookup_candidates,
    missing_pin_error,
    missing_pins,
    parse_apk_policy,
    parse_apt_policy,
    rewrite_os_pins,
)
from bot.sandbox.egress import EgressPolicy
from tests.support.apt_repo import AptRepository, build_apt_base, require_apt_tools
from tests.support.apt_repo import apt_image as apt_base_image

Row = tuple[str, str, str | None, str | None, int]
"""(manager, name, version, operator, line)"""

# The apt repository of these tests listens on 127.0.0.1, as an operator's mirror would on a
# private address: allowed, as LOCKWARDEN_ALLOWED_PRIVATE_HOSTS allows it in production.
LOCAL = EgressPolicy(("127.0.0.1",))


def rows(text: str) -> list[Row]:
    return [
        (p.manager, p.name, p.version, p.operator, p.line)
        for p in find_os_packages(text, "Dockerfile")
    ]


# -- finding packages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        pytest.param(
            "RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10",
            [("apt", "curl", "7.88.1-10", "=", 2)],
            id="apt-get",
        ),
        pytest.param(
            "RUN apt install -y jq git=1:2.39.2-1.1",
            [("apt", "jq", None, None, 2), ("apt", "git", "1:2.39.2-1.1", "=", 2)],
            id="apt-epoch",
        ),
        pytest.param(
            "RUN apt-get -o Dpkg::Options::=--force-confold -t bookworm-backports install \\\n"
            "      -y --target-release=x -qq libpq5=15.6-0 --option A=B -- zlib1g",
            [("apt", "libpq5", "15.6-0", "=", 3), ("apt", "zlib1g", None, None, 3)],
            id="apt-options",
        ),
        pytest.param(
            "RUN DEBIAN_FRONTEND=noninteractive apt-get install -y a=1 \\\n"
            "    && sudo apt-get install b=2; env -u X A=1 apt-get install c=3 || true\\\n"
            "    | cat & /usr/bin/apt-get install d=4",
            [
                ("apt", "a", "1", "=", 2),
                ("apt", "b", "2", "=", 3),
                ("apt", "c", "3", "=", 3),
                ("apt", "d", "4", "=", 4),
            ],
            id="apt-prefixes-and-operators",
        ),
        pytest.param(
            "RUN apt-get update \\\n"
            "  # the tools\n"
            "\n"
            "  && apt-get install -y \\\n"
            "      'curl=7.88' \\\n"
            '      "git" \\\n'
            "      ca-certificates\n",
            [
                ("apt", "curl", "7.88", "=", 6),
                ("apt", "git", None, None, 7),
                ("apt", "ca-certificates", None, None, 8),
            ],
            id="apt-continuations-comments-quotes",
        ),
        pytest.param(
            "RUN apt-get install -y $PKGS ${MORE} x=$V ./local.deb /tmp/y.deb z.deb"
            " libc6:amd64=2.36 foo/bookworm-backports bar= 2>/dev/null >/dev/null",
            [
                ("apt", "libc6:amd64", "2.36", "=", 2),
                ("apt", "foo", None, None, 2),
                ("apt", "bar", None, None, 2),
            ],
            id="apt-skips",
        ),
        pytest.param(
            "RUN apt-get update; apt-get remove -y x=1; apt-get purge y; apt-cache policy z",
            [],
            id="apt-not-install",
        ),
        pytest.param(
            'RUN for p in a b; do apt-get install -y "$p"; done && if true; then '
            "apt-get install -y c=1; fi",
            [("apt", "c", "1", "=", 2)],
            id="apt-loops",
        ),
        pytest.param(
            "RUN sh -c 'apt-get install -y a=1 && bash -lc \"apt-get install b=2\"'",
            [("apt", "a", "1", "=", 2), ("apt", "b", "2", "=", 2)],
            id="sh-c",
        ),
        pytest.param(
            "RUN sh /tmp/setup.sh && X=1 && bash -e -o pipefail -c 'apt-get install -y a=1'"
            " && sh -c",
            [("apt", "a", "1", "=", 2)],
            id="shells",
        ),
        pytest.param(
            'RUN ["apt-get", "install", "-y", "a=1.0"]',
            [("apt", "a", "1.0", "=", 2)],
            id="exec-form",
        ),
        pytest.param(
            'RUN ["/bin/sh", "-c", "apt-get install -y a=1.0 b"]',
            [("apt", "a", "1.0", "=", 2), ("apt", "b", None, None, 2)],
            id="exec-form-sh-c",
        ),
        pytest.param(
            "RUN [ -f /etc/debian_version ] && apt-get install -y a=1",
            [("apt", "a", "1", "=", 2)],
            id="test-command-not-exec-form",
        ),
        pytest.param(
            'RUN ["apt-get", "install", "-y", "a\\u002db=1", "c\\td"]\nRUN [1, 2]',
            [("apt", "a-b", "1", "=", 2), ("apt", "c\td", None, None, 2)],
            id="exec-form-escapes",
        ),
        pytest.param(
            "RUN\\\n  apt-get install -y a=1",
            [("apt", "a", "1", "=", 3)],
            id="keyword-then-continuation",
        ),
        pytest.param(
            "RUN --mount=type=cache,target=/var/cache/apt --network=host apt-get install -y a=1",
            [("apt", "a", "1", "=", 2)],
            id="run-flags",
        ),
        pytest.param(
            "RUN <<EOF\nset -e\napt-get install -y \\\n  a=1\nEOF",
            [("apt", "a", "1", "=", 5)],
            id="heredoc",
        ),
        pytest.param(
            "RUN bash <<EOF\napt-get install -y a=1\nEOF",
            [("apt", "a", "1", "=", 3)],
            id="heredoc-bash",
        ),
        pytest.param(
            "RUN python3 <<EOF\napt-get install -y a=1\nEOF\n"
            "RUN cat <<EOF > /etc/apt/preferences\napt-get install b=2\nEOF",
            [],
            id="heredoc-not-a-script",
        ),
        pytest.param(
            "RUN apk add --no-cache curl=8.5.0-r0 bash~5.2 'jq>=1.7' make",
            [
                ("apk", "curl", "8.5.0-r0", "=", 2),
                ("apk", "bash", "5.2", "~", 2),
                ("apk", "jq", "1.7", ">=", 2),
                ("apk", "make", None, None, 2),
            ],
            id="apk",
        ),
        pytest.param(
            "RUN apk add --virtual .build-deps -t .more --repository http://x/ -X http://y/"
            " gcc=13.2.1_git20231014-r0 musl-dev@edge py3-pip@edge=23.3-r0 ./x.apk $EXTRA",
            [
                ("apk", "gcc", "13.2.1_git20231014-r0", "=", 2),
                ("apk", "musl-dev", None, None, 2),
                ("apk", "py3-pip", "23.3-r0", "=", 2),
            ],
            id="apk-options",
        ),
        pytest.param(
            "RUN apk del .build-deps && apk update && apk upgrade",
            [],
            id="apk-not-add",
        ),
        pytest.param("RUN pip install requests==2.31.0", [], id="not-os"),
    ],
)
def test_find_os_packages(run: str, expected: list[Row]) -> None:
    assert rows(f"FROM debian:12\n{run}\n") == expected


def test_the_gcc_redirection_is_not_a_package() -> None:
    # `gcc<14` unquoted is a redirection in the shell: apk never sees the version.
    assert rows("FROM alpine:3\nRUN apk add gcc<14\n") == [("apk", "gcc", None, None, 2)]


def test_stage_and_image_of_each_package() -> None:
    text = (
        "ARG BASE=debian:12\n"
        "FROM python:3.12-slim@sha256:" + "a" * 64 + " AS build\n"
        "RUN apt-get install -y a=1\n"
        "FROM build AS test\n"
        "RUN apt-get install -y b=2\n"
        "FROM alpine:3.19\n"
        "RUN apk add c=3-r0\n"
        "FROM ${BASE}\n"
        "RUN apt-get install -y d=4\n"
    )
    found = find_os_packages(text, "envs/Dockerfile")
    assert [(p.name, p.stage, p.image, p.file) for p in found] == [
        ("a", 0, "python:3.12-slim@sha256:" + "a" * 64, "envs/Dockerfile"),
        ("b", 1, "python:3.12-slim@sha256:" + "a" * 64, "envs/Dockerfile"),
        ("c", 2, "alpine:3.19", "envs/Dockerfile"),
        ("d", 3, "${BASE}", "envs/Dockerfile"),
    ]


@pytest.mark.parametrize(
    ("package", "refreshable"),
    [
        (OsPackage("apt", "a", "1.0-1", "D", 1, 0, "x", "="), True),
        (OsPackage("apt", "a", "1.0*", "D", 1, 0, "x", "="), False),
        (OsPackage("apk", "a", "1.0", "D", 1, 0, "x", "~"), False),
        (OsPackage("apt", "a", None, "D", 1, 0, "x", None), False),
    ],
)
def test_only_exact_pins_are_refreshable(package: OsPackage, refreshable: bool) -> None:
    assert package.refreshable is refreshable


# -- rewriting pins --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "updates", "after"),
    [
        pytest.param(
            "FROM d\nRUN apt-get install -y curl=7.88.1-10 git=1:2.39\n",
            {("apt", "curl", 2): "7.88.1-10+deb12u5"},
            "FROM d\nRUN apt-get install -y curl=7.88.1-10+deb12u5 git=1:2.39\n",
            id="one-of-two",
        ),
        pytest.param(
            'FROM d\r\nRUN apt-get install -y \\\r\n    "curl=1"  \\\r\n    git=2   # x\r\n',
            {("apt", "curl", 3): "1.1", ("apt", "git", 4): "1:3.0"},
            'FROM d\r\nRUN apt-get install -y \\\r\n    "curl=1.1"  \\\r\n    git=1:3.0   # x\r\n',
            id="crlf-continuations-quotes",
        ),
        pytest.param(
            "FROM d\nRUN apt-get install a=1\nRUN apt-get install a=1\n",
            {("apt", "a", 3): "2"},
            "FROM d\nRUN apt-get install a=1\nRUN apt-get install a=2\n",
            id="only-that-line",
        ),
        pytest.param(
            'FROM d\nRUN ["apt-get", "install", "a=1"]\nRUN <<EOF\napk add b=1-r0\nEOF\n',
            {("apt", "a", 2): "1.5", ("apk", "b", 4): "1-r1"},
            'FROM d\nRUN ["apt-get", "install", "a=1.5"]\nRUN <<EOF\napk add b=1-r1\nEOF\n',
            id="exec-form-and-heredoc",
        ),
        pytest.param(
            "FROM a\nRUN apk add x@edge=1.0-r0\n",
            {("apk", "x", 2): "1.1-r0"},
            "FROM a\nRUN apk add x@edge=1.1-r0\n",
            id="apk-tag",
        ),
        pytest.param("FROM d\nRUN true\n", {}, "FROM d\nRUN true\n", id="nothing"),
    ],
)
def test_rewrite_os_pins(before: str, updates: dict[tuple[str, str, int], str], after: str) -> None:
    assert rewrite_os_pins(before, updates) == after


@pytest.mark.parametrize(
    ("text", "updates", "message"),
    [
        ("FROM d\nRUN apt-get install a=1\n", {("apt", "a", 3): "2"}, "no apt package a"),
        ("FROM d\nRUN apt-get install a=1\n", {("apk", "a", 2): "2"}, "no apk package a"),
        ("FROM d\nRUN apt-get install a\n", {("apt", "a", 2): "2"}, "no version written"),
        ("FROM d\nRUN apt-get install a=1\n", {("apt", "a", 2): "2 && x"}, "not a package"),
        (
            'FROM d\nRUN ["apt-get", "install", "a=\\u0031"]\n',
            {("apt", "a", 2): "2"},
            "no version written",
        ),
    ],
)
def test_rewrite_os_pins_refuses(
    text: str, updates: dict[tuple[str, str, int], str], message: str
) -> None:
    with pytest.raises(LockwardenError, match=message):
        rewrite_os_pins(text, updates)


# -- policy output ---------------------------------------------------------------------------

APT_POLICY = """\
lwtest-hello:
  Installed: (none)
  Candidate: 1.1-1
  Version table:
     1.1-1 500
        500 http://127.0.0.1:38765 ./ Packages
     1.0-1 500
        500 http://127.0.0.1:38765 ./ Packages
python3:
  Installed: 3.11.2-1+b1
  Candidate: 3.11.2-1+b1
  Version table:
 *** 3.11.2-1+b1 100
        100 /var/lib/dpkg/status
"""

APT_POLICY_DEBIAN = """\
curl:
  Installed: 7.88.1-10+deb12u5
  Candidate: 7.88.1-10+deb12u8
  Version table:
     7.88.1-10+deb12u8 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     7.88.1-10+deb12u7 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 7.88.1-10+deb12u5 100
        100 /var/lib/dpkg/status
libc6:
  Installed: 2.36-9+deb12u4
  Candidate: 2.36-9+deb12u4
  Package pin: 2.36-9+deb12u4
  Version table:
 *** 2.36-9+deb12u4 1001
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
python3-tk:
  Installed: (none)
  Candidate: (none)
  Version table:
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(APT_POLICY, {"lwtest-hello": "1.1-1", "python3": "3.11.2-1+b1"}, id="local"),
        pytest.param(
            APT_POLICY_DEBIAN,
            {"curl": "7.88.1-10+deb12u8", "libc6": "2.36-9+deb12u4", "python3-tk": None},
            id="debian",
        ),
        pytest.param(
            "curl:\n  Candidate: 7.88\nvim:\n  Candidate: 2:9.0.1378-2\n",
            {"curl": "7.88", "vim": "2:9.0.1378-2"},
            id="filtered",
        ),
        pytest.param(
            "N: Unable to locate package nope\nWARN[0000] some runtime warning\n"
            "libc6:i386:\n  Candidate: 2.36\n",
            {"libc6:i386": "2.36"},
            id="noise-and-arch",
        ),
        pytest.param("a:\n  Installed: (none)\n", {"a": None}, id="no-candidate-line"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_parse_apt_policy(output: str, expected: dict[str, str | None]) -> None:
    assert parse_apt_policy(output) == expected


APK_POLICY = """\
busybox policy:
  1.36.1-r15:
    lib/apk/db/installed
    https://dl-cdn.alpinelinux.org/alpine/v3.19/main
curl policy:
  8.5.0-r0:
    https://dl-cdn.alpinelinux.org/alpine/v3.19/main
  8.9.1-r1:
    @edge https://dl-cdn.alpinelinux.org/alpine/edge/main
openssl policy:
  3.1.4-r5:
    lib/apk/db/installed
  3.1.7-r1:
    https://dl-cdn.alpinelinux.org/alpine/v3.19/main
  3.1.4-r6:
    https://dl-cdn.alpinelinux.org/alpine/v3.19/main
only-edge policy:
  2.0-r0:
    @edge https://dl-cdn.alpinelinux.org/alpine/edge/testing
local-only policy:
  1.0-r0:
    lib/apk/db/installed
"""

APK_POLICY_OLD = """\
zlib1g policy:
  2.0:
    @testing http://nl.alpinelinux.org/alpine/edge/testing
  1.7:
    @edge http://nl.alpinelinux.org/alpine/edge/main
  1.2.3.5 (upgradeable):
    http://nl.alpinelinux.org/alpine/v2.6/main
  1.2.3.4 (installed):
    /media/cdrom/...
    http://nl.alpinelinux.org/alpine/v2.5/main
  1.1:
    http://nl.alpinelinux.org/alpine/v2.4/main
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            APK_POLICY,
            {
                "busybox": "1.36.1-r15",
                "curl": "8.5.0-r0",
                "openssl": "3.1.7-r1",
                "only-edge": None,
                "local-only": None,
            },
            id="alpine-3.19",
        ),
        pytest.param(APK_POLICY_OLD, {"zlib1g": "1.2.3.5"}, id="apk-2.4-format"),
        pytest.param(
            "gcc policy:\n  13.2.1_git20231014-r0:\n    https://x/main\n"
            "  13.2.1_git20240309-r0:\n    https://x/main\n  13.2.1_rc1-r0:\n    https://x/main\n",
            {"gcc": "13.2.1_git20240309-r0"},
            id="suffixes",
        ),
        pytest.param("ERROR: something\n  1.0:\n    https://x\n", {}, id="no-header"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_parse_apk_policy(output: str, expected: dict[str, str | None]) -> None:
    assert parse_apk_policy(output) == expected


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.2.3-r0", "1.2.3-r1"),
        ("1.2.3-r9", "1.2.3-r10"),
        ("1.2.9", "1.2.10"),
        ("1.2", "1.2.1"),
        ("1.2_rc1", "1.2"),
        ("1.2_alpha", "1.2_beta"),
        ("1.2_beta2", "1.2_pre1"),
        ("1.2_pre1", "1.2_rc1"),
        ("1.2_rc1", "1.2_rc2"),
        ("1.2", "1.2_p1"),
        ("1.2_cvs", "1.2_git"),
        ("1.2", "1.2a"),
        ("1.2a", "1.2b"),
        ("13.2.1_git20231014-r0", "13.2.1_git20240309-r0"),
        ("1.0~abc123-r0", "1.0-r1"),
        ("not-a-version", "0.1"),
    ],
)
def test_apk_version_order(lower: str, higher: str) -> None:
    assert apk_version_key(lower) < apk_version_key(higher)


# -- lookups, with a builder that answers with captured output -------------------------------


@dataclass
class AnsweringBuilder:
    """A builder whose containers print the given outputs, in order; records each run."""

    outcomes: list[RunOutcome]
    runs: list[RunSpec] = field(default_factory=list)
    name: BuilderName = "buildah"

    def available(self) -> bool:
        return True

    def build(self, spec: BuildSpec) -> BuildOutcome:
        raise AssertionError("no builds here")

    def inspect(self, reference: str) -> ImageInfo | None:
        raise AssertionError("no inspections here")

    def run(self, spec: RunSpec) -> RunOutcome:
        self.runs.append(spec)
        return self.outcomes.pop(0)

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        raise AssertionError("no pushes here")

    def remove(self, reference: str) -> None:
        raise AssertionError("no removals here")

    def tag(self, reference: str, name: str) -> bool:
        raise AssertionError("no removals here")

    def names(self, reference: str) -> tuple[str, ...] | None:
        raise AssertionError("no removals here")

    def untag(self, reference: str) -> bool:
        raise AssertionError("no removals here")

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        raise AssertionError("no exports here")


def printed(body: str, *, notes: tuple[str, ...] = (), end: bool = True) -> str:
    lines = [BEGIN_MARKER, *(NOTE_PREFIX + n for n in notes), body.rstrip("\n")]
    return "\n".join(lines + ([END_MARKER] if end else []))


def test_apk_lookup_passes_names_as_arguments() -> None:
    builder = AnsweringBuilder([RunOutcome("passed", 0, 1.0, printed(APK_POLICY))])

    lookup = lookup_candidates(
        builder, "alpine:3.19", "apk", ["openssl", "curl", "nope", "curl"], timeout_s=60
    )

    assert lookup.versions == {"curl": "8.5.0-r0", "openssl": "3.1.7-r1"}
    assert lookup.missing == ("nope",)
    assert lookup.error is None
    (spec,) = builder.runs
    assert spec.image == "alpine:3.19"
    assert spec.command == ("sh", "-c", APK_SCRIPT, "lockwarden-lookup", "curl", "nope", "openssl")
    assert spec.network is True
    assert spec.timeout_s == 60
    assert spec.env == {"LC_ALL": "C"}


def test_apt_lookups_are_split_so_the_output_fits() -> None:
    names = [f"pkg{i:03d}" for i in range(100)]
    policy = "".join(f"{n}:\n  Candidate: 1.0-{n}\n" for n in names)
    first = "".join(f"{n}:\n  Candidate: 1.0-{n}\n" for n in names[:80])
    second = "".join(f"{n}:\n  Candidate: 1.0-{n}\n" for n in names[80:])
    builder = AnsweringBuilder(
        [
            RunOutcome("passed", 0, 1.0, printed(first)),
            RunOutcome("passed", 0, 1.0, printed(second)),
        ]
    )

    lookup = lookup_candidates(builder, "debian:12", "apt", names, timeout_s=60)

    assert lookup.versions == parse_apt_policy(policy)
    assert [spec.command[4:] for spec in builder.runs] == [tuple(names[:80]), tuple(names[80:])]
    assert all(spec.command[2] == APT_SCRIPT for spec in builder.runs)


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        pytest.param(
            RunOutcome("passed", 0, 1.0, "curl:\n  Candidate: 1\n" + END_MARKER),
            "printed too much; its output was cut",
            id="cut",
        ),
        pytest.param(
            RunOutcome("timed-out", None, 60.0, ""),
            "looking up apt packages in debian:12 did not finish within 60 s",
            id="timeout",
        ),
        pytest.param(
            RunOutcome("errored", None, 0.0, "Error: docker.io/library/nope: manifest unknown"),
            "could not start a container of debian:12: Error: docker.io/library/nope",
            id="no-container",
        ),
        pytest.param(
            RunOutcome("errored", 127, 0.1, "sh: 1: apt-get: not found"),
            "failed (exit 127): sh: 1: apt-get: not found",
            id="no-apt",
        ),
        pytest.param(
            RunOutcome(
                "errored",
                3,
                2.0,
                printed("", notes=("E: Failed to fetch http://x/Packages  404",), end=False),
            ),
            "apt-get update failed in debian:12: E: Failed to fetch http://x/Packages  404",
            id="update-failed",
        ),
        pytest.param(
            RunOutcome(
                "passed",
                0,
                2.0,
                printed(
                    "curl:\n  Candidate: (none)\n",
                    notes=("W: Failed to fetch http://x/InRelease  Could not connect",),
                ),
            ),
            "apt-get update in debian:12 reported: W: Failed to fetch http://x/InRelease",
            id="update-warned",
        ),
    ],
)
def test_lookup_failures_are_values(outcome: RunOutcome, error: str) -> None:
    lookup = lookup_candidates(
        AnsweringBuilder([outcome]), "debian:12", "apt", ["curl"], timeout_s=60
    )
    assert lookup.error is not None
    assert error in lookup.error


# -- lookups in a real image -----------------------------------------------------------------


@dataclass(frozen=True)
class AptImage:
    builder: BuildahBuilder
    tag: str
    repository: AptRepository


@pytest.fixture(scope="module")
def apt_image(buildah_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptImage]:
    require_apt_tools()
    builder = BuildahBuilder(os.environ, runtime="runc", pull="never", egress=LOCAL)
    packages = [("lwtest-hello", "1.0-1"), ("lwtest-hello", "1.1-1"), ("lwtest-extra", "2:3.0-1")]
    with apt_base_image(builder, tmp_path_factory.mktemp("apt"), packages) as (repository, tag):
        yield AptImage(builder, tag, repository)


@pytest.mark.slow
def test_apt_candidates_in_a_real_image(apt_image: AptImage) -> None:
    lookup = lookup_candidates(
        apt_image.builder,
        apt_image.tag,
        "apt",
        ["lwtest-hello", "lwtest-extra", "lwtest-absent", "bad name;touch /pwned"],
        timeout_s=300,
    )

    assert lookup.error is None
    assert lookup.versions == {"lwtest-hello": "1.1-1", "lwtest-extra": "2:3.0-1"}
    assert lookup.missing == ("bad name;touch /pwned", "lwtest-absent")


@pytest.mark.slow
def test_a_failing_apt_update_is_an_error(apt_image: AptImage, tmp_path: Path) -> None:
    source = f"deb [trusted=yes] {apt_image.repository.url}/missing/ ./"
    tag = f"localhost/lockwarden-test/apt-missing:{uuid.uuid4().hex[:12]}"
    build_apt_base(apt_image.builder, source, tmp_path / "context", tag)
    try:
        lookup = lookup_candidates(apt_image.builder, tag, "apt", ["lwtest-hello"], timeout_s=300)
    finally:
        apt_image.builder.remove(tag)

    assert lookup.error is not None
    assert lookup.error.startswith(f"apt-get update failed in {tag}: E: Failed to fetch ")
    assert "404" in lookup.error
    assert lookup.versions == {}


@pytest.mark.slow
def test_a_missing_image_is_an_error(apt_image: AptImage) -> None:
    image = f"localhost/lockwarden-test/no-such-image:{uuid.uuid4().hex[:12]}"

    lookup = lookup_candidates(apt_image.builder, image, "apt", ["lwtest-hello"], timeout_s=300)

    assert lookup.error is not None
    assert lookup.error.startswith(f"could not start a container of {image}: ")
    assert lookup.versions == {}


# -- version order and downgrades ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u6"),
        ("7.88.1-10+deb12u9", "7.88.1-10+deb12u10"),  # numbers by value, not text
        ("1.0~rc1-1", "1.0-1"),  # a tilde sorts before the end
        ("1.0-1", "1.0+b1-1"),
        ("1.0-1", "1.0a-1"),  # letters before other symbols, after the end
        ("1.0a-1", "1.0+-1"),
        ("9.9-1", "1:0.1-1"),  # the epoch first
        ("1.0", "1.0-1"),  # no revision is the lowest one
        ("2.36-9+deb12u4", "2.36-9+deb12u10"),
    ],
)
def test_debian_version_order(lower: str, higher: str) -> None:
    assert compare_deb_versions(lower, higher) < 0
    assert compare_deb_versions(higher, lower) > 0
    assert compare_deb_versions(lower, lower) == 0


@pytest.mark.parametrize(
    ("manager", "before", "after", "downgrade"),
    [
        ("apt", "7.88.1-10+deb12u6", "7.88.1-10+deb12u5", True),
        ("apt", "7.88.1-10+deb12u5", "7.88.1-10+deb12u6", False),
        ("apt", "1:1.0-1", "2.0-1", True),
        ("apk", "8.5.0-r1", "8.5.0-r0", True),
        ("apk", "8.5.0_rc1-r0", "8.5.0-r0", False),
    ],
)
def test_is_downgrade(manager: Manager, before: str, after: str, downgrade: bool) -> None:
    assert is_downgrade(manager, before, after) is downgrade


# -- a pin the mirror dropped fails the build: which one, and what to do ---------------------

APT_MISSING_OUTPUT = """\
STEP 2/2: RUN apt-get update && apt-get install -y curl=7.88.1-10+deb12u5 jq=1.6-2.1
Reading package lists...
E: Version '7.88.1-10+deb12u5' for 'curl' was not found
E: Version '1.6-2.1' for 'jq' was not found
Error: building at STEP "RUN apt-get update ...": while running runtime: exit status 100
"""
APK_MISSING_OUTPUT = """\
ERROR: unable to select packages:
  curl-8.0.0-r0:
    breaks: world[curl=8.0.0-r0]
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            APT_MISSING_OUTPUT + APT_MISSING_OUTPUT,  # once each, in order
            (("apt", "curl", "7.88.1-10+deb12u5"), ("apt", "jq", "1.6-2.1")),
        ),
        (APK_MISSING_OUTPUT, (("apk", "curl", "8.0.0-r0"),)),
        ("E: Unable to locate package nope\n", ()),
    ],
)
def test_missing_pins(output: str, expected: tuple[tuple[str, str, str], ...]) -> None:
    assert missing_pins(output) == expected


def test_missing_pin_error_names_the_pins_and_the_fix() -> None:
    assert missing_pin_error(APT_MISSING_OUTPUT) == (
        "the package sources no longer offer the pinned version of "
        "curl=7.88.1-10+deb12u5 (apt), jq=1.6-2.1 (apt); run `lockwarden run --upgrade` to "
        "move the pins to the versions offered now, or pin versions the mirror still has"
    )
    assert missing_pin_error("E: Unable to locate package nope\n") is None


@pytest.mark.slow
def test_a_build_with_a_dropped_pin_says_which_and_what_to_do(
    apt_image: AptImage, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {apt_image.tag}\n"
        "RUN apt-get update && apt-get install -y lwtest-hello=1.0-1 lwtest-extra=2:2.0-1\n"
    )
    tag = f"localhost/lockwarden-test/apt-dropped:{uuid.uuid4().hex[:12]}"

    outcome = apt_image.builder.build(
        BuildSpec(tmp_path, tmp_path / "Dockerfile", tag, timestamp=0, timeout_s=300)
    )

    assert not outcome.ok
    assert apt_image.builder.inspect(tag) is None
    assert outcome.error is not None
    assert outcome.error.startswith('building at STEP "RUN apt-get update && apt-get install')
    assert outcome.error.endswith(
        ": the package sources no longer offer the pinned version of lwtest-extra=2:2.0-1 "
        "(apt); run `lockwarden run --upgrade` to move the pins to the versions offered now, "
        "or pin versions the mirror still has"
    )
    assert "E: Version '2:2.0-1' for 'lwtest-extra' was not found" in outcome.log_tail
