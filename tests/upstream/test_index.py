"""The PEP 691/503 index client against the local test index: upload times, yanks,
conditional requests, the egress policy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sandbox.egress import EgressPolicy
from bot.upstream.index import IndexLookupError, SimpleIndex
from tests.support.index_server import PackageIndex, start_index

LOCAL = EgressPolicy(("127.0.0.1",))
DAY = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def json_index(tmp_path: Path) -> Iterator[PackageIndex]:
    with start_index(tmp_path / "index", serve_json=True, etags=True) as index:
        yield index


def test_json_page_gives_upload_times_and_yanks(json_index: PackageIndex) -> None:
    json_index.publish("Demo_Pkg", "1.0")
    json_index.publish("demo-pkg", "1.10", sdist=True)
    json_index.publish("demo-pkg", "1.2")
    json_index.set_upload_time("demo-pkg", "1.0", DAY)
    json_index.mark_yanked("demo-pkg", "1.2", "broken wheel")
    json_index.mark_yanked("demo-pkg", "1.10")

    with SimpleIndex(json_index.url, cache_dir=None, policy=LOCAL) as index:
        page = index.project("Demo.Pkg")

    assert page.name == "demo-pkg"
    assert page.versions() == ("1.0", "1.2", "1.10")
    assert page.uploaded("1.0") == DAY
    assert page.uploaded("1.0.0") == DAY  # the same version, spelled another way
    assert page.yanked("1.0") is None
    assert page.yanked("1.2") == "broken wheel"
    assert page.yanked("1.10") == ""
    assert page.yanked("9.9") is None
    assert page.etag is not None
    assert page.last_modified is not None


def test_html_page_gives_yanks_without_upload_times(package_index: PackageIndex) -> None:
    package_index.publish("demo", "1.0")
    package_index.publish("demo", "2.0")
    package_index.mark_yanked("demo", "2.0", "bad <release> & co")

    with SimpleIndex(package_index.url, cache_dir=None, policy=LOCAL) as index:
        page = index.project("demo")

    assert page.versions() == ("1.0", "2.0")
    assert page.uploaded("1.0") is None
    assert page.yanked("2.0") == "bad <release> & co"
    assert page.yanked("1.0") is None


def test_second_lookup_is_a_conditional_request(json_index: PackageIndex, tmp_path: Path) -> None:
    json_index.publish("demo", "1.0")
    cache = tmp_path / "cache"

    with SimpleIndex(json_index.url, cache_dir=cache, policy=LOCAL) as first:
        page = first.project("demo")
        assert first.refresh("demo") is None
        assert (first.requests, first.not_modified) == (2, 1)
    # A new client (a later run) reads the validators from disk.
    with SimpleIndex(json_index.url, cache_dir=cache, policy=LOCAL) as later:
        assert later.project("demo") == page
        assert (later.requests, later.not_modified) == (1, 1)
        json_index.publish("demo", "2.0")
        changed = later.refresh("demo")
        assert changed is not None
        assert changed.versions() == ("1.0", "2.0")
        assert later.project("demo") == changed
    assert json_index.not_modified == 3
    assert not list(cache.rglob("*.tmp"))


def test_missing_project_and_unreachable_index_are_named(
    json_index: PackageIndex, unreachable_index_url: str
) -> None:
    with (
        SimpleIndex(json_index.url, cache_dir=None, policy=LOCAL) as index,
        pytest.raises(IndexLookupError) as missing,
    ):
        index.project("nothing-here")
    assert missing.value.missing
    assert "nothing-here" in str(missing.value)
    assert json_index.url in str(missing.value)

    with (
        SimpleIndex(unreachable_index_url, cache_dir=None, policy=LOCAL, timeout_s=5) as index,
        pytest.raises(IndexLookupError) as down,
    ):
        index.project("demo")
    assert not down.value.missing
    assert "demo" in str(down.value)
    assert unreachable_index_url in str(down.value)


def test_upload_time_follows_publish(json_index: PackageIndex) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    json_index.publish("demo", "1.0")
    with SimpleIndex(json_index.url, cache_dir=None, policy=LOCAL) as index:
        uploaded = index.project("demo").uploaded("1.0")
    assert uploaded is not None
    assert before <= uploaded <= datetime.now(UTC)


def test_a_fresh_copy_is_used_without_asking_and_refresh_always_asks(
    json_index: PackageIndex, tmp_path: Path
) -> None:
    json_index.publish("demo", "1.0")
    cache = tmp_path / "cache"
    with SimpleIndex(json_index.url, cache_dir=cache, policy=LOCAL, fresh_for_s=600) as first:
        page = first.project("demo")
    # A later run within the freshness window reads the disk copy and sends nothing.
    with SimpleIndex(json_index.url, cache_dir=cache, policy=LOCAL, fresh_for_s=600) as later:
        assert later.project("demo") == page
        assert later.requests == 0
        # The release watch's question is never answered from the copy alone.
        json_index.publish("demo", "2.0")
        changed = later.refresh("demo")
        assert changed is not None
        assert changed.versions() == ("1.0", "2.0")
        assert later.requests == 1
    # Without a window every lookup asks (here: a conditional request).
    with SimpleIndex(json_index.url, cache_dir=cache, policy=LOCAL) as strict:
        strict.project("demo")
        assert strict.requests == 1


def test_a_page_without_validators_is_kept_only_for_the_window(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.publish("demo", "1.0")  # HTML, no ETag or Last-Modified
    cache = tmp_path / "cache"
    with SimpleIndex(package_index.url, cache_dir=cache, policy=LOCAL, fresh_for_s=600) as a:
        a.project("demo")
    with SimpleIndex(package_index.url, cache_dir=cache, policy=LOCAL, fresh_for_s=600) as b:
        b.project("demo")
        assert b.requests == 0
    with SimpleIndex(package_index.url, cache_dir=cache, policy=LOCAL, fresh_for_s=0) as c:
        c.project("demo")
        assert c.requests == 1
