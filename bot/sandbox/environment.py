"""The environment of a sandboxed process: an allow-list, never the bot's own environment.

Only names a tool needs to behave (locale, Python's UTF-8 mode, the tools' own settings that
the backends set) pass; anything that looks like a credential is dropped even when its name
would pass, so no ``LOCKWARDEN_*`` setting, token, database URL or cloud key is ever seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ALLOWED = re.compile(
    r"^(PATH|HOME|LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|SOURCE_DATE_EPOCH|PYTHONUTF8|PYTHONHASHSEED|"
    r"PYTHONDONTWRITEBYTECODE|CUSTOM_COMPILE_COMMAND|PYTHON_KEYRING_BACKEND|"
    r"PIP_[A-Z0-9_]+|UV_[A-Z0-9_]+|POETRY_[A-Z0-9_]+|VIRTUAL_ENV)$"
)
_SECRET_LOOKING = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|_KEY|KEYRING_PROVIDER|HTTP_BASIC|"
    r"AUTH|CLIENT_CERT|DATABASE)",
)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_LOCALE = {"LANG": "C.UTF-8", "PYTHONUTF8": "1"}


def sandbox_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` reduced to the allow-list, with a locale and a PATH of system directories
    when none is given."""
    out = dict(_LOCALE)
    for name, value in env.items():
        if _ALLOWED.match(name) and not _SECRET_LOOKING.search(name):
            out[name] = value
    out.setdefault("PATH", DEFAULT_PATH)
    return out


def host_basics(env: Mapping[str, str]) -> dict[str, str]:
    """What a tool may take from the host's environment: search path, home and locale (a
    sandboxed process gets a home of its own instead)."""
    return {
        name: value
        for name, value in env.items()
        if name in ("PATH", "HOME", "LANG", "LANGUAGE", "TZ") or name.startswith("LC_")
    }
