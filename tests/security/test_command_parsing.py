"""Slash commands are read only where GitHub shows them as the start of a line of a
top-level paragraph (CommonMark): never from code, HTML, comments, quotes or other line
breaks than ``\\n``, ``\\r\\n`` and ``\\r``."""

from __future__ import annotations

import pytest

from bot.commands.grammar import command_lines, parse_comment

SLUG = "lockwarden-bot"
EVIL = "/lockwarden pin evil==6.6.6"

HIDDEN = {
    "backtick-fence-closed-by-tildes": f"```\n~~~\n{EVIL}\n```",
    "tilde-fence-closed-by-backticks": f"~~~\n```\n{EVIL}\n~~~",
    "four-backticks-around-three": f"````\n```\n{EVIL}\n```\n````",
    "unclosed-fence": f"/lockwarden help\n```\n{EVIL}",
    "short-closer": f"`````\n{EVIL}\n```\n{EVIL}\n`````",
    "indented-fence": f"   ```\n{EVIL}",
    "fence-in-list-item": f"- ```\n  {EVIL}\n  ```",
    "indented-after-blank": f"Hello\n\n    {EVIL}",
    "indented-at-start": f"    {EVIL}",
    "tab-indented": f"\t{EVIL}",
    "html-comment": f"<!-- {EVIL} -->",
    "multi-line-html-comment": f"<!--\n{EVIL}\n-->",
    "comment-inside-paragraph": f"Thanks <!--\n{EVIL}\n-->",
    "html-block": f"<div>\n{EVIL}\n</div>",
    "details": f"<details>\n{EVIL}\n</details>",
    "u2028": f"Thanks\u2028{EVIL}",
    "u2029": f"Thanks\u2029{EVIL}",
    "nel": f"Thanks\x85{EVIL}",
    "form-feed": f"Thanks\f{EVIL}",
    "vertical-tab": f"Thanks\v{EVIL}",
    "file-separator": f"Thanks\x1c{EVIL}",
    "leading-u2028": f"\u2028{EVIL}",
    "quote": f"> {EVIL}",
    "lazy-quote": f"> quoted\n{EVIL}",
    "list-item": f"- {EVIL}",
    "setext-heading": f"{EVIL}\n---",
    "code-span": f"`start\n{EVIL}` end",
    "link-title": f'[x](https://example.com "\n{EVIL}\n")',
    "link-definition": f"[x]: https://example.com '\n{EVIL}\n'",
    "html-attribute": f'<span title="\n{EVIL}\n">x</span>',
    "table-row": f"| a |\n| - |\n{EVIL}",
}


@pytest.mark.parametrize("body", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_commands_are_not_read(body: str) -> None:
    assert EVIL not in command_lines(body, SLUG)
    assert all("evil" not in line.text for line in parse_comment(body, SLUG).lines)


VISIBLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "plain": (EVIL, (EVIL,)),
    "crlf": (f"Thanks\r\n{EVIL}\r\n", (EVIL,)),
    "cr": (f"Thanks\r{EVIL}\r/lockwarden help", (EVIL, "/lockwarden help")),
    "three-spaces": (f"   {EVIL}", (EVIL,)),
    "continuation-indented": (f"Thanks\n      {EVIL}", (EVIL,)),
    "after-closed-fence": (f"```\n~~~\n```\n{EVIL}", (EVIL,)),
    "after-comment": (f"<!-- x -->\n{EVIL}", (EVIL,)),
    "after-fence-in-list": (f"- ```\n{EVIL}", (EVIL,)),
    "after-quote": (f"> quoted\n\n{EVIL}", (EVIL,)),
    "slug": ("@LockWarden-Bot help", ("@LockWarden-Bot help",)),
    "closed-code-span": (f"`a` b\n{EVIL}", (EVIL,)),
    "unclosed-comment": (f"a <!-- b\n{EVIL}", (EVIL,)),
}


@pytest.mark.parametrize(("body", "expected"), VISIBLE.values(), ids=VISIBLE.keys())
def test_visible_commands_are_read(body: str, expected: tuple[str, ...]) -> None:
    assert command_lines(body, SLUG) == expected


def test_a_pathological_comment_is_scanned_wholly() -> None:
    noise = "x " + "<!--" * 2000 + "<?" * 2000 + "](" * 2000 + "``` a " * 501
    assert command_lines(f"{noise}\n{EVIL}\nend ```", SLUG) == ()  # inside a code span
    assert command_lines(f"{noise}\n{EVIL}", SLUG) == (EVIL,)  # nothing closes: all text
