"""The App's clients against a GitHub Enterprise Server style API (``.../api/v3``), and the
installation tokens git uses: cached, renewed before they expire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.github.client import TOKEN_MARGIN_S, USER_AGENT, AppCredentials, GitHubApp, GitHubError
from tests.support.fake_github import FakeGitHub, Installation

REPO = "acme/svc"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path_factory.mktemp("github")) as github:
        yield github


@pytest.fixture(scope="module")
def installation(fake: FakeGitHub) -> Installation:
    inst = fake.create_installation("acme")
    fake.create_repo(REPO, files={"README.md": "hello\n"}, installation=inst)
    return inst


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))


def minted(fake: FakeGitHub, installation: Installation) -> int:
    return len(fake.requests_to("POST", rf"^/api/v3/app/installations/{installation.id}/"))


def test_the_installation_token_is_cached(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    before = minted(fake, installation)

    first = app.installation_token(installation.id)
    second = app.installation_token(installation.id)

    assert first == second
    assert minted(fake, installation) == before + 1
    token = fake.valid_token(first)
    assert token is not None
    assert token.installation_id == installation.id
    [request] = fake.requests_to("POST", rf"/app/installations/{installation.id}/access_tokens$")[
        before:
    ]
    assert request.auth == "jwt"


def test_the_token_is_renewed_within_the_margin_of_its_expiry(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    before = minted(fake, installation)
    first = app.installation_token(installation.id)
    token = fake.valid_token(first)
    assert token is not None
    expires = token.expires_at

    kept = app.installation_token(installation.id, now=expires - TOKEN_MARGIN_S - 5)
    renewed = app.installation_token(installation.id, now=expires - TOKEN_MARGIN_S + 5)

    assert kept == first
    assert renewed != first
    assert fake.valid_token(renewed) is not None
    assert minted(fake, installation) == before + 2
    # the renewed token is cached in turn
    assert app.installation_token(installation.id) == renewed
    assert minted(fake, installation) == before + 2


def test_a_token_shorter_lived_than_the_margin_is_renewed_every_time(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    fake.token_lifetime_s = TOKEN_MARGIN_S / 2
    try:
        tokens = {app.installation_token(installation.id) for _ in range(3)}
    finally:
        fake.token_lifetime_s = 3600.0
    assert len(tokens) == 3


def test_tokens_are_per_installation_and_per_app(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    other = fake.create_installation("globex")
    mine = app.installation_token(installation.id)
    theirs = app.installation_token(other.id)
    assert mine != theirs
    # another GitHubApp does not share the first one's cache
    fresh = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    assert fresh.installation_token(installation.id) != mine


def test_an_unknown_installation_is_a_github_error(app: GitHubApp) -> None:
    with pytest.raises(GitHubError, match="could not get a token for installation 4242"):
        app.installation_token(4242)


def test_a_key_github_does_not_know_is_a_github_error(
    fake: FakeGitHub, installation: Installation
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    app = GitHubApp(AppCredentials(fake.app_id, pem, fake.api_url))

    with pytest.raises(GitHubError, match=f"installation {installation.id}"):
        app.installation_token(installation.id)

    [*_, rejected] = fake.requests_to("POST", r"/access_tokens$")
    assert (rejected.status, rejected.auth) == (401, "invalid")


def test_the_app_client_uses_the_configured_base_url(fake: FakeGitHub, app: GitHubApp) -> None:
    assert app.api_url == fake.api_url
    assert fake.api_url.endswith("/api/v3")
    before = len(fake.requests)

    client = app.app_client()
    data = client.rest.apps.get_authenticated().parsed_data

    assert data is not None
    assert data.id == fake.app_id
    [request] = fake.requests[before:]
    assert (request.method, request.path, request.auth) == ("GET", "/api/v3/app", "jwt")
    assert request.headers["user-agent"] == USER_AGENT


@pytest.mark.parametrize("suffix", ["", "/"], ids=["bare", "trailing-slash"])
def test_the_installation_client_uses_the_configured_base_url(
    fake: FakeGitHub, installation: Installation, suffix: str
) -> None:
    app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url + suffix))
    before = len(fake.requests)

    client = app.installation_client(installation.id)
    repo = client.rest.repos.get("acme", "svc").parsed_data

    assert repo.full_name == REPO
    requests = fake.requests[before:]
    assert [(r.method, r.path) for r in requests] == [
        ("POST", f"/api/v3/app/installations/{installation.id}/access_tokens"),
        ("GET", "/api/v3/repos/acme/svc"),
    ]
    assert requests[1].auth == f"installation:{installation.id}"


def test_credentials_default_to_github_com() -> None:
    credentials = AppCredentials(1, "key")
    assert credentials.api_url == "https://api.github.com"
    assert GitHubApp(credentials).api_url == "https://api.github.com"


def test_building_a_client_signs_and_sends_nothing() -> None:
    # Nothing is signed or sent until the first request: a bad key or host fails only then.
    app = GitHubApp(AppCredentials(1, "not a key", "http://127.0.0.1:9/api/v3"))
    assert app.app_client() is not None
    assert app.installation_client(2) is not None
