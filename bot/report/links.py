"""Links to a release on the index the lock was compiled against."""

from __future__ import annotations

from urllib.parse import quote

from packaging.utils import canonicalize_name

from bot.report import messages

PYPI_INDEXES = frozenset({"https://pypi.org/simple", "https://pypi.python.org/simple"})


def release_url(name: str, version: str | None, index_url: str | None) -> str:
    """PyPI's release page, or the project's page on a configured index. Name and version
    come from a lock, so they are percent-encoded: nothing in them can end the link."""
    index = (index_url or "https://pypi.org/simple").rstrip("/")
    name = quote(name, safe="")
    version = quote(version, safe="+!") if version else version
    if index in PYPI_INDEXES and version:
        return messages.PYPI_RELEASE_URL.format(name=canonicalize_name(name), version=version)
    if index in PYPI_INDEXES:
        return f"https://pypi.org/project/{canonicalize_name(name)}/"
    index = quote(index, safe=":/@%?=&~+")
    return messages.INDEX_PROJECT_URL.format(index=index, name=canonicalize_name(name))
