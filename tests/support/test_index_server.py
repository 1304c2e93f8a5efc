"""Tests of the wheel builder, the local package index and the fixtures built on them."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import http.client
import os
import re
import socket
import subprocess
import sys
import urllib.parse
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
import uv

from tests.support.index_server import PackageIndex, start_index
from tests.support.wheels import Dist, build_wheel, read_metadata, sha256_file

# -- helpers ---------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, method: str = "GET") -> Response:
    """One request, no redirects followed, no proxies consulted."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path or "/")
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def anchors(page: str) -> dict[str, dict[str, str]]:
    """Anchor text -> raw (still HTML-escaped) attributes of every ``<a>`` in ``page``."""
    found = {}
    for attrs, text in re.findall(r"<a ([^>]*)>([^<]*)</a>", page):
        found[text] = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
    return found


def parse_metadata(data: bytes) -> Message:
    return email.parser.BytesParser().parsebytes(data)


def pins_with_hashes(lockfile: str) -> dict[str, tuple[str, set[str]]]:
    """``name -> (version, {sha256 hex})`` from a pip-compile / uv lockfile."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in lockfile.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if match:
            current = match.group(1).lower()
            pins[current] = (match.group(2), set())
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            assert current is not None
            pins[current][1].add(digest)
    return pins


# -- wheels ----------------------------------------------------------------------------------


def test_build_wheel_is_deterministic_and_salt_changes_bytes(tmp_path: Path) -> None:
    dist = Dist("Foo.Bar-baz", "1.0", requires=("beta>=1.0",), requires_python=">=3.8")

    first = build_wheel(dist, tmp_path / "a")
    second = build_wheel(dist, tmp_path / "b")
    salted = build_wheel(dist, tmp_path / "c", salt="reupload")
    salted_again = build_wheel(dist, tmp_path / "d", salt="reupload")

    assert first.name == "foo_bar_baz-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    assert sha256_file(first) == sha256_file(second)
    assert sha256_file(salted) != sha256_file(first)
    assert sha256_file(salted) == sha256_file(salted_again)
    assert read_metadata(salted) == read_metadata(first)
    assert list(tmp_path.glob("*/*.tmp")) == []


def test_wheel_metadata_wheel_file_and_record(tmp_path: Path) -> None:
    dist = Dist(
        "Foo.Bar",
        "2.0.0",
        requires=("beta>=1.0", "gamma; python_version < '3.8'"),
        requires_python=">=3.8",
        extras={"fast": ("delta>=2", "epsilon; sys_platform == 'win32'")},
    )
    wheel = build_wheel(dist, tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names == [
            "foo_bar/__init__.py",
            "foo_bar-2.0.0.dist-info/METADATA",
            "foo_bar-2.0.0.dist-info/WHEEL",
            "foo_bar-2.0.0.dist-info/RECORD",
        ]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in archive.infolist())
        metadata = parse_metadata(archive.read("foo_bar-2.0.0.dist-info/METADATA"))
        wheel_file = parse_metadata(archive.read("foo_bar-2.0.0.dist-info/WHEEL"))
        record = archive.read("foo_bar-2.0.0.dist-info/RECORD").decode().splitlines()
        contents = {name: archive.read(name) for name in names}

    assert metadata["Metadata-Version"] == "2.1"
    assert metadata["Name"] == "Foo.Bar"
    assert metadata["Version"] == "2.0.0"
    assert metadata["Requires-Python"] == ">=3.8"
    assert metadata.get_all("Provides-Extra") == ["fast"]
    assert metadata.get_all("Requires-Dist") == [
        "beta>=1.0",
        'gamma; python_version < "3.8"',
        'delta>=2; extra == "fast"',
        'epsilon; (sys_platform == "win32") and extra == "fast"',
    ]
    assert wheel_file["Wheel-Version"] == "1.0"
    assert wheel_file["Root-Is-Purelib"] == "true"
    assert wheel_file["Tag"] == "py3-none-any"
    assert wheel_file["Generator"]

    assert record[-1] == "foo_bar-2.0.0.dist-info/RECORD,,"
    for line in record[:-1]:
        path, digest, size = line.split(",")
        data = contents[path]
        assert digest.startswith("sha256=")
        assert "=" not in digest[len("sha256=") :]
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert digest == "sha256=" + expected.decode()
        assert int(size) == len(data)


PIP_INSTALL = [sys.executable, "-m", "pip", "install"]


@pytest.mark.slow
def test_wheel_installs_and_imports(tmp_path: Path, isolated_tool_env: dict[str, str]) -> None:
    wheel = build_wheel(Dist("Foo.Bar", "1.2.3", requires=("not-installed>=1",)), tmp_path)
    target = tmp_path / "target"
    subprocess.run(
        [*PIP_INSTALL, "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        env=isolated_tool_env,
        check=True,
        capture_output=True,
    )
    probe = (
        "import importlib.metadata, foo_bar; "
        "print(foo_bar.__version__, importlib.metadata.version('foo-bar'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**isolated_tool_env, "PYTHONPATH": str(target)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.split() == ["1.2.3", "1.2.3"]


# -- index pages -----------------------------------------------------------------------------


def test_root_listing(package_index: PackageIndex) -> None:
    empty = fetch(package_index.url + "/")
    assert empty.status == 200
    assert anchors(empty.text) == {}

    package_index.publish("alpha", "1.0.0")
    package_index.publish("alpha", "1.1.0")
    package_index.publish("Foo.Bar", "0.1")

    page = fetch(package_index.url + "/")
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-cache, max-age=0"
    links = anchors(page.text)
    assert {name: attrs["href"] for name, attrs in links.items()} == {
        "alpha": "alpha/",
        "foo-bar": "foo-bar/",
    }


def test_project_page_lists_files_with_hashes_and_requires_python(
    package_index: PackageIndex,
) -> None:
    old = package_index.publish("alpha", "1.0.0", ["beta>=1.0"])
    new = package_index.publish("alpha", "1.10.0", ["beta>=1.0"], requires_python=">=3.8")
    package_index.publish("beta", "1.0.0")

    url = package_index.project_url("Alpha")
    assert url == package_index.url + "/alpha/"
    page = fetch(url)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-cache, max-age=0"
    assert 'data-requires-python="&gt;=3.8"' in page.text

    links = anchors(page.text)
    assert list(links) == [old.name, new.name]  # version order, not string order
    for wheel in (old, new):
        attrs = links[wheel.name]
        assert attrs["href"] == f"../../files/{wheel.name}#sha256={sha256_file(wheel)}"
        metadata_hash = "sha256=" + hashlib.sha256(read_metadata(wheel)).hexdigest()
        assert attrs["data-dist-info-metadata"] == metadata_hash
        assert attrs["data-core-metadata"] == metadata_hash
    assert "data-requires-python" not in links[old.name]

    file_url = urllib.parse.urljoin(url, links[new.name]["href"]).split("#")[0]
    assert file_url == package_index.file_url(new.name)
    served = fetch(file_url)
    assert served.status == 200
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Length"] == str(new.stat().st_size)
    assert served.body == new.read_bytes()

    metadata = fetch(file_url + ".metadata")
    assert metadata.status == 200
    assert metadata.body == read_metadata(new)
    assert parse_metadata(metadata.body)["Requires-Python"] == ">=3.8"


def test_head_requests(package_index: PackageIndex) -> None:
    wheel = package_index.publish("alpha", "1.0.0")

    head = fetch(package_index.file_url(wheel.name), method="HEAD")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(wheel.stat().st_size)
    assert head.body == b""

    page = fetch(package_index.project_url("alpha"), method="HEAD")
    assert page.status == 200
    assert int(page.headers["Content-Length"]) > 0
    assert page.body == b""


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/alpha", "/simple/alpha/"),
        ("/simple/Foo_Bar/", "/simple/foo-bar/"),
        ("/simple/FOO.bar", "/simple/foo-bar/"),
    ],
)
def test_redirects(package_index: PackageIndex, path: str, location: str) -> None:
    package_index.publish("alpha", "1.0.0")
    package_index.publish("foo-bar", "1.0.0")

    resp = fetch(package_index.base_url + path)

    assert resp.status == 301
    assert resp.headers["Location"] == location
    assert fetch(package_index.base_url + location).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/simple/unknown/",
        "/simple/unknown",  # redirected first, then 404
        "/files/unknown-1.0-py3-none-any.whl",
        "/files/unknown-1.0-py3-none-any.whl.metadata",
        "/files/..%2Findex%2Falpha-1.0.0-py3-none-any.whl",
        "/simple/alpha/extra/",
        "/pypi/alpha/json",
        "/",
    ],
)
def test_not_found(package_index: PackageIndex, path: str) -> None:
    package_index.publish("alpha", "1.0.0")

    resp = fetch(package_index.base_url + path)
    if resp.status == 301:
        resp = fetch(package_index.base_url + resp.headers["Location"])

    assert resp.status == 404


def test_changes_show_up_on_the_next_request(package_index: PackageIndex) -> None:
    first = package_index.publish("alpha", "1.0.0", ["beta>=1"], requires_python=">=3.9")
    first_hash = sha256_file(first)

    republished = package_index.republish("alpha", "1.0.0", salt="second upload")
    assert republished == first
    assert sha256_file(republished) != first_hash
    page = anchors(fetch(package_index.project_url("alpha")).text)
    assert page[first.name]["href"].endswith(f"#sha256={sha256_file(republished)}")
    assert page[first.name]["data-requires-python"] == "&gt;=3.9"  # metadata kept
    assert parse_metadata(read_metadata(republished)).get_all("Requires-Dist") == ["beta>=1"]

    second = package_index.publish("alpha", "1.0.1")
    assert list(anchors(fetch(package_index.project_url("alpha")).text)) == [
        first.name,
        second.name,
    ]

    package_index.yank_file("alpha", "1.0.0")
    assert list(anchors(fetch(package_index.project_url("alpha")).text)) == [second.name]
    assert fetch(package_index.file_url(first.name)).status == 404

    package_index.yank_file("alpha", "1.0.1")
    assert fetch(package_index.project_url("alpha")).status == 404
    assert anchors(fetch(package_index.url + "/").text) == {}

    with pytest.raises(KeyError):
        package_index.republish("alpha", "1.0.0", salt="gone")


def test_parallel_requests(package_index: PackageIndex) -> None:
    wheels = [package_index.publish("alpha", f"1.{i}.0") for i in range(5)]
    urls = [package_index.project_url("alpha"), package_index.url + "/"]
    urls += [package_index.file_url(w.name) for w in wheels]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(fetch, urls * 10))

    assert all(r.status == 200 for r in results)


def test_start_index_as_context_manager(tmp_path: Path) -> None:
    with start_index(tmp_path / "wheels") as index:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/simple", index.url)
        assert index.root == tmp_path / "wheels"
        index.publish("alpha", "1.0")
        assert fetch(index.project_url("alpha")).status == 200
        port = urllib.parse.urlsplit(index.url).port
    assert port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    index.close()  # idempotent


def test_index_without_core_metadata(tmp_path: Path) -> None:
    with start_index(tmp_path, serve_metadata=False) as index:
        wheel = index.publish("alpha", "1.0")
        attrs = anchors(fetch(index.project_url("alpha")).text)[wheel.name]
        assert set(attrs) == {"href"}
        assert fetch(index.file_url(wheel.name) + ".metadata").status == 404


# -- fixtures --------------------------------------------------------------------------------


def test_unreachable_index_url_refuses_connections(unreachable_index_url: str) -> None:
    parts = urllib.parse.urlsplit(unreachable_index_url)
    assert parts.scheme == "http"
    assert parts.hostname == "127.0.0.1"
    assert parts.path == "/simple"
    assert parts.port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", parts.port), timeout=5).close()


def test_isolated_tool_env(tmp_path: Path, isolated_tool_env: dict[str, str]) -> None:
    env = isolated_tool_env
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["UV_NO_CONFIG"] == "1"
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
    assert env["PIP_NO_INPUT"] == "1"
    for key in ("PIP_CACHE_DIR", "UV_CACHE_DIR", "XDG_CACHE_HOME"):
        assert Path(env[key]).is_relative_to(tmp_path)
    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        assert key not in env
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


# -- real resolvers --------------------------------------------------------------------------

TOOLS = ["pip-compile", "uv"]


def compile_lock(
    tool: str,
    index_url: str,
    workdir: Path,
    env: dict[str, str],
    cache_dir: Path,
    *extra: str,
) -> dict[str, tuple[str, set[str]]]:
    """Compile ``workdir/in.txt`` into ``workdir/out.txt`` and return its pins."""
    if tool == "pip-compile":
        cmd = [sys.executable, "-m", "piptools", "compile", "--cache-dir", str(cache_dir)]
    else:
        cmd = [uv.find_uv_bin(), "pip", "compile", "--cache-dir", str(cache_dir)]
    cmd += ["--quiet", "--generate-hashes", "--index-url", index_url, "-o", "out.txt", "in.txt"]
    result = subprocess.run(
        [*cmd, *extra], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return pins_with_hashes((workdir / "out.txt").read_text())


def publish_graph(index: PackageIndex) -> None:
    index.publish("alpha", "1.0.0", ["beta>=1.0"])
    index.publish("alpha", "1.1.0", ["beta>=1.0", "gamma; python_version < '3.8'"])
    index.publish("alpha", "1.2.0", ["beta>=1.0"], requires_python=">=4")  # not for us
    index.publish("beta", "1.0.0")
    index.publish("beta", "2.0.0", requires_python=">=3.8")
    index.publish("gamma", "1.0.0")


@pytest.mark.slow
@pytest.mark.parametrize("serve_metadata", [True, False], ids=["core-metadata", "wheels-only"])
@pytest.mark.parametrize("tool", TOOLS)
def test_resolver_picks_newest_and_hashes_served_files(
    tmp_path: Path, isolated_tool_env: dict[str, str], tool: str, serve_metadata: bool
) -> None:
    with start_index(tmp_path / "index", serve_metadata=serve_metadata) as index:
        publish_graph(index)
        (tmp_path / "in.txt").write_text("alpha\n")

        pins = compile_lock(tool, index.url, tmp_path, isolated_tool_env, tmp_path / "cache")

        assert pins == {
            "alpha": ("1.1.0", {sha256_file(index.wheel_path("alpha", "1.1.0"))}),
            "beta": ("2.0.0", {sha256_file(index.wheel_path("beta", "2.0.0"))}),
        }


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_resolver_sees_new_and_republished_files(
    tmp_path: Path,
    package_index: PackageIndex,
    isolated_tool_env: dict[str, str],
    tool: str,
) -> None:
    publish_graph(package_index)
    (tmp_path / "in.txt").write_text("alpha\n")
    env, url = isolated_tool_env, package_index.url

    before = compile_lock(tool, url, tmp_path, env, tmp_path / "cache-1")
    assert before["beta"][0] == "2.0.0"

    patch = package_index.publish("beta", "2.0.1")
    upgraded = compile_lock(tool, url, tmp_path, env, tmp_path / "cache-1", "--upgrade")
    assert upgraded["beta"] == ("2.0.1", {sha256_file(patch)})
    assert upgraded["alpha"] == before["alpha"]

    package_index.republish("beta", "2.0.1", salt="re-upload")
    new_hash = sha256_file(patch)
    assert {new_hash} != upgraded["beta"][1]
    # An existing out.txt is a source of hashes for both tools: --upgrade makes them look again.
    republished = compile_lock(tool, url, tmp_path, env, tmp_path / "cache-2", "--upgrade")
    assert republished["beta"] == ("2.0.1", {new_hash})
