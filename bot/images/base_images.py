"""Base images: the digest a ``FROM`` line's tag points at now, asked of its registry.

A tag such as ``python:3.12-slim`` moves whenever its publisher pushes a new build, so two
builds of the same Dockerfile can start from different images. :func:`resolve_digest` asks
the registry for the tag's current manifest digest, which
``bot.images.dockerfile.from_lines.rewrite_base_images`` writes into the ``FROM`` line.

The registry is asked directly over its HTTP API (v2), anonymously: a ``401`` with a
``Bearer`` challenge is answered with an anonymous token from the challenge's realm, which is
what Docker Hub and ghcr.io need.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence

import httpx

from bot.errors import LockwardenError
from bot.images.dockerfile.from_lines import DOCKER_HUB, BaseImageRef, is_digest
from bot.sandbox.egress import EgressPolicy
from bot.sandbox.transport import GuardedTransport

DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""What a manifest request accepts: the multi-platform index first, so the digest pinned is
the one ``docker pull image:tag`` resolves on every platform."""

_CHALLENGE_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_MAX_ERROR_TEXT = 300

# --------------------------------------------------------------------------- the registry


class RegistryError(LockwardenError):
    """A registry did not give the digest of an image's tag; names the image and says why."""

    code = "registry"

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"could not resolve {image}: {reason}")
        self.image = image
        self.reason = reason


def resolve_digest(
    ref: BaseImageRef,
    *,
    tls_verify: bool = True,
    timeout_s: float = 30,
    insecure_registries: Sequence[str] = (),
    policy: EgressPolicy,
) -> str:
    """The manifest digest (``sha256:...``) that ``ref``'s tag points at now. The registry
    is named by a repository's Dockerfile, so every request is checked against ``policy``.

    Plain HTTP for ``localhost``, loopback addresses and ``insecure_registries`` (names,
    ``host:port`` or CIDR ranges, like Docker's ``insecure-registries``); HTTPS otherwise.
    Raises :class:`RegistryError` for an unknown tag, a denial or an unreachable registry.
    """
    image = ref.canonical
    host = DOCKER_HUB_API if ref.registry == DOCKER_HUB else ref.registry
    scheme = "http" if plain_http(ref.registry, insecure_registries) else "https"
    url = f"{scheme}://{host}/v2/{ref.repository}/manifests/{ref.tag or 'latest'}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    try:
        with httpx.Client(
            timeout=timeout_s,
            verify=tls_verify,
            follow_redirects=True,
            # A registry on the loopback interface is never reached through a proxy.
            trust_env=not _is_loopback(ref.registry),
            transport=GuardedTransport(policy, verify=tls_verify),
        ) as client:
            response = client.head(url, headers=headers)
            if response.status_code == 401:
                token = _anonymous_token(client, image, ref.repository, response)
                headers["Authorization"] = f"Bearer {token}"
                response = client.head(url, headers=headers)
            digest = response.headers.get("Docker-Content-Digest")
            if response.status_code == 200 and digest:
                return _checked_digest(image, digest)
            # No digest header, or an answer without a body to explain it: ask again with GET.
            response = client.get(url, headers=headers)
    except httpx.TimeoutException as exc:
        raise RegistryError(
            image, f"{host} did not answer within {timeout_s:.0f} s ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        raise RegistryError(image, f"{host} is unreachable ({_reason(exc)})") from exc
    if response.status_code != 200:
        raise RegistryError(image, _refusal(host, ref, response))
    digest = response.headers.get("Docker-Content-Digest")
    if digest:
        return _checked_digest(image, digest)
    return "sha256:" + hashlib.sha256(response.content).hexdigest()


def _checked_digest(image: str, digest: str) -> str:
    digest = digest.strip()
    if not is_digest(digest):
        raise RegistryError(image, f"the registry answered with a malformed digest '{digest}'")
    return digest


def _anonymous_token(
    client: httpx.Client, image: str, repository: str, challenged: httpx.Response
) -> str:
    header = challenged.headers.get("WWW-Authenticate", "")
    scheme, _, params_text = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(
            image,
            "access denied (401; the registry wants credentials"
            f"{f' ({scheme})' if scheme else ''}, and Lockwarden pulls anonymously); "
            "check the image name, or use a public image",
        )
    params = {
        key.lower(): quoted or bare
        for key, quoted, bare in _CHALLENGE_PARAM_RE.findall(params_text)
    }
    realm = params.get("realm")
    if not realm:
        raise RegistryError(image, f"the registry's Bearer challenge has no realm: {header}")
    query = {"scope": params.get("scope") or f"repository:{repository}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    answer = client.get(realm, params=query)
    if answer.status_code != 200:
        raise RegistryError(
            image,
            f"no anonymous token from {realm} ({answer.status_code}: {_body(answer)})",
        )
    try:
        data = answer.json()
    except ValueError as exc:
        raise RegistryError(image, f"the token service {realm} answered with no JSON") from exc
    token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(image, f"the token service {realm} answered with no token")
    return token


def _refusal(host: str, ref: BaseImageRef, response: httpx.Response) -> str:
    status = response.status_code
    body = _body(response)
    if status == 404:
        return (
            f"{host} has no tag '{ref.tag or 'latest'}' of {ref.repository} (404: {body}); "
            "check the image and tag in the FROM line"
        )
    if status in (401, 403):
        return (
            f"access denied by {host} ({status}: {body}); the image is private or does not "
            "exist, and Lockwarden pulls anonymously"
        )
    if status == 429:
        return f"{host} limits requests (429: {body}); try again later"
    return f"{host} answered {status} ({body})"


def _body(response: httpx.Response) -> str:
    """The registry's own explanation: the messages of its JSON errors, or its text."""
    text = response.text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_TEXT] or response.reason_phrase
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors:
        parts = [
            f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(parts)[:_MAX_ERROR_TEXT]
    return text[:_MAX_ERROR_TEXT]


def _reason(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


def _split_host(registry: str) -> str:
    """The host of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    if registry.count(":") > 1:
        return registry  # a bare IPv6 address
    return registry.partition(":")[0]


def _is_loopback(registry: str) -> bool:
    host = _split_host(registry)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http(registry: str, insecure_registries: Sequence[str] = ()) -> bool:
    """Whether ``registry`` is spoken to over plain HTTP: ``localhost`` and loopback
    addresses (Docker's default), and the ``insecure_registries`` (a registry name,
    ``host:port``, or a CIDR range of addresses)."""
    if _is_loopback(registry):
        return True
    host = _split_host(registry)
    for entry in insecure_registries:
        if entry in (registry, host):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
