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

import contextlib
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.errors import LockwardenError
from bot.paths import write_text_inside
from bot.results import Advisory

if TYPE_CHECKING:
    # pip-audit (and requests) are loaded where a lookup asks a service: importing pip-audit
    # runs `pip --version`.
    import requests
    from pip_audit._service import VulnerabilityResult, VulnerabilityService

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
    fresh_for_s: float = 0.0
    """An answer younger than this (kept in ``cache_dir``) is used without asking again."""

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


def service_config(settings: Settings, *, reuse_recent: bool = False) -> ServiceConfig:
    """The advisory service the operator's settings choose; its cache is ``advisories`` in
    LOCKWARDEN_CACHE_DIR unless LOCKWARDEN_ADVISORY_CACHE_DIR says otherwise.
    ``reuse_recent``: answers younger than LOCKWARDEN_UPSTREAM_FRESH_S are taken without
    asking (a refresh's report); without it every answer is asked for (revalidated), as an
    audit, a security fix and the watch must see an advisory published a minute ago."""
    return ServiceConfig(
        service=settings.advisory_service,
        url=settings.advisory_url,
        cache_dir=settings.advisory_cache_dir,
        timeout_s=settings.advisory_timeout_s,
        max_parallel=settings.advisory_max_parallel,
        fresh_for_s=settings.upstream_fresh_s if reuse_recent else 0.0,
    )


def make_service(config: ServiceConfig) -> VulnerabilityService:
    """One pip-audit service for ``config`` (not thread-safe: one per thread)."""
    from pip_audit._service import OsvService, PyPIService

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

    kept = _RecentAnswers(config)

    def query(package: Package) -> tuple[Advisory, ...] | None:
        recent = kept.get(package)
        if recent is not None:
            return recent.advisories
        if not hasattr(local, "service"):
            local.service = make_service(config)
        service: VulnerabilityService = local.service
        answer = _query(service, package)
        kept.put(package, answer)
        return answer

    workers = max(1, min(config.max_parallel, len(wanted)))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="advisories") as pool:
            answers = list(pool.map(query, wanted))
    except _ServiceFailed as exc:
        return Lookup(error=_unreachable(config, exc.cause))
    found = {p: a for p, a in zip(wanted, answers, strict=True) if a}
    unknown = tuple(p for p, a in zip(wanted, answers, strict=True) if a is None)
    return Lookup(found=found, unknown=unknown)


@dataclass(frozen=True)
class _Kept:
    advisories: tuple[Advisory, ...] | None
    """None: the service did not know the package."""


class _RecentAnswers:
    """Answers younger than ``fresh_for_s``, one JSON file each under the cache directory.

    pip-audit's HTTP cache revalidates every answer (one conditional request per package
    and run) and keeps nothing from a service that sends no validators or OSV's POSTs; a
    refresh that runs again within minutes should not ask again at all."""

    def __init__(self, config: ServiceConfig) -> None:
        self._fresh_for_s = config.fresh_for_s
        self._dir = None
        if config.cache_dir is not None and config.fresh_for_s > 0:
            key = hashlib.sha256(f"{config.service} {config.base_url}".encode()).hexdigest()
            self._dir = config.cache_dir / "answers" / key[:24]

    @staticmethod
    def _file(package: Package) -> str:
        name, version = package
        return f"{name}=={version.replace('/', '_')}.json"

    def get(self, package: Package) -> _Kept | None:
        """The answer kept for ``package``; None when there is none young enough."""
        if self._dir is None:
            return None
        path = self._dir / self._file(package)
        try:
            if time.time() - path.stat().st_mtime >= self._fresh_for_s:
                return None
            data = json.loads(path.read_text("utf-8"))
            return _Kept(None if data is None else tuple(_advisory_from(i) for i in data))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # an unreadable copy: ask again

    def put(self, package: Package, answer: tuple[Advisory, ...] | None) -> None:
        if self._dir is None:
            return
        data = None if answer is None else [dataclasses.asdict(a) for a in answer]
        # A cache that cannot be written only costs time.
        with contextlib.suppress(OSError, LockwardenError):
            self._dir.mkdir(parents=True, exist_ok=True)
            write_text_inside(
                self._dir, self._file(package), json.dumps(data), source="advisory cache"
            )


def _advisory_from(item: dict[str, Any]) -> Advisory:
    return Advisory(
        id=str(item["id"]),
        package=str(item["package"]),
        version=str(item["version"]),
        aliases=tuple(item["aliases"]),
        fixed_versions=tuple(item["fixed_versions"]),
        summary=str(item["summary"]),
        link=str(item["link"]),
    )


class _ServiceFailed(Exception):
    """The service could not answer (unreachable, or an answer it could not read)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _query(service: VulnerabilityService, package: Package) -> tuple[Advisory, ...] | None:
    """One package's advisories; None when the service does not know it."""
    name, version = package
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    # Imported on the first question the kept answers cannot answer: importing pip-audit
    # runs ``pip --version``, a quarter of a second a warm run does not need.
    import requests
    from pip_audit._service import ResolvedDependency, ServiceError

    # ResolvedDependency is a frozen dataclass whose base refuses construction; its own
    # generated __init__ takes the name and the version.
    dependency = ResolvedDependency(name=name, version=parsed)
    try:
        answered, results = service.query(dependency)
    except (ServiceError, requests.RequestException, ValueError) as exc:
        raise _ServiceFailed(exc) from exc
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
    from pip_audit._service import ServiceError

    cause = str(exc) or type(exc).__name__
    if isinstance(exc, ServiceError) and exc.__cause__ is not None:
        cause = str(exc.__cause__)
    return (
        f"{config.describe()} could not be reached or answered badly ({cause[:300]}); "
        "check LOCKWARDEN_ADVISORY_URL and the network, then run again"
    )
