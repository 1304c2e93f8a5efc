"""Lookups through pip-audit's services against the local advisory service."""

from __future__ import annotations

from pathlib import Path

from bot.advisories.service import ServiceConfig, lookup_advisories
from tests.support.advisory_service import AdvisoryService
from tests.support.index_server import unused_local_url

PACKAGES = [("hcore", "1.0"), ("HCore", "1.0"), ("tokenbag", "0.4"), ("quietlib", "3.1")]


def _config(service: AdvisoryService, tmp_path: Path, kind: str = "pypi") -> ServiceConfig:
    return ServiceConfig(kind, service.url, tmp_path / "cache", 5.0, 3)  # type: ignore[arg-type]


def test_pypi_lookup_reads_vulnerabilities_once_per_release(
    advisory_service: AdvisoryService, tmp_path: Path
) -> None:
    lookup = lookup_advisories(PACKAGES, _config(advisory_service, tmp_path))

    assert lookup.checked
    assert not lookup.unknown
    ids = [a.id for a in lookup.advisories("hcore", "1.0")]
    assert ids == ["GHSA-h1h1-c0re-0002", "PYSEC-2099-11"]
    first = lookup.advisories("hcore", "1.0")[1]
    assert first.aliases == ("CVE-2099-1111", "GHSA-h1h1-c0re-0001")
    assert first.fixed_versions == ("1.2",)
    assert first.link == "https://osv.dev/vulnerability/PYSEC-2099-11"
    # the withdrawn one is left out; a clean release has none
    assert [a.id for a in lookup.advisories("tokenbag", "0.4")] == ["GHSA-t0ke-nbag-0004"]
    assert lookup.advisories("quietlib", "3.1") == ()
    # HCore and hcore are one package: three requests in all
    assert advisory_service.count() == 3


def test_second_run_revalidates_with_etags_and_gives_the_same_answer(
    advisory_service: AdvisoryService, tmp_path: Path
) -> None:
    config = _config(advisory_service, tmp_path)
    cold = lookup_advisories(PACKAGES, config)
    assert advisory_service.count(status=200, conditional=False) == 3

    warm = lookup_advisories(PACKAGES, config)

    assert warm == cold
    assert advisory_service.count() == 6
    assert advisory_service.count(status=304, conditional=True) == 3


def test_a_changed_answer_replaces_the_cached_one(
    advisory_service: AdvisoryService, tmp_path: Path
) -> None:
    config = _config(advisory_service, tmp_path)
    lookup_advisories([("quietlib", "3.1")], config)
    advisory_service.publish(
        "quietlib",
        "3.1",
        [
            {
                "id": "GHSA-qqqq-0000-0001",
                "aliases": [],
                "summary": "new",
                "details": "",
                "fixed_in": ["3.2"],
                "link": "",
                "source": "osv",
                "withdrawn": None,
            }
        ],
    )

    lookup = lookup_advisories([("quietlib", "3.1")], config)

    assert [a.id for a in lookup.advisories("quietlib", "3.1")] == ["GHSA-qqqq-0000-0001"]
    assert advisory_service.count(status=200, conditional=True) == 1


def test_osv_answers_the_same_advisories(advisory_service: AdvisoryService, tmp_path: Path) -> None:
    pypi = lookup_advisories(PACKAGES, _config(advisory_service, tmp_path / "p"))
    osv = lookup_advisories(PACKAGES, _config(advisory_service, tmp_path / "o", "osv"))

    assert osv.checked
    for name, version in PACKAGES:
        assert [(a.id, a.aliases, a.fixed_versions) for a in osv.advisories(name, version)] == [
            (a.id, a.aliases, a.fixed_versions) for a in pypi.advisories(name, version)
        ]
    # OSV is asked with POST, which the HTTP cache never stores: one request per release
    assert sum(r.method == "POST" for r in advisory_service.requests) == 3


def test_unknown_package_is_named_not_failed(
    advisory_service: AdvisoryService, tmp_path: Path
) -> None:
    advisory_service.unknown.add("internal-lib")

    lookup = lookup_advisories(
        [("internal-lib", "1.0"), ("hcore", "1.2")], _config(advisory_service, tmp_path)
    )

    assert lookup.checked
    assert lookup.unknown == (("internal-lib", "1.0"),)
    assert [a.id for a in lookup.advisories("hcore", "1.2")] == ["GHSA-h1h1-c0re-0002"]


def test_unreachable_service_is_an_unchecked_lookup(tmp_path: Path) -> None:
    url = unused_local_url()
    config = ServiceConfig("pypi", url, tmp_path / "cache", 2.0, 2)

    lookup = lookup_advisories([("hcore", "1.0")], config)

    assert not lookup.checked
    assert not lookup.found
    assert lookup.error is not None
    assert url in lookup.error
    assert "LOCKWARDEN_ADVISORY_URL" in lookup.error


def test_off_checks_nothing(tmp_path: Path) -> None:
    lookup = lookup_advisories([("hcore", "1.0")], ServiceConfig("off"))
    assert not lookup.checked
    assert "LOCKWARDEN_ADVISORY_SERVICE=off" in (lookup.error or "")


def test_a_recent_answer_is_used_without_asking_again(
    advisory_service: AdvisoryService, tmp_path: Path
) -> None:
    config = ServiceConfig(
        "pypi", advisory_service.url, tmp_path / "cache", 5.0, 3, fresh_for_s=600
    )
    cold = lookup_advisories(PACKAGES, config)
    assert advisory_service.count() == 3

    warm = lookup_advisories(PACKAGES, config)

    assert warm == cold  # advisories, unknown packages and all
    assert advisory_service.count() == 3
    # Past the window (0 s) the service is asked again, conditionally.
    stale = ServiceConfig("pypi", advisory_service.url, tmp_path / "cache", 5.0, 3)
    assert lookup_advisories(PACKAGES, stale) == cold
    assert advisory_service.count(status=304, conditional=True) == 3
