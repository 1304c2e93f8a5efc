"""Base images: the ``FROM`` lines of a Dockerfile, their digests, and pinning them.

A tag such as ``python:3.12-slim`` moves whenever its publisher pushes a new build, so two
builds of the same Dockerfile can start from different images. Pinning the tag's manifest
digest (``python:3.12-slim@sha256:...``) makes the base an input that only changes on
purpose: :func:`resolve_digest` asks the registry for the tag's current digest, and
:func:`rewrite_base_images` writes it into the ``FROM`` line, leaving every other byte alone.

The Dockerfile is read here at the level of source offsets (every character of a word knows
where it came from), which the byte-exact rewrites of this module and of
``bot.images.os_packages`` need: :func:`dockerfile_instructions` splits the text into
instructions (parser directives, continuation lines, comment lines inside them, heredoc
bodies), and :func:`shell_tokens` splits an instruction's arguments into shell words and
operators.

References are normalised like Docker does: no registry means ``docker.io``, a single-name
Docker Hub image lives under ``library/``, and the first path component is a registry when
it is ``localhost``, has a port, or contains a dot. The registry is asked directly over its
HTTP API (v2), anonymously: a ``401`` with a ``Bearer`` challenge is answered with an
anonymous token from the challenge's realm, which is what Docker Hub and ghcr.io need.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from bot.errors import LockwardenError
from bot.images.dockerfile_checks import HEREDOC_RE
from bot.lines import physical_lines
from bot.sandbox.egress import EgressPolicy, GuardedTransport

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""What a manifest request accepts: the multi-platform index first, so the digest pinned is
the one ``docker pull image:tag`` resolves on every platform."""

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([A-Za-z_]+)[ \t]*=[ \t]*(\S+)[ \t]*$")
_KEYWORD_RE = re.compile(r"[ \t]*([A-Za-z]+)(?=[ \t\r\n\\`]|$)")
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_OPERATOR_CHARS = frozenset(";&|()<>")
_MAX_ERROR_TEXT = 300

# --------------------------------------------------------------------------- reading text

Chars = tuple[tuple[str, int], ...]
"""Characters of a piece of Dockerfile text, each with its offset in the whole text."""


@dataclass(frozen=True)
class Instruction:
    """One instruction, with where its arguments sit in the text."""

    keyword: str
    """Upper case: ``FROM``, ``RUN``..."""
    line: int
    """1-based line of the keyword."""
    arguments: Chars
    """The arguments after the keyword as Docker joins them: continuation escapes and the
    comment lines inside a continued instruction removed."""
    heredocs: tuple[Chars, ...] = ()
    """The bodies of the instruction's heredocs (``RUN <<EOF``), in order."""


@dataclass(frozen=True)
class ShellToken:
    """A shell word (quotes removed, ``text``) or an operator (``&&``, ``;``, ``|``,
    ``>``, a newline...), with the offset of each character of ``text``."""

    kind: Literal["word", "operator"]
    chars: Chars

    @property
    def text(self) -> str:
        return "".join(char for char, _ in self.chars)


def dockerfile_instructions(text: str) -> tuple[Instruction, ...]:
    """The instructions of a Dockerfile, in order. Lenient: text that is not an instruction
    is skipped (``check_dockerfile`` reports syntax errors)."""
    lines = physical_lines(text)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    escape = _escape_character(lines)
    found: list[Instruction] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        first = index
        body = lines[index].rstrip("\r\n")
        bom = 1 if index == 0 and body.startswith("\ufeff") else 0
        match = _KEYWORD_RE.match(body, bom)
        if match is None:
            index += 1
            continue
        chars: list[tuple[str, int]] = []
        column = match.end()
        while True:
            body = lines[index].rstrip("\r\n")
            content = body[column:]
            trimmed = content.rstrip(" \t")
            continued = trimmed.endswith(escape) and index + 1 < len(lines)
            kept = trimmed[:-1] if continued else content
            chars.extend((char, starts[index] + column + i) for i, char in enumerate(kept))
            index += 1
            column = 0
            if not continued:
                break
            while index < len(lines) and (
                not lines[index].strip() or lines[index].lstrip().startswith("#")
            ):
                index += 1
            if index >= len(lines):
                break
        keyword = match.group(1).upper()
        heredocs: list[Chars] = []
        if keyword in ("RUN", "COPY", "ADD"):
            joined = "".join(char for char, _ in chars)
            for marker in HEREDOC_RE.finditer(joined):
                name = marker.group(2) or marker.group(3) or marker.group(4)
                body_start = index
                while index < len(lines):
                    current = lines[index].rstrip("\r\n")
                    if (current.lstrip("\t") if marker.group(1) else current) == name:
                        break
                    index += 1
                heredocs.append(_span(text, starts[body_start], starts[index]))
                index += 1  # the terminator line
        found.append(Instruction(keyword, first + 1, tuple(chars), tuple(heredocs)))
    return tuple(found)


def _escape_character(lines: Sequence[str]) -> str:
    """The ``# escape=`` parser directive's character (a backslash unless set)."""
    for line in lines:
        match = _DIRECTIVE_RE.match(line.strip().lstrip("\ufeff"))
        if match is None:
            break  # directives only stand before anything else, comments included
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            return match.group(2)
    return "\\"


def _span(text: str, start: int, end: int) -> Chars:
    return tuple((text[offset], offset) for offset in range(start, end))


def shell_tokens(chars: Chars) -> tuple[ShellToken, ...]:
    """Split shell source into words and operators. Quotes are removed from words (their
    characters keep their offsets), ``\\``-newline is a line continuation, and ``#`` at the
    start of a word begins a comment."""
    tokens: list[ShellToken] = []
    index = 0
    while index < len(chars):
        char = chars[index][0]
        if char in " \t\r":
            index += 1
        elif char == "\n":
            tokens.append(ShellToken("operator", (chars[index],)))
            index += 1
        elif char == "#":
            while index < len(chars) and chars[index][0] != "\n":
                index += 1
        elif char in _OPERATOR_CHARS:
            end = index
            while end < len(chars) and chars[end][0] in _OPERATOR_CHARS:
                end += 1
            tokens.append(ShellToken("operator", chars[index:end]))
            index = end
        elif char == "\\" and index + 1 < len(chars) and chars[index + 1][0] == "\n":
            index += 2
        else:
            word, index = _shell_word(chars, index)
            tokens.append(ShellToken("word", word))
    return tuple(tokens)


def _shell_word(chars: Chars, index: int) -> tuple[Chars, int]:
    word: list[tuple[str, int]] = []
    while index < len(chars):
        char = chars[index][0]
        if char in " \t\r\n" or char in _OPERATOR_CHARS:
            break
        if char == "\\":
            if index + 1 < len(chars) and chars[index + 1][0] != "\n":
                word.append(chars[index + 1])
            index += 2
        elif char == "'":
            index += 1
            while index < len(chars) and chars[index][0] != "'":
                word.append(chars[index])
                index += 1
            index += 1
        elif char == '"':
            index += 1
            while index < len(chars) and chars[index][0] != '"':
                if (
                    chars[index][0] == "\\"
                    and index + 1 < len(chars)
                    and chars[index + 1][0] in '$`"\\\n'
                ):
                    if chars[index + 1][0] != "\n":
                        word.append(chars[index + 1])
                    index += 2
                    continue
                word.append(chars[index])
                index += 1
            index += 1
        else:
            word.append(chars[index])
            index += 1
    return tuple(word), index


class LineIndex:
    """Offsets to 1-based line numbers, for many lookups in one text."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def line(self, offset: int) -> int:
        return bisect_right(self._starts, offset)


def replace_spans(text: str, replacements: Mapping[tuple[int, int], str]) -> str:
    """``text`` with each ``(start, end)`` span replaced; spans must not overlap."""
    out: list[str] = []
    position = 0
    for (start, end), new in sorted(replacements.items()):
        if start < position:
            raise LockwardenError(f"overlapping edits at offset {start}")
        out.append(text[position:start])
        out.append(new)
        position = end
    out.append(text[position:])
    return "".join(out)


# --------------------------------------------------------------------------- FROM lines


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` instruction: a build stage."""

    index: int
    line: int
    image: str
    """As written (``python:3.12-slim``, ``${BASE}``, ``build``, ``scratch``)."""
    alias: str | None
    """The ``AS`` name, lower case."""
    parent: int | None
    """The earlier stage this one is built ``FROM``, when ``image`` names one."""
    base: str
    """The image this stage starts from in the end: ``image``, or the ``base`` of
    ``parent``."""
    image_span: tuple[int, int] | None
    """Where ``image`` sits in the text, when it is one contiguous word."""


@dataclass(frozen=True)
class BaseImageRef:
    """A ``FROM`` line that names an image in a registry."""

    file: str
    line: int
    stage: int
    image: str
    """As written, e.g. ``python:3.12-slim`` or ``ghcr.io/org/img:1@sha256:...``."""
    registry: str
    """``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``..."""
    repository: str
    """``library/python``, ``org/img``..."""
    tag: str | None
    digest: str | None
    alias: str | None

    @property
    def name(self) -> str:
        """The image as written, without its digest: what a pin follows."""
        return self.image.partition("@")[0]

    @property
    def canonical(self) -> str:
        """``registry/repository:tag`` (``latest`` when no tag is written), for messages."""
        return f"{self.registry}/{self.repository}:{self.tag or 'latest'}"

    def pinned(self, digest: str) -> str:
        """The reference as written with ``digest`` in place of its own. A reference without
        a tag gets ``:latest``, so a later refresh still knows which tag it follows."""
        name = self.name
        if self.tag is None and self.digest is None:
            name += ":latest"
        return f"{name}@{digest}"


def find_stages(text: str) -> tuple[Stage, ...]:
    """Every ``FROM`` of the Dockerfile, in order."""
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(text):
        if instruction.keyword != "FROM":
            continue
        words = [t for t in shell_tokens(instruction.arguments) if t.kind == "word"]
        words = [w for w in words if not w.text.startswith("--")]
        if not words:
            continue
        image = words[0].text
        alias = None
        if len(words) >= 3 and words[1].text.lower() == "as":
            alias = words[2].text.lower()
        parent = next((s for s in stages if s.alias and s.alias == image.lower()), None)
        offsets = [offset for _, offset in words[0].chars]
        contiguous = offsets == list(range(offsets[0], offsets[0] + len(offsets)))
        stages.append(
            Stage(
                index=len(stages),
                line=instruction.line,
                image=image,
                alias=alias,
                parent=parent.index if parent else None,
                base=parent.base if parent else image,
                image_span=(offsets[0], offsets[-1] + 1) if contiguous else None,
            )
        )
    return tuple(stages)


def _pinnable(stage: Stage) -> bool:
    return stage.parent is None and stage.image.lower() != "scratch" and "$" not in stage.image


def find_base_images(text: str, path: str) -> tuple[BaseImageRef, ...]:
    """The ``FROM`` lines that name a registry image; ``scratch``, earlier stages and images
    set by build arguments (see :func:`find_unpinnable_images`) are left out."""
    return tuple(_ref(stage, path) for stage in find_stages(text) if _pinnable(stage))


def _ref(stage: Stage, path: str) -> BaseImageRef:
    registry, repository, tag, digest = parse_reference(stage.image)
    return BaseImageRef(
        file=path,
        line=stage.line,
        stage=stage.index,
        image=stage.image,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        alias=stage.alias,
    )


def find_unpinnable_images(text: str) -> tuple[str, ...]:
    """Base images set by build arguments (``FROM ${BASE}``), as written, each once: their
    value is only known at build time, so no digest can be written for them."""
    seen: dict[str, None] = {}
    for stage in find_stages(text):
        if stage.parent is None and "$" in stage.image:
            seen.setdefault(stage.image, None)
    return tuple(seen)


def parse_reference(image: str) -> tuple[str, str, str | None, str | None]:
    """``(registry, repository, tag, digest)`` of an image reference, normalised like
    Docker: ``python:3.12`` is ``("docker.io", "library/python", "3.12", None)``."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository, tag or None, digest or None


def rewrite_base_images(text: str, updates: Mapping[int, str]) -> str:
    """``text`` with the digest of the ``FROM`` on each line of ``updates`` set to the new
    digest: ``FROM image:tag`` becomes ``FROM image:tag@sha256:...``, an existing digest is
    replaced, ``--platform`` and ``AS`` stay, and nothing else changes."""
    by_line = {stage.line: stage for stage in find_stages(text)}
    edits: dict[tuple[int, int], str] = {}
    for line, digest in updates.items():
        stage = by_line.get(line)
        if stage is None or not _pinnable(stage):
            raise LockwardenError(f"line {line} has no FROM of a registry image to pin")
        if stage.image_span is None:
            raise LockwardenError(f"line {line}: the image of this FROM is split; join it")
        if not _DIGEST_RE.match(digest):
            raise LockwardenError(f"line {line}: '{digest}' is not an image digest")
        edits[stage.image_span] = _ref(stage, "").pinned(digest)
    return replace_spans(text, edits)


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
    if not _DIGEST_RE.match(digest):
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
