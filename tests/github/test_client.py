"""The App's clients against a GitHub Enterprise Server style API (``.../api/v3``), and the
installation tokens jobs use: narrowed to one repository and a job's permissions, cached per
scope, renewed before they expire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.exception import RequestFailed

from bot.github.client import (
    TOKEN_MARGIN_S,
    USER_AGENT,
    AppCredentials,
    GitHubApp,
    GitHubError,
    TokenScope,
    installation_id_for,
    split_full_name,
)
from bot.github.scopes import (
    CHECK_RUN_ONLY,
    CLEANUP,
    INSTALLATION_LISTING,
    ONBOARDING_PULL_REQUEST,
    PUBLISH_PULL_REQUEST,
)
from tests.support.fake_github import FakeGitHub, Installation
from tests.support.fake_github._server import all_closed

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


def scope(installation: Installation | int, repo: str | None = REPO) -> TokenScope:
    inst = installation if isinstance(installation, int) else installation.id
    return TokenScope(inst, repo, PUBLISH_PULL_REQUEST)


def minted(fake: FakeGitHub, installation: Installation) -> int:
    return len(fake.requests_to("POST", rf"^/api/v3/app/installations/{installation.id}/"))


def test_the_installation_token_is_cached(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    before = minted(fake, installation)

    first = app.installation_token(scope(installation))
    second = app.installation_token(scope(installation))

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
    first = app.installation_token(scope(installation))
    token = fake.valid_token(first)
    assert token is not None
    expires = token.expires_at

    kept = app.installation_token(scope(installation), now=expires - TOKEN_MARGIN_S - 5)
    renewed = app.installation_token(scope(installation), now=expires - TOKEN_MARGIN_S + 5)

    assert kept == first
    assert renewed != first
    assert fake.valid_token(renewed) is not None
    assert minted(fake, installation) == before + 2
    # the renewed token is cached in turn
    assert app.installation_token(scope(installation)) == renewed
    assert minted(fake, installation) == before + 2


def test_a_token_shorter_lived_than_the_margin_is_renewed_every_time(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    fake.token_lifetime_s = TOKEN_MARGIN_S / 2
    try:
        tokens = {app.installation_token(scope(installation)) for _ in range(3)}
    finally:
        fake.token_lifetime_s = 3600.0
    assert len(tokens) == 3


def test_tokens_are_per_installation_and_per_app(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    other = fake.create_installation("globex")
    fake.create_repo("globex/svc", files={"README.md": "hi\n"}, installation=other)
    mine = app.installation_token(scope(installation))
    theirs = app.installation_token(scope(other, "globex/svc"))
    assert mine != theirs
    # another GitHubApp does not share the first one's cache
    fresh = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    assert fresh.installation_token(scope(installation)) != mine


def test_an_unknown_installation_is_a_github_error(app: GitHubApp) -> None:
    with pytest.raises(GitHubError, match="could not get a token for installation 4242"):
        app.installation_token(scope(4242))


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
        app.installation_token(scope(installation))

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

    client = app.installation_client(scope(installation))
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
    assert app.installation_client(scope(2)) is not None


# -- narrowing -------------------------------------------------------------------------------


def test_a_token_is_asked_for_one_repository_and_the_scopes_permissions(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    before = len(fake.requests_to("POST", r"/access_tokens$"))

    value = app.installation_token(scope(installation))

    [request] = fake.requests_to("POST", r"/access_tokens$")[before:]
    assert request.json() == {
        "repositories": ["svc"],
        "permissions": {
            "checks": "write",
            "contents": "write",
            "metadata": "read",
            "pull_requests": "write",
        },
    }
    token = fake.valid_token(value)
    assert token is not None
    assert token.repositories == [REPO]
    assert token.permissions == PUBLISH_PULL_REQUEST.as_dict()


def test_the_cache_keys_on_installation_repository_and_permissions(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    fake.create_repo("acme/other", files={"README.md": "x\n"}, installation=installation)
    before = len(fake.requests_to("POST", r"/access_tokens$"))

    publish = app.installation_token(scope(installation))
    other_repo = app.installation_token(scope(installation, "acme/other"))
    checks_only = app.installation_token(TokenScope(installation.id, REPO, CHECK_RUN_ONLY))
    # the same scope spelled with another case, and the same grants under another name
    again = app.installation_token(scope(installation, "ACME/SVC"))
    cleanup = app.installation_token(TokenScope(installation.id, REPO, CLEANUP))
    onboarding = app.installation_token(TokenScope(installation.id, REPO, ONBOARDING_PULL_REQUEST))

    assert len({publish, other_repo, checks_only, cleanup}) == 4
    assert again == publish
    assert onboarding == cleanup  # identical permissions: one token
    assert len(fake.requests_to("POST", r"/access_tokens$")) == before + 4


def test_a_job_client_and_git_share_the_scopes_token(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    value = app.installation_token(scope(installation))
    before = len(fake.requests)

    client = app.installation_client(scope(installation))
    client.rest.repos.get("acme", "svc")

    # no second token: the client took the one git already holds
    assert [(r.method, r.path) for r in fake.requests[before:]] == [
        ("GET", "/api/v3/repos/acme/svc")
    ]
    assert fake.valid_token(value) is not None


def test_an_installation_wide_scope_asks_for_no_repository_and_metadata_only(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    before = len(fake.requests_to("POST", r"/access_tokens$"))
    client = app.installation_client(TokenScope(installation.id, None, INSTALLATION_LISTING))

    listed = client.rest.apps.list_repos_accessible_to_installation().parsed_data

    assert REPO in {r.full_name for r in listed.repositories}
    [request] = fake.requests_to("POST", r"/access_tokens$")[before:]
    assert request.json() == {"permissions": {"metadata": "read"}}
    # and that token reads metadata, nothing more
    assert client.rest.repos.get("acme", "svc").status_code == 200
    with pytest.raises(RequestFailed) as refused:
        client.rest.repos.get_commit("acme", "svc", "main")
    assert refused.value.response.status_code == 403


def test_a_repository_outside_the_installation_is_refused_with_githubs_message(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    other = fake.create_installation("initech")
    fake.create_repo("initech/secret", files={"a": "a"}, installation=other)

    with pytest.raises(GitHubError) as refused:
        # the name of another account's repository: the installation does not cover it
        app.installation_token(scope(installation, "acme/secret"))

    assert "There is at least one repository that does not exist or is not accessible" in str(
        refused.value
    )
    assert "add the repository to the installation" in str(refused.value)
    assert fake.requests_to("POST", r"/access_tokens$")[-1].status == 422


def test_permissions_beyond_the_installations_grant_are_refused_with_githubs_message(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    narrow = fake.create_installation("umbrella", permissions={"metadata": "read"})
    fake.create_repo("umbrella/svc", files={"a": "a"}, installation=narrow)

    with pytest.raises(GitHubError) as refused:
        app.installation_token(scope(narrow, "umbrella/svc"))

    message = str(refused.value)
    assert "The permissions requested are not granted to this installation." in message
    assert "accept the App's requested permissions" in message
    assert not [t for t in fake.tokens.values() if t.installation_id == narrow.id]


@pytest.mark.parametrize("name", ["svc", "acme/", "/svc", "acme/svc/extra", ""])
def test_split_full_name_rejects_what_is_not_owner_slash_name(name: str) -> None:
    with pytest.raises(GitHubError, match="is not OWNER/NAME"):
        split_full_name(name)


def test_split_full_name() -> None:
    assert split_full_name("acme/svc") == ("acme", "svc")


def test_a_malformed_repository_name_never_reaches_github(app: GitHubApp) -> None:
    with pytest.raises(GitHubError, match="is not OWNER/NAME"):
        app.installation_token(scope(1, "no-owner"))


@pytest.mark.parametrize(
    ("granted", "why"),
    [
        pytest.param(
            {"permissions": {"contents": "write", "administration": "write"}},
            "more than was asked",
            id="wider-permissions",
        ),
        pytest.param(
            {"permissions": {"contents": "write"}, "repository_selection": "all"},
            "not just the job's repository",
            id="every-repository",
        ),
    ],
)
def test_a_token_wider_than_asked_is_not_used(
    fake: FakeGitHub,
    installation: Installation,
    granted: dict[str, object],
    why: str,
) -> None:
    # A GitHub that ignored the narrowing: the answer is checked, the token thrown away.
    app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    fake.fail_next(
        "POST",
        r"/access_tokens$",
        status=201,
        body={"token": "ghs_wide", "expires_at": "2099-01-01T00:00:00Z", **granted},
    )

    with pytest.raises(GitHubError, match=why):
        app.installation_token(scope(installation))
    # and the next request asks GitHub again rather than use a cached wide token
    assert fake.valid_token(app.installation_token(scope(installation))) is not None


# -- connections -----------------------------------------------------------------------------


def test_a_pooled_client_sends_every_request_on_one_connection_closed_with_the_pool(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    app.installation_token(scope(installation))  # made first: tokens have a connection of their own
    seen = len(fake.connections())

    with app.pool() as pool:
        gh = pool.installation(scope(installation))
        for _ in range(5):
            gh.rest.repos.get("acme", "svc")
        again = pool.installation(scope(installation))
        again.rest.repos.get("acme", "svc")
        [connection] = fake.connections()[seen:]
        assert connection.open

    assert again is gh
    assert connection.requests == ["GET /api/v3/repos/acme/svc"] * 6
    assert all_closed([connection])


def test_without_a_pool_each_request_opens_a_connection(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    app.installation_token(scope(installation))
    seen = len(fake.connections())
    gh = app.installation_client(scope(installation))

    for _ in range(3):
        gh.rest.repos.get("acme", "svc")

    opened = fake.connections()[seen:]
    assert [c.requests for c in opened] == [["GET /api/v3/repos/acme/svc"]] * 3
    assert all_closed(opened)


def test_a_pool_keeps_one_connection_per_scope_and_one_for_the_app(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    narrow = TokenScope(installation.id, REPO, CHECK_RUN_ONLY)
    for each in (scope(installation), narrow):
        app.installation_token(each)
    seen = len(fake.connections())

    with app.pool() as pool:
        for _ in range(2):
            pool.installation(scope(installation)).rest.repos.get("acme", "svc")
            pool.installation(narrow).rest.repos.get("acme", "svc")
            pool.app().rest.apps.get_authenticated()

    opened = fake.connections()[seen:]
    assert sorted(c.requests for c in opened) == [
        ["GET /api/v3/app"] * 2,
        ["GET /api/v3/repos/acme/svc"] * 2,
        ["GET /api/v3/repos/acme/svc"] * 2,
    ]
    assert all_closed(opened)


def test_a_pool_closes_its_connections_when_the_work_fails(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    app.installation_token(scope(installation))
    seen = len(fake.connections())

    def work() -> None:
        with app.pool() as pool:
            gh = pool.installation(scope(installation))
            gh.rest.repos.get("acme", "svc")
            gh.rest.repos.get("acme", "no-such-repo")  # 404: the work stops here

    with pytest.raises(RequestFailed):
        work()

    [connection] = fake.connections()[seen:]
    assert len(connection.requests) == 2
    assert all_closed([connection])


def test_tokens_of_many_scopes_are_made_on_one_connection(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    scopes = [TokenScope(installation.id, REPO, a) for a in (PUBLISH_PULL_REQUEST, CHECK_RUN_ONLY)]
    scopes.append(TokenScope(installation.id, None, INSTALLATION_LISTING))
    seen = len(fake.connections())

    for each in scopes:
        app.installation_token(each)

    [connection] = fake.connections()[seen:]
    path = f"POST /api/v3/app/installations/{installation.id}/access_tokens"
    assert connection.requests == [path] * 3
    app.close()
    assert all_closed([connection])


def test_the_installation_lookup_closes_its_connection(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    seen = len(fake.connections())

    assert installation_id_for(app, REPO) == installation.id

    [connection] = fake.connections()[seen:]
    assert connection.requests == ["GET /api/v3/repos/acme/svc/installation"]
    assert all_closed([connection])
