"""A command reply never renders what a commenter wrote: the App posts it under its own name,
so a quoted command line, a value echoed back (a requirement, a branch name) or an error must
form no mention, issue reference, link, image, HTML or block of its own on GitHub. Rendered
here with a CommonMark parser: whatever is outside code must hold none of it, and nothing
besides the reply happens (no push, no branch, no label)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from bot.commands.handlers import QUOTE_MAX_CHARS, addressee, quote_lines
from bot.report import escape
from tests.support.fake_github import FakeGitHub
from tests.support.github_app import Bot

REPO = "acme/app"
HOSTILE = {
    "mention": "/lockwarden pin @octocat",
    "team-mention": "/lockwarden explain @acme/security-team",
    "link": "/lockwarden explain [click me](https://evil.example/x)",
    "autolink": "/lockwarden explain https://evil.example www.evil.example <https://evil.example>",
    "image": "/lockwarden explain ![x](https://evil.example/track.png)",
    "html": "/lockwarden explain <img src=x onerror=alert(1)><details open><summary>hi",
    "backticks": "/lockwarden explain `` ` `@octocat` ``` end",
    "references": "/lockwarden explain #1 GH-2 acme/app#3 fixes #4",
    "fake-block": "/lockwarden help </code></blockquote><h1>Lockwarden says: approved</h1>",
    "bidi": "/lockwarden explain \u202enmupy",
}
LONG_LINE = "/lockwarden pin " + "@octocat #1 " * 900  # about 10 kB
# Tags a reply may render: its own quote, code, paragraphs, lists and tables; nothing else.
ALLOWED_TAGS = {
    "p",
    "blockquote",
    "code",
    "br",
    "ul",
    "li",
    "strong",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
LIVE = {
    "mention": re.compile(r"(?<![A-Za-z0-9])@[A-Za-z0-9]"),
    "reference": re.compile(r"(?i)(?<![A-Za-z0-9])(?:#|GH-)[0-9]|[A-Za-z0-9]/[A-Za-z0-9.-]+#[0-9]"),
    "url": re.compile(r"(?i)://|\bwww\."),
    "bidi": re.compile("[\u202a-\u202e\u2066-\u2069]"),
}
_MARKDOWN = MarkdownIt("commonmark").enable("table")


@pytest.fixture
def repo(fake: FakeGitHub) -> FakeGitHub:
    installation = fake.create_installation("acme")
    fake.create_repo(
        REPO,
        files={
            "requirements.in": "beta\n",
            ".github/lockwarden.yml": "environments:\n  - name: serve\n    spec: requirements.in\n",
        },
        installation=installation,
    )
    fake.set_permission(REPO, "alice", "write")
    fake.set_permission(REPO, "bob", "read")
    return fake


def _comment(fake: FakeGitHub, bot: Bot, number: int, body: str, user: str) -> int:
    payload = fake.payload(
        "issue_comment", "created", repo=REPO, number=number, body=body, user=user
    )
    bot.run_all(bot.deliver("issue_comment", payload))
    comment = payload["comment"]
    assert isinstance(comment, dict)
    return int(comment["id"])


def _replies(fake: FakeGitHub, number: int) -> list[str]:
    return [c.body for c in fake.comments(REPO, number) if c.user == fake.bot_login]


def _state(fake: FakeGitHub, number: int) -> object:
    """Everything a command could change besides its reply."""
    repo = fake.repo(REPO)
    return (
        len(fake.pushes),
        fake.branches(REPO),
        sorted(repo.labels),
        list(fake.issue_or_pull(repo, number).labels),
        [p.number for p in fake.pulls(REPO)],
    )


def _assert_inert(reply: str, author: str | None) -> None:
    """``reply`` renders only its own structure; outside code no mention (but the author's),
    reference, URL or bidi control is left."""
    rendered = _MARKDOWN.render(reply)
    tags = set(re.findall(r"</?([A-Za-z][A-Za-z0-9]*)", rendered))
    assert tags <= ALLOWED_TAGS, (tags - ALLOWED_TAGS, reply)
    outside = re.sub(r"<code>.*?</code>", " ", rendered, flags=re.DOTALL)
    visible = html.unescape(re.sub(r"<[^>]*>", " ", outside))
    if author is not None:  # the one mention a reply makes on purpose
        assert visible.count(f"@{author} ") == 1, reply
        visible = visible.replace(f"@{author} ", "")
    assert "@" not in visible, reply
    for name, pattern in LIVE.items():
        assert pattern.search(visible) is None, (name, visible)
    assert LIVE["bidi"].search(reply) is None
    # The quote is the reply's only block quote, and each of its lines is one code span.
    quote = reply.split("\n\n", 1)[0]
    for line in quote.splitlines():
        (span,) = escape._code_spans(line)
        assert line == f"> {span.group()}", line
    assert rendered.count("<blockquote>") == 1


def _pull(fake: FakeGitHub, branch: str) -> int:
    fake.create_branch(REPO, branch)
    fake.push_files(REPO, {"app.py": "print(1)\n"}, branch=branch)
    return fake.open_pull(REPO, head=branch, title="A feature").number


@pytest.mark.parametrize("line", [*HOSTILE.values(), LONG_LINE], ids=[*HOSTILE, "10kB"])
def test_a_quoted_command_line_renders_nothing(line: str) -> None:
    quoted = quote_lines([line])
    assert quoted.startswith("> `")
    assert "\n" not in quoted
    assert len(quoted) <= QUOTE_MAX_CHARS + 20
    _assert_inert(f"{quoted}\n\n@alice ok", "alice")


def test_only_a_github_login_is_mentioned() -> None:
    assert addressee("octo-cat") == "@octo-cat"
    for login in ("x [y](https://evil.example)", "a@b", "-x", "x--y", "a" * 40, "x`y"):
        _assert_inert(f"> `/lockwarden help`\n\n{addressee(login)} ok", None)
    # A comment refused as a whole quotes no line of it.
    assert quote_lines([]) == "> (the whole comment)"


def test_a_refused_commenter_gets_an_inert_reply_and_nothing_else(
    repo: FakeGitHub, tmp_path: Path
) -> None:
    number = _pull(repo, "feature")
    bot = Bot(repo, tmp_path / "cache")
    before = _state(repo, number)
    lines = [*list(HOSTILE.values())[:9], LONG_LINE]
    comment = _comment(repo, bot, number, "\n".join(lines), "bob")
    (reply,) = _replies(repo, number)
    assert "Nothing was run" in reply
    assert "(yours: read)" in reply
    _assert_inert(reply, "bob")
    assert len(reply) < 10 * (QUOTE_MAX_CHARS + 20) + 500
    assert reply.count("\n> ") == 9  # one quoted line per command line
    assert _state(repo, number) == before
    assert repo.repo(REPO).comments[comment].reactions == []


@pytest.mark.parametrize("name", [*HOSTILE, "10kB"])
def test_an_invalid_hostile_command_gets_an_inert_reply_and_nothing_else(
    repo: FakeGitHub, tmp_path: Path, name: str
) -> None:
    number = _pull(repo, "feature")
    bot = Bot(repo, tmp_path / "cache")
    before = _state(repo, number)
    line = HOSTILE.get(name, LONG_LINE)
    # a valid command after it: it is not run, and its reply is inert too
    comment = _comment(repo, bot, number, f"{line}\n/lockwarden help", "alice")
    replies = _replies(repo, number)
    assert replies, "every command line is answered"
    for reply in replies:
        _assert_inert(reply, "alice")
        assert "Lockwarden commands" not in reply  # help did not run
    assert any("not run" in reply for reply in replies)
    assert _state(repo, number) == before
    reactions = [r.content for r in repo.repo(REPO).comments[comment].reactions]
    assert reactions == ["confused"]


def test_a_hostile_branch_name_is_echoed_inertly(repo: FakeGitHub, tmp_path: Path) -> None:
    branch = "evil`@octocat`#1<img>www.evil.example`"
    number = _pull(repo, branch)
    bot = Bot(repo, tmp_path / "cache")
    before = _state(repo, number)
    comment = _comment(repo, bot, number, "/lockwarden pin beta==1.0", "alice")
    (reply,) = _replies(repo, number)
    assert "is not Lockwarden's" in reply
    assert f"`` {branch} ``" in reply  # quoted whole, in a fence longer than its backticks
    _assert_inert(reply, "alice")
    assert _state(repo, number) == before
    reactions = [r.content for r in repo.repo(REPO).comments[comment].reactions]
    assert reactions == ["eyes", "confused"]


# A Poetry environment: its pins must be exact, so a range is refused with the requirement.
PYPROJECT = '[tool.poetry]\nname = "app"\npackage-mode = false\n\n[tool.poetry.dependencies]\n'


def test_a_hostile_requirement_is_echoed_inertly(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.create_repo(
        REPO,
        files={
            "pyproject.toml": PYPROJECT,
            ".github/lockwarden.yml": (
                "environments:\n  - name: serve\n    backend: poetry\n    spec: pyproject.toml\n"
            ),
        },
        installation=fake.create_installation("acme"),
    )
    fake.set_permission(REPO, "alice", "write")
    number = fake.create_issue(REPO, "Pins").number
    bot = Bot(fake, tmp_path / "cache")
    before = _state(fake, number)
    # A marker's string may hold any text but a quote: backticks, mentions, references.
    command = "/lockwarden pin \"beta>=1; os_name == '` @octocat GH-2 <img> `'\" --env serve"
    comment = _comment(fake, bot, number, command, "alice")
    (reply,) = _replies(fake, number)
    assert "takes exact pins only" in reply
    assert '`` beta>=1; os_name == "` @octocat GH-2 <img> `" ``: a poetry' in reply
    _assert_inert(reply, "alice")
    assert _state(fake, number) == before
    reactions = [r.content for r in fake.repo(REPO).comments[comment].reactions]
    assert reactions == ["eyes", "confused"]
