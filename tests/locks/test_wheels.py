"""Wheel coverage of a lock per target platform, against real indexes served on 127.0.0.1
(PEP 691 JSON and PEP 503 HTML), including an accelerator index with local versions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from bot.locks.lockfile import Lockfile, LockHeader, RequirementEntry, parse_lockfile
from bot.locks.platforms import parse_platform
from bot.locks.wheels import ACCEPT, WheelCheck, WheelGap, check_wheels
from tests.support.index_server import PackageIndex, start_index
from tests.support.sandbox import SANDBOX
from tests.support.wheels import sha256_file

X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
LINUX = (parse_platform("linux/amd64"), parse_platform("linux/arm64"))


@pytest.fixture(params=[True, False], ids=["json", "html"])
def main_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PackageIndex]:
    """The main index, answering PEP 691 JSON or only PEP 503 HTML."""
    with start_index(tmp_path / "main", serve_json=request.param) as index:
        index.publish("alpha", "1.0")
        index.publish("Foo.Bar", "2.0")
        index.publish("native", "1.0", wheel_tags=[X86], sdist=True)
        index.publish("x86only", "1.0", wheel_tags=[X86])
        index.publish("both", "1.0", wheel_tags=[X86, ARM])
        index.publish("sourceonly", "1.0", wheel_tags=(), sdist=True)
        index.publish("torchlet", "2.1.0")
        index.publish("split", "1.0", wheel_tags=[X86])
        index.publish("split", "2.0", wheel_tags=[ARM])
        yield index


@pytest.fixture
def accelerator_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """An extra index serving CUDA builds, as ``download.pytorch.org/whl/cu121`` does."""
    with start_index(tmp_path / "cu121") as index:
        index.publish("torchlet", "2.1.0+cu121", wheel_tags=[X86])
        index.publish("cudart", "12.1")
        yield index


def lock_of(*lines: str) -> Lockfile:
    return parse_lockfile("\n".join(lines) + "\n", "requirements/serve.txt")


def check(lock: Lockfile, *indexes: str) -> WheelCheck:
    return check_wheels(lock, LINUX, "3.11", indexes, timeout_s=10, policy=SANDBOX.policy)


def gaps(result: WheelCheck) -> set[tuple[str, str, str, bool]]:
    return {(g.package, g.version, g.platform, g.sdist) for g in result.gaps}


def test_the_index_answers_in_the_negotiated_form(main_index: PackageIndex) -> None:
    """Both forms of the project page are really exercised (JSON only where served)."""
    response = httpx.get(main_index.project_url("native"), headers={"Accept": ACCEPT})
    expected = "application/vnd.pypi.simple.v1+json" if main_index.serve_json else "text/html"
    assert response.headers["content-type"].startswith(expected)
    assert "native-1.0.tar.gz" in response.text


# -- gaps -----------------------------------------------------------------------------------


def test_pure_and_complete_releases_have_no_gaps(main_index: PackageIndex) -> None:
    result = check(lock_of("alpha==1.0", "foo-bar==2.0", "both==1.0"), main_index.url)
    assert result == WheelCheck(gaps=(), unchecked=(), checked=3)
    assert result.ok


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "native==1.0", {("native", "1.0", "linux/arm64", True)}, id="x86-wheel-and-sdist"
        ),
        pytest.param(
            "x86only==1.0", {("x86only", "1.0", "linux/arm64", False)}, id="x86-wheel-only"
        ),
        pytest.param(
            "sourceonly==1.0",
            {
                ("sourceonly", "1.0", "linux/amd64", True),
                ("sourceonly", "1.0", "linux/arm64", True),
            },
            id="sdist-only",
        ),
        pytest.param(
            "x86only==1.0 ; platform_machine == 'x86_64'", set(), id="marker-excludes-arm64"
        ),
        pytest.param(
            "x86only==1.0 ; sys_platform == 'linux'",
            {("x86only", "1.0", "linux/arm64", False)},
            id="marker-keeps-both",
        ),
        pytest.param("Foo.Bar==2.0", set(), id="name-normalised"),
        pytest.param("native==1.0.0", {("native", "1.0.0", "linux/arm64", True)}, id="1.0.0"),
    ],
)
def test_gaps(
    main_index: PackageIndex, line: str, expected: set[tuple[str, str, str, bool]]
) -> None:
    result = check(lock_of(line), main_index.url)
    assert gaps(result) == expected
    assert result.unchecked == ()
    assert result.checked == 1
    assert all(g.index == main_index.url for g in result.gaps)


def test_entries_excluded_on_every_platform_are_not_checked(main_index: PackageIndex) -> None:
    result = check(lock_of("x86only==1.0 ; sys_platform == 'win32'"), main_index.url)
    assert result == WheelCheck(gaps=(), unchecked=(), checked=0)


def test_one_name_pinned_twice_under_markers(main_index: PackageIndex) -> None:
    """A universal lock pins a release per platform: each is checked where it applies."""
    lock = lock_of(
        "split==1.0 ; platform_machine == 'x86_64'",
        "split==2.0 ; platform_machine == 'aarch64'",
    )
    assert check(lock, main_index.url) == WheelCheck(gaps=(), unchecked=(), checked=2)
    swapped = lock_of(
        "split==1.0 ; platform_machine == 'aarch64'",
        "split==2.0 ; platform_machine == 'x86_64'",
    )
    assert gaps(check(swapped, main_index.url)) == {
        ("split", "1.0", "linux/arm64", False),
        ("split", "2.0", "linux/amd64", False),
    }


def test_gaps_come_in_lock_order_then_platform_order(main_index: PackageIndex) -> None:
    result = check(lock_of("sourceonly==1.0", "alpha==1.0", "native==1.0"), main_index.url)
    assert [(g.package, g.platform) for g in result.gaps] == [
        ("sourceonly", "linux/amd64"),
        ("sourceonly", "linux/arm64"),
        ("native", "linux/arm64"),
    ]


def test_other_platforms_and_pythons(main_index: PackageIndex) -> None:
    lock = lock_of("both==1.0", "alpha==1.0")
    platforms = [parse_platform("darwin/arm64"), parse_platform("windows/amd64")]
    result = check_wheels(lock, platforms, "3.11", [main_index.url], policy=SANDBOX.policy)
    assert gaps(result) == {
        ("both", "1.0", "darwin/arm64", False),
        ("both", "1.0", "windows/amd64", False),
    }
    on_312 = check_wheels(lock, LINUX, "3.12", [main_index.url], policy=SANDBOX.policy)
    assert gaps(on_312) == {
        ("both", "1.0", "linux/amd64", False),
        ("both", "1.0", "linux/arm64", False),
    }


# -- hashes ---------------------------------------------------------------------------------


def test_hashes_restrict_the_files_that_count(main_index: PackageIndex) -> None:
    wheel, sdist = main_index.release_paths("native", "1.0")
    wheel_hash, sdist_hash = sha256_file(wheel), sha256_file(sdist)

    only_wheel = check(lock_of(f"native==1.0 --hash=sha256:{wheel_hash}"), main_index.url)
    assert gaps(only_wheel) == {("native", "1.0", "linux/arm64", False)}

    only_sdist = check(lock_of(f"native==1.0 --hash=sha256:{sdist_hash}"), main_index.url)
    assert gaps(only_sdist) == {
        ("native", "1.0", "linux/amd64", True),
        ("native", "1.0", "linux/arm64", True),
    }

    both = lock_of(f"native==1.0 --hash=sha256:{wheel_hash} --hash=sha256:{sdist_hash}")
    assert gaps(check(both, main_index.url)) == {("native", "1.0", "linux/arm64", True)}

    md5_only = lock_of("native==1.0 --hash=md5:0123456789abcdef0123456789abcdef")
    assert gaps(check(md5_only, main_index.url)) == {("native", "1.0", "linux/arm64", True)}


def test_hashes_that_match_no_file_leave_the_entry_unchecked(main_index: PackageIndex) -> None:
    result = check(lock_of(f"native==1.0 --hash=sha256:{'0' * 64}"), main_index.url)
    assert result.gaps == ()
    assert result.checked == 0
    assert result.unchecked == (
        f"native==1.0: no file on {main_index.url} has one of the lock's hashes; recompile "
        "the lock against these indexes",
    )


# -- accelerator builds ---------------------------------------------------------------------


def test_local_version_is_found_on_the_extra_index(
    main_index: PackageIndex, accelerator_index: PackageIndex
) -> None:
    result = check(
        lock_of("torchlet==2.1.0+cu121", "cudart==12.1"), main_index.url, accelerator_index.url
    )
    assert result.gaps == (
        WheelGap("torchlet", "2.1.0+cu121", "linux/arm64", False, accelerator_index.url),
    )
    assert result.unchecked == ()
    assert result.checked == 2


def test_public_version_does_not_match_a_local_one(
    main_index: PackageIndex, accelerator_index: PackageIndex
) -> None:
    """``torchlet==2.1.0`` in a lock is the pure wheel on the main index, whatever the extra
    index has; and the +cu121 build is not on the main index."""
    public = check(lock_of("torchlet==2.1.0"), accelerator_index.url, main_index.url)
    assert public == WheelCheck(gaps=(), unchecked=(), checked=1)
    local_only_main = check(lock_of("torchlet==2.1.0+cu121"), main_index.url)
    assert local_only_main.checked == 0
    assert local_only_main.unchecked == (
        f"torchlet==2.1.0+cu121: no index lists this release ({main_index.url})",
    )


# -- what cannot be checked -----------------------------------------------------------------


def test_unreachable_index_leaves_packages_unchecked(unreachable_index_url: str) -> None:
    result = check(lock_of("alpha==1.0", "native==1.0"), unreachable_index_url)
    assert result.gaps == ()
    assert result.checked == 0
    assert [m.split(":")[0] for m in result.unchecked] == ["alpha==1.0", "native==1.0"]
    assert all(
        f"could not list its files on {unreachable_index_url} (" in m for m in result.unchecked
    )
    assert not result.ok


def test_first_index_with_the_release_wins(
    main_index: PackageIndex, unreachable_index_url: str
) -> None:
    """Once an index lists the release, the later ones are not asked; a release the first
    index lacks meets the unreachable one and cannot be checked."""
    result = check(lock_of("alpha==1.0", "cudart==12.1"), main_index.url, unreachable_index_url)
    assert result.checked == 1
    assert len(result.unchecked) == 1
    assert result.unchecked[0].startswith(
        f"cudart==12.1: could not list its files on {unreachable_index_url}"
    )


def test_unknown_project_and_version(main_index: PackageIndex) -> None:
    result = check(lock_of("nowhere==1.0", "alpha==9.0"), main_index.url)
    assert result.unchecked == (
        f"nowhere==1.0: no index lists this release ({main_index.url})",
        f"alpha==9.0: no index lists this release ({main_index.url})",
    )
    assert result.checked == 0


def test_no_index_given(main_index: PackageIndex) -> None:
    result = check(lock_of("alpha==1.0"))
    assert result.unchecked == ("alpha==1.0: no index lists this release (no index given)",)


def test_unpinned_url_and_editable_entries_are_skipped(main_index: PackageIndex) -> None:
    lock = lock_of(
        "alpha>=1.0",
        "-e ./src/tool",
        "beta @ https://files.example/beta-1.0-py3-none-any.whl",
        "x86only==1.0",
    )
    result = check(lock, main_index.url)
    assert gaps(result) == {("x86only", "1.0", "linux/arm64", False)}
    assert result.checked == 1
    assert result.unchecked == ()


def test_a_lock_without_pins_makes_no_request() -> None:
    assert check(lock_of("alpha>=1"), "http://127.0.0.1:9/simple") == WheelCheck((), (), 0)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("platform_machine ~= 'x86'", "cannot evaluate the marker"),
        ("platform_machine =! 'x86'", "cannot evaluate the marker"),
    ],
)
def test_unreadable_markers_leave_the_entry_unchecked(
    main_index: PackageIndex, marker: str, message: str
) -> None:
    entry = RequirementEntry("alpha", "alpha", "==1.0", "1.0", marker=marker)
    lock = Lockfile("x.txt", LockHeader("none", None, (), ""), (entry,))
    result = check(lock, main_index.url)
    assert result.checked == 0
    assert len(result.unchecked) == 1
    assert result.unchecked[0].startswith(f"alpha==1.0: {message} '{marker}'")


def test_invalid_version_is_unchecked(main_index: PackageIndex) -> None:
    entry = RequirementEntry("alpha", "alpha", "===1.0-custom", "1.0-custom!")
    lock = Lockfile("x.txt", LockHeader("none", None, (), ""), (entry,))
    assert check(lock, main_index.url).unchecked == (
        "alpha==1.0-custom!: the pinned version is not PEP 440",
    )


def test_credentials_never_reach_the_report(main_index: PackageIndex) -> None:
    with_credentials = main_index.url.replace("http://", "http://bot:s3cret@")
    result = check(lock_of("x86only==1.0"), with_credentials)
    assert [g.index for g in result.gaps] == [main_index.url.replace("http://", "http://***@")]
    unreachable = check(lock_of("alpha==1.0"), "http://bot:s3cret@127.0.0.1:9/simple")
    assert unreachable.unchecked
    assert "s3cret" not in "".join(unreachable.unchecked)


# -- odd index answers ----------------------------------------------------------------------

Page = tuple[int, str, bytes]


class _FixedPages(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, Page]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status, content_type, body = self.pages.get(
            self.path, (HTTPStatus.NOT_FOUND, "text/plain", b"")
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def odd_index() -> Iterator[tuple[str, dict[str, Page]]]:
    """An index whose pages a test writes by hand: ``(url, {path: (status, type, body)})``."""
    pages: dict[str, Page] = {}
    handler = type("Handler", (_FixedPages,), {"pages": pages})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", pages
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param(
            (
                200,
                HTML,
                b'<a href="https://f.example/p/alpha-1.0-cp311-cp311-win_amd64.whl">'
                b"alpha-1.0-cp311-cp311-win_amd64.whl</a>",
            ),
            "gap",
            id="html-absolute-link",
        ),
        pytest.param(
            (200, HTML, b'<a href="/files/alpha-1.0-py3-none-any.whl#sha256=AB"></a>'),
            "ok",
            id="html-name-from-href",
        ),
        pytest.param(
            (
                200,
                HTML,
                b'<a name="top">top</a><a href="alpha-1.0.win32.exe">x</a>'
                b'<a href="a-b-c.whl">not-a-wheel-1.0-x-y-z.whl</a>',
            ),
            "unchecked:no index lists this release",
            id="html-no-usable-file",
        ),
        pytest.param(
            (200, JSON, b'{"files": [{"filename": "alpha-1.0-py3-none-any.whl"}, 7, {}]}'),
            "ok",
            id="json-without-hashes",
        ),
        pytest.param((200, JSON, b"{not json"), "unchecked:invalid JSON", id="bad-json"),
        pytest.param((200, JSON, b'{"meta": {}}'), "unchecked:has no 'files' list", id="no-files"),
        pytest.param((500, HTML, b"oops"), "unchecked:answered HTTP 500", id="server-error"),
        pytest.param((410, HTML, b"gone"), "unchecked:no index lists", id="gone"),
    ],
)
def test_odd_index_pages(odd_index: tuple[str, dict[str, Page]], page: Page, expected: str) -> None:
    url, pages = odd_index
    pages["/simple/alpha/"] = page
    result = check(lock_of("alpha==1.0"), url)
    if expected == "ok":
        assert result == WheelCheck((), (), 1)
    elif expected == "gap":
        assert gaps(result) == {
            ("alpha", "1.0", "linux/amd64", False),
            ("alpha", "1.0", "linux/arm64", False),
        }
    else:
        assert len(result.unchecked) == 1
        assert expected.removeprefix("unchecked:") in result.unchecked[0]
