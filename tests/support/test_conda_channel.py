"""Tests of the test-time conda channel: real archives, repodata, HTTP and file:// access."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from rattler import Gateway, IndexJson, Subdir, install, solve
from rattler.package_streaming import extract

from tests.support.conda_channel import (
    SUBDIRS,
    TIMESTAMP_MS,
    CondaChannel,
    build_package,
    publish_graph,
    start_channel,
    unused_channel_url,
    zstd_frame,
)


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[CondaChannel]:
    with start_channel(tmp_path / "channel") as served:
        yield served


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def repodata(channel: CondaChannel, subdir: str) -> dict[str, object]:
    data = json.loads((channel.root / subdir / "repodata.json").read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("archive", ["tar.bz2", "conda"])
def test_packages_are_deterministic_real_archives(tmp_path: Path, archive: str) -> None:
    first, index = build_package(
        tmp_path / "a",
        name="mathlib",
        version="1.2",
        build="0",
        build_number=0,
        subdir="linux-64",
        depends=("python >=3.11",),
        archive=archive,  # type: ignore[arg-type]
    )
    second, _ = build_package(
        tmp_path / "b",
        name="mathlib",
        version="1.2",
        build="0",
        build_number=0,
        subdir="linux-64",
        depends=("python >=3.11",),
        archive=archive,  # type: ignore[arg-type]
    )
    assert first.name == f"mathlib-1.2-0.{archive}"
    assert first.read_bytes() == second.read_bytes()
    salted, _ = build_package(
        tmp_path / "c",
        name="mathlib",
        version="1.2",
        build="0",
        build_number=0,
        subdir="linux-64",
        depends=("python >=3.11",),
        archive=archive,  # type: ignore[arg-type]
        salt="x",
    )
    assert salted.read_bytes() != first.read_bytes()
    # rattler reads the archive back: hashes, index.json, the payload file.
    sha256, md5 = extract(first, tmp_path / "extracted")
    data = first.read_bytes()
    assert sha256.hex() == hashlib.sha256(data).hexdigest()
    assert md5.hex() == hashlib.md5(data).hexdigest()  # noqa: S324
    read = IndexJson.from_package_archive(first)
    assert (read.name.normalized, str(read.version), str(read.build)) == ("mathlib", "1.2", "0")
    assert read.depends == ["python >=3.11"]
    assert read.subdir == "linux-64"
    assert index["timestamp"] == TIMESTAMP_MS
    version_file = tmp_path / "extracted" / "share" / "mathlib" / "VERSION"
    assert version_file.read_text() == "mathlib 1.2 0 linux-64\n"


def test_zstd_frame_is_raw_blocks(tmp_path: Path) -> None:
    empty = zstd_frame(b"")
    assert empty[:4] == bytes.fromhex("28b52ffd")
    assert len(empty) == 4 + 1 + 8 + 3  # magic, descriptor, content size, one empty block
    size = 300 * 1024
    big = zstd_frame(b"x" * size)
    # Three raw blocks of at most 128 KiB, each after a 3-byte header; the last is marked.
    assert len(big) == 13 + 3 * 3 + size
    last_header = int.from_bytes(big[13 + 2 * (3 + 128 * 1024) :][:3], "little")
    assert last_header & 1 == 1
    assert last_header >> 3 == size - 2 * 128 * 1024
    # A real zstd reader (rattler's) takes multi-block frames too.
    blob = bytes(range(256)) * (size // 256)
    path, _ = build_package(
        tmp_path,
        name="bigdata",
        version="1",
        build="0",
        build_number=0,
        subdir="noarch",
        depends=(),
        archive="conda",
        extra_files=(("share/bigdata/blob.bin", blob),),
    )
    extract(path, tmp_path / "extracted")
    assert (tmp_path / "extracted" / "share" / "bigdata" / "blob.bin").read_bytes() == blob


def test_repodata_lists_every_archive_with_hashes(channel: CondaChannel) -> None:
    publish_graph(channel)
    for subdir in SUBDIRS:
        assert repodata(channel, subdir)["info"] == {"subdir": subdir}
    noarch = repodata(channel, "noarch")
    packages = noarch["packages"]
    conda_packages = noarch["packages.conda"]
    assert isinstance(packages, dict)
    assert isinstance(conda_packages, dict)
    assert sorted(packages) == [
        "mathlib-1.0-0.tar.bz2",
        "mathlib-1.2-0.tar.bz2",
        "mlcore-1.0-0.tar.bz2",
        "pytool-0.5-0.tar.bz2",
    ]
    assert sorted(conda_packages) == ["mlcore-1.1-0.conda"]
    for filename, record in {**packages, **conda_packages}.items():
        data = (channel.root / "noarch" / filename).read_bytes()
        assert record["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data)
        assert record["noarch"] == "generic"
    linux = repodata(channel, "linux-64")["packages"]
    assert isinstance(linux, dict)
    assert sorted(linux) == [
        "fastkernel-0.3-h1_0.tar.bz2",
        "python-3.11.0-h0_0.tar.bz2",
        "python-3.12.0-h0_0.tar.bz2",
    ]
    assert linux["python-3.11.0-h0_0.tar.bz2"]["arch"] == "x86_64"
    aarch64 = repodata(channel, "linux-aarch64")["packages"]
    assert isinstance(aarch64, dict)
    assert "fastkernel-0.3-h1_0.tar.bz2" not in aarch64


def test_yank_removes_archive_and_entry(channel: CondaChannel) -> None:
    published = channel.publish("mathlib", "1.0")[0]
    channel.publish("mathlib", "1.2")
    channel.yank("mathlib", "1.0")
    assert not published.path.exists()
    assert list(repodata(channel, "noarch")["packages"]) == ["mathlib-1.2-0.tar.bz2"]  # type: ignore[call-overload]


def test_http_serves_repodata_and_archives(channel: CondaChannel) -> None:
    published = channel.publish("pytool", "0.5")[0]
    status, headers, body = get(f"{channel.url}/noarch/repodata.json")
    assert status == 200
    assert headers["Cache-Control"] == "no-cache, max-age=0"
    assert headers["Content-Type"] == "application/json"
    assert body == (channel.root / "noarch" / "repodata.json").read_bytes()
    status, _, body = get(channel.package_url(published))
    assert status == 200
    assert body == published.path.read_bytes()
    status, headers, body = get(channel.package_url(published), "HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(published.size)
    assert channel.find("pytool", "0.5", "noarch") == published
    with pytest.raises(KeyError, match="never published"):
        channel.find("pytool", "9", "noarch")


@pytest.mark.parametrize(
    "path",
    [
        "/testing/noarch/repodata.json.zst",  # variants a client probes for
        "/testing/noarch/",
        "/testing/../channel/noarch/repodata.json",
        "/testing/noarch/../noarch/repodata.json",
        "/other/noarch/repodata.json",
        "/testing/osx-64/.hidden",
        "/",
    ],
)
def test_http_refuses_anything_else(channel: CondaChannel, path: str) -> None:
    base = channel.url.removesuffix("/testing")
    status, _, _ = get(f"{base}{path}")
    assert status == 404


def test_rattler_solves_and_installs_from_both_urls(channel: CondaChannel, tmp_path: Path) -> None:
    publish_graph(channel)

    async def solve_and_install(url: str, prefix: Path) -> list[str]:
        gateway = Gateway(cache_dir=tmp_path / "cache")
        records = await solve(
            [url], ["mlcore", "pytool"], gateway=gateway, platforms=["linux-64", "noarch"]
        )
        await install(
            records,
            prefix,
            cache_dir=tmp_path / "pkgs",
            show_progress=False,
            platform=Subdir("linux-64"),
        )
        return sorted(record.file_name for record in records)

    expected = [
        "mathlib-1.2-0.tar.bz2",
        "mlcore-1.1-0.conda",
        "python-3.12.0-h0_0.tar.bz2",
        "pytool-0.5-0.tar.bz2",
    ]
    assert asyncio.run(solve_and_install(channel.url, tmp_path / "http-env")) == expected
    assert asyncio.run(solve_and_install(channel.file_url, tmp_path / "file-env")) == expected
    installed = tmp_path / "http-env" / "share" / "mlcore" / "VERSION"
    assert installed.read_text() == "mlcore 1.1 0 noarch\n"


def test_unused_channel_url_refuses_connections() -> None:
    url = unused_channel_url()
    parts = urllib.parse.urlsplit(url)
    assert parts.path == "/testing"
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", parts.port or 0), timeout=5),
    ):
        pass


def test_close_is_idempotent(tmp_path: Path) -> None:
    channel = CondaChannel(tmp_path / "never-started")
    channel.close()
    channel.close()
