"""The environment of a sandboxed process: an allow-list, never the bot's own environment.

Only names a tool needs to behave (locale, Python's UTF-8 mode, the tools' own settings that
the backends set) pass; anything that looks like a credential is dropped even when its name
would pass, so no ``LOCKWARDEN_*`` setting, token, database URL or cloud key is ever seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

# Where TLS clients find the CA certificates the operator trusts (a company's proxy CA):
# paths, never secrets. The sandbox shows each file read-only.
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_ALLOWED = re.compile(
    r"^(PATH|HOME|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|SOURCE_DATE_EPOCH|PYTHONUTF8|PYTHONHASHSEED|"
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
    """What a tool may take from the host's environment: search path, home, locale and the
    CA certificates to trust (a sandboxed process gets a home of its own instead)."""
    return {
        name: value
        for name, value in env.items()
        if name in ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", *CA_VARIABLES)
        or name.startswith("LC_")
    }


def ca_paths(env: Mapping[str, str]) -> list[Path]:
    """The CA certificate files and directories ``env`` names (also ``PIP_CERT``), for the
    sandbox to show read-only."""
    names = (*CA_VARIABLES, "PIP_CERT")
    return [Path(env[name]) for name in names if env.get(name, "").startswith("/")]
