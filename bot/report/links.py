"""Links to a release on the index the lock was compiled against."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from bot.report import messages

PYPI_INDEXES = frozenset({"https://pypi.org/simple", "https://pypi.python.org/simple"})


def release_url(name: str, version: str | None, index_url: str | None) -> str:
    """PyPI's release page, or the project's page on a configured index."""
    index = (index_url or "https://pypi.org/simple").rstrip("/")
    if index in PYPI_INDEXES and version:
        return messages.PYPI_RELEASE_URL.format(name=canonicalize_name(name), version=version)
    if index in PYPI_INDEXES:
        return f"https://pypi.org/project/{canonicalize_name(name)}/"
    return messages.INDEX_PROJECT_URL.format(index=index, name=canonicalize_name(name))
