"""The GitHub App's credentials from LOCKWARDEN_* settings: every missing or malformed value
stops start-up with the variable's name, and `lockwarden serve` exits 2 saying so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from bot.cli import main
from bot.settings import Settings, SettingsError, app_credentials


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("LOCKWARDEN_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def test_key_from_pem_text(pem: str) -> None:
    credentials = app_credentials(Settings(app_id=7, private_key=SecretStr(pem)))
    assert (credentials.app_id, credentials.private_key) == (7, pem)
    assert credentials.api_url == "https://api.github.com"


def test_key_from_pem_text_with_escaped_newlines(pem: str) -> None:
    # What an env file or a secret store often holds: one line with literal "\n"s.
    one_line = pem.replace("\n", "\\n")
    assert "\n" not in one_line

    credentials = app_credentials(Settings(app_id=7, private_key=SecretStr(one_line)))

    assert credentials.private_key == pem


def test_key_from_the_environment(pem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKWARDEN_APP_ID", "12")
    monkeypatch.setenv("LOCKWARDEN_PRIVATE_KEY", pem.replace("\n", "\\n"))
    monkeypatch.setenv("LOCKWARDEN_GITHUB_API_URL", "https://ghe.example.com/api/v3")

    credentials = app_credentials(Settings())

    assert (credentials.app_id, credentials.private_key) == (12, pem)
    assert credentials.api_url == "https://ghe.example.com/api/v3"


def test_key_from_a_file(pem: str, tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(pem, "utf-8")

    credentials = app_credentials(
        Settings(app_id=7, private_key_path=path, github_api_url="http://127.0.0.1:8080/api/v3")
    )

    assert credentials.private_key == pem
    assert credentials.api_url == "http://127.0.0.1:8080/api/v3"


def test_key_text_wins_over_a_key_file(pem: str, tmp_path: Path) -> None:
    settings = Settings(
        app_id=7, private_key=SecretStr(pem), private_key_path=tmp_path / "missing.pem"
    )
    assert app_credentials(settings).private_key == pem


def test_missing_app_id_names_the_variable(pem: str) -> None:
    with pytest.raises(SettingsError, match="LOCKWARDEN_APP_ID is not set"):
        app_credentials(Settings(private_key=SecretStr(pem)))


def test_missing_key_names_both_variables() -> None:
    with pytest.raises(SettingsError) as caught:
        app_credentials(Settings(app_id=7))
    assert "LOCKWARDEN_PRIVATE_KEY " in str(caught.value)
    assert "LOCKWARDEN_PRIVATE_KEY_PATH" in str(caught.value)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_key_file_names_the_variable_and_the_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.pem"
    if kind == "directory":
        path.mkdir()

    with pytest.raises(SettingsError) as caught:
        app_credentials(Settings(app_id=7, private_key_path=path))

    message = str(caught.value)
    assert message.startswith(f"LOCKWARDEN_PRIVATE_KEY_PATH: cannot read {path}: ")
    assert ("No such file" if kind == "missing" else "directory") in message


def _ec_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        .decode()
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key", id="garbage"),
        pytest.param(
            "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
            id="bad-body",
        ),
        pytest.param(_ec_pem(), id="encrypted"),
    ],
)
def test_malformed_key_text_names_the_variables(text: str) -> None:
    with pytest.raises(SettingsError, match="not a valid unencrypted PEM private key") as caught:
        app_credentials(Settings(app_id=7, private_key=SecretStr(text)))
    assert "LOCKWARDEN_PRIVATE_KEY" in str(caught.value)


def test_malformed_key_file_names_the_variables(tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", "utf-8")
    with pytest.raises(SettingsError, match="LOCKWARDEN_PRIVATE_KEY_PATH"):
        app_credentials(Settings(app_id=7, private_key_path=path))


@pytest.mark.parametrize(
    "url", ["api.github.com", "ftp://ghe.example.com/api/v3", "git@github.com:acme/svc"]
)
def test_a_non_http_api_url_names_the_variable(pem: str, url: str) -> None:
    settings = Settings(app_id=7, private_key=SecretStr(pem), github_api_url=url)
    with pytest.raises(SettingsError, match="LOCKWARDEN_GITHUB_API_URL") as caught:
        app_credentials(settings)
    assert repr(url) in str(caught.value)


# -- lockwarden serve ------------------------------------------------------------------------


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail instead of listening, should start-up ever get that far."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.usefixtures("no_server")
def test_serve_without_an_app_id_exits_2_naming_the_variable() -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "1"])

    assert result.exit_code == 2
    assert "error: LOCKWARDEN_APP_ID is not set" in result.output


@pytest.mark.usefixtures("no_server")
def test_serve_without_a_key_exits_2_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKWARDEN_APP_ID", "7")

    result = CliRunner().invoke(main, ["serve", "--port", "1"])

    assert result.exit_code == 2
    assert "error: no App private key" in result.output
    assert "LOCKWARDEN_PRIVATE_KEY_PATH" in result.output


@pytest.mark.usefixtures("no_server")
def test_serve_with_a_malformed_app_id_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCKWARDEN_APP_ID", "not-a-number")

    result = CliRunner().invoke(main, ["serve", "--port", "1"])

    assert result.exit_code == 2
    assert "error: invalid settings: LOCKWARDEN_APP_ID" in result.output
