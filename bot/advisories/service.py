"""Published advisories for (package, version) pairs, from pip-audit's vulnerability services.

pip-audit's ``PyPIService`` (PyPI's JSON API, ``vulnerabilities`` of one release) and
``OsvService`` (OSV's ``/v1/query``) do the requests and parse the answers; their sessions
are CacheControl sessions over a file cache, so a repeated lookup of PyPI sends
``If-None-Match`` with the stored ETag and reuses the stored body on ``304 Not Modified``.
OSV is queried with POST, which CacheControl never caches: every OSV lookup is a request.

Each pair is looked up once per run, on a small bounded pool of threads with one service (and
one HTTP session) per thread. A service that cannot be reached is not a failure of the run:
the lookup comes back unchecked, with a note that says what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pip_audit._service import (
    OsvService,
    PyPIService,
    ResolvedDependency,
    ServiceError,
    VulnerabilityResult,
    VulnerabilityService,
)

from bot.results import Advisory

if TYPE_CHECKING:
    from bot.settings import Settings

ServiceName = Literal["pypi", "osv", "off"]

PYPI_URL = "https://pypi.org"
"""The base URL pip-audit's ``PyPIService`` writes into every request."""
OSV_URL = "https://api.osv.dev"
ADVISORY_PAGE = "https://osv.dev/vulnerability/"
"""Every id of PyPI's and OSV's advisories (PYSEC, GHSA, CVE) has a page here."""

Package = tuple[str, str]
"""(canonical name, version)."""


@dataclass(frozen=True)
class ServiceConfig:
    """Which service answers, where, and where its answers are cached (from ``Settings``)."""

    service: ServiceName = "pypi"
    url: str | None = None
    """The service's base URL (``https://pypi.org``, a mirror, a local test service); None:
    the public one."""
    cache_dir: Path | None = None
    timeout_s: float = 15.0
    max_parallel: int = 4

    @property
    def base_url(self) -> str:
        default = PYPI_URL if self.service == "pypi" else OSV_URL
        return (self.url or default).rstrip("/")

    def describe(self) -> str:
        """``PyPI (https://pypi.org)``: the service as notes name it."""
        return f"{'PyPI' if self.service == 'pypi' else 'OSV'} ({self.base_url})"


@dataclass(frozen=True)
class Lookup:
    """The advisories of every package looked up, or why they could not be."""

    found: Mapping[Package, tuple[Advisory, ...]] = field(default_factory=dict)
    unknown: tuple[Package, ...] = ()
    """Packages the service does not know (not on PyPI, or a version it cannot parse)."""
    error: str | None = None
    """Why advisories were not checked (the service off or unreachable); None: checked."""

    @property
    def checked(self) -> bool:
        return self.error is None

    def advisories(self, name: str, version: str) -> tuple[Advisory, ...]:
        return self.found.get((canonicalize_name(name), version), ())


class _Rebased:
    """A session whose requests to ``https://pypi.org`` go to ``base`` instead.

    ``PyPIService`` writes PyPI's URL into each request and takes no other; rather than
    copying its request and parsing code, its session is wrapped so only the host changes
    (a mirror, GitHub Enterprise's egress, a local service in tests)."""

    def __init__(self, session: requests.Session, base: str) -> None:
        self._session = session
        self._base = base

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        if url.startswith(PYPI_URL):
            url = self._base + url.removeprefix(PYPI_URL)
        return self._session.get(url, **kwargs)


def service_config(settings: Settings) -> ServiceConfig:
    """The advisory service the operator's settings choose; its cache is ``advisories`` in
    LOCKWARDEN_CACHE_DIR unless LOCKWARDEN_ADVISORY_CACHE_DIR says otherwise."""
    return ServiceConfig(
        service=settings.advisory_service,
        url=settings.advisory_url,
        cache_dir=settings.advisory_cache_dir,
        timeout_s=settings.advisory_timeout_s,
        max_parallel=settings.advisory_max_parallel,
    )


def make_service(config: ServiceConfig) -> VulnerabilityService:
    """One pip-audit service for ``config`` (not thread-safe: one per thread)."""
    timeout = max(1, round(config.timeout_s))
    if config.service == "osv":
        return OsvService(config.cache_dir, timeout, osv_url=f"{config.base_url}/v1/query")
    service = PyPIService(config.cache_dir, timeout)
    if config.base_url != PYPI_URL:
        service.session = cast("requests.Session", _Rebased(service.session, config.base_url))
    return service


def lookup_advisories(packages: Iterable[Package], config: ServiceConfig) -> Lookup:
    """The advisories of each distinct (canonical name, version), looked up concurrently on at
    most ``config.max_parallel`` threads. Never raises for the service's failures."""
    if config.service == "off":
        return Lookup(error="the advisory service is off (LOCKWARDEN_ADVISORY_SERVICE=off)")
    wanted: list[Package] = sorted({(str(canonicalize_name(n)), v) for n, v in packages})
    if not wanted:
        return Lookup()
    local = threading.local()

    def query(package: Package) -> tuple[Advisory, ...] | None:
        if not hasattr(local, "service"):
            local.service = make_service(config)
        service: VulnerabilityService = local.service
        return _query(service, package)

    workers = max(1, min(config.max_parallel, len(wanted)))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="advisories") as pool:
            answers = list(pool.map(query, wanted))
    except (ServiceError, requests.RequestException, ValueError) as exc:
        return Lookup(error=_unreachable(config, exc))
    found = {p: a for p, a in zip(wanted, answers, strict=True) if a}
    unknown = tuple(p for p, a in zip(wanted, answers, strict=True) if a is None)
    return Lookup(found=found, unknown=unknown)


def _query(service: VulnerabilityService, package: Package) -> tuple[Advisory, ...] | None:
    """One package's advisories; None when the service does not know it."""
    name, version = package
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    # ResolvedDependency is a frozen dataclass whose base refuses construction; its own
    # generated __init__ takes the name and the version.
    dependency = ResolvedDependency(name=name, version=parsed)
    answered, results = service.query(dependency)
    if answered.is_skipped():
        return None
    return tuple(sorted((_advisory(r, name, version) for r in results), key=lambda a: a.id))


def _advisory(result: VulnerabilityResult, name: str, version: str) -> Advisory:
    # pip-audit puts CVE ids before GHSA ones; an advisory database's own id (PYSEC, GHSA)
    # is what ignore rules and links use, so it is the primary one here, a CVE the last.
    ids = sorted({str(result.id), *(str(a) for a in result.aliases)}, key=_id_rank)
    return Advisory(
        id=ids[0],
        package=name,
        version=version,
        aliases=tuple(sorted(ids[1:])),
        fixed_versions=tuple(str(v) for v in sorted(result.fix_versions)),
        summary=result.description,
        link=f"{ADVISORY_PAGE}{ids[0]}",
    )


def _id_rank(advisory_id: str) -> tuple[int, str]:
    prefix = advisory_id.split("-", 1)[0].upper()
    return ({"PYSEC": 0, "GHSA": 1, "CVE": 3}.get(prefix, 2), advisory_id)


def _unreachable(config: ServiceConfig, exc: Exception) -> str:
    cause = str(exc) or type(exc).__name__
    if isinstance(exc, ServiceError) and exc.__cause__ is not None:
        cause = str(exc.__cause__)
    return (
        f"{config.describe()} could not be reached or answered badly ({cause[:300]}); "
        "check LOCKWARDEN_ADVISORY_URL and the network, then run again"
    )
