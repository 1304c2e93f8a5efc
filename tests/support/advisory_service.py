"""A local advisory service: PyPI's JSON API and OSV's query API on 127.0.0.1.

It answers ``GET /pypi/<name>/<version>/json`` the way PyPI does (the release's ``info``,
``urls`` and ``vulnerabilities``; 404 for a release it does not have) and
``POST /v1/query`` the way OSV does (``{"vulns": [...]}``, or ``{}`` when none), from
recorded vulnerabilities in PyPI's shape (``advisories/pypi-vulnerabilities.json``) that
tests can add to. PyPI answers carry an ETag and ``Cache-Control: max-age=0``, and a request
whose ``If-None-Match`` matches gets ``304 Not Modified``. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tests.support.served import LocalServer, QuietHandler, QuietServer

RECORDED = Path(__file__).parent / "advisories" / "pypi-vulnerabilities.json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int
    conditional: bool
    """The request carried ``If-None-Match``."""


class AdvisoryService(LocalServer):
    """The service; ``url`` is its base URL (for LOCKWARDEN_ADVISORY_URL)."""

    def __init__(self) -> None:
        self.vulnerabilities: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for name, versions in json.loads(RECORDED.read_text("utf-8")).items():
            for version, vulns in versions.items():
                self.vulnerabilities[(name, version)] = vulns
        self.unknown: set[str] = set()
        """Names PyPI answers 404 for (a private package)."""
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        super().__init__(QuietServer(("127.0.0.1", 0), self._handler()), "advisories")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, name: str, version: str, vulns: list[dict[str, Any]]) -> None:
        """Set one release's vulnerabilities (PyPI's shape)."""
        self.vulnerabilities[(str(canonicalize_name(name)), version)] = vulns

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, *, status: int | None = None, conditional: bool | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (status is None or r.status == status)
                and (conditional is None or r.conditional == conditional)
            )

    def pypi_body(self, name: str, version: str) -> bytes | None:
        key = (str(canonicalize_name(name)), version)
        if key[0] in self.unknown:
            return None
        document = {
            "info": {"name": name, "version": version, "yanked": False},
            "last_serial": 1,
            "urls": [],
            "vulnerabilities": self.vulnerabilities.get(key, []),
        }
        return json.dumps(document, sort_keys=True).encode()

    def osv_body(self, query: dict[str, Any]) -> bytes:
        name = str(canonicalize_name(query["package"]["name"]))
        vulns = [
            osv_record(name, v)
            for v in self.vulnerabilities.get((name, query["version"]), [])
            if not v.get("withdrawn")
        ]
        return json.dumps({"vulns": vulns} if vulns else {}).encode()

    def _handler(self) -> type[QuietHandler]:
        service = self

        class Handler(QuietHandler):
            def dispatch(self, *, send_body: bool) -> None:
                parts = self.path.strip("/").split("/")
                body = None
                if len(parts) == 4 and parts[0] == "pypi" and parts[3] == "json":
                    body = service.pypi_body(parts[1], parts[2])
                if body is None:
                    self.answer(404, b'{"message": "Not Found"}', send_body=send_body)
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.answer(304, b"", send_body=False, etag=etag)
                    return
                self.answer(200, body, send_body=send_body, etag=etag)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                query = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/query" or "package" not in query:
                    self.answer(400, b'{"code": 3, "message": "Invalid query."}', send_body=True)
                    return
                self.answer(200, service.osv_body(query), send_body=True)

            def answer(
                self, status: int, body: bytes, *, send_body: bool, etag: str | None = None
            ) -> None:
                conditional = self.headers.get("If-None-Match") is not None
                service.record(Request(self.command, self.path, status, conditional))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)) if status != 304 else "0")
                if etag is not None:
                    self.send_header("ETag", etag)
                    self.send_header("Cache-Control", "max-age=0")
                self.end_headers()
                if send_body and status != 304:
                    self.wfile.write(body)

        return Handler


def osv_record(name: str, vuln: dict[str, Any]) -> dict[str, Any]:
    """A PyPI-shaped vulnerability in OSV's schema: one ECOSYSTEM range per fixed version."""
    events: list[dict[str, str]] = [{"introduced": "0"}]
    events += [{"fixed": fixed} for fixed in vuln["fixed_in"]]
    return {
        "schema_version": "1.6.0",
        "id": vuln["id"],
        "modified": "2099-01-02T00:00:00Z",
        "published": "2099-01-01T00:00:00Z",
        "aliases": vuln["aliases"],
        "summary": vuln["summary"],
        "details": vuln["details"],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name, "purl": f"pkg:pypi/{name}"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
        "references": [{"type": "WEB", "url": vuln["link"]}],
    }


def vulnerability(advisory_id: str, fixed_in: list[str], summary: str = "") -> dict[str, Any]:
    """One vulnerability in PyPI's shape, for ``AdvisoryService.publish``."""
    return {
        "id": advisory_id,
        "aliases": [],
        "summary": summary,
        "details": "",
        "fixed_in": fixed_in,
        "link": f"https://osv.dev/vulnerability/{advisory_id}",
        "source": "osv",
        "withdrawn": None,
    }


@contextmanager
def start_advisory_service() -> Iterator[AdvisoryService]:
    with AdvisoryService().start() as service:
        yield service
