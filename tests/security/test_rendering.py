"""Repository and index text rendered into a pull request body stays inert: no live mention,
issue reference, closing keyword, HTML or table break survives outside code."""

from __future__ import annotations

import re

import pytest

from bot.locks.diff import PackageChange
from bot.report import escape
from bot.report.pull_request import Rollback, pr_body
from tests.report.test_markdown import changed, failed, run_result

HOSTILE = "x`@octocat #12 GH-7 acme/app#3 fixes #3 <img src=x onerror=alert(1)> | **b** [l](u)"
ROLLBACK = Rollback("main", "a" * 40, "b" * 40)

LIVE = (
    re.compile(r"@[A-Za-z0-9]"),
    re.compile(r"#[0-9]"),
    re.compile(r"GH-[0-9]", re.IGNORECASE),
    re.compile(r"<img", re.IGNORECASE),
)


def _outside_code(markdown: str) -> str:
    """``markdown`` without fenced code blocks and code spans (where GitHub forms nothing)."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        opener = re.match(r"(`{3,}|~{3,})", line)
        if fence is None and opener:
            fence = opener.group(1)
            continue
        if fence is not None:
            if line.startswith(fence[0] * len(fence)) and not line.strip(fence[0]):
                fence = None
            continue
        kept, position = [], 0
        for span in escape._code_spans(line):
            kept.append(line[position : span.start()])
            position = span.end()
        out.append("".join(kept) + line[position:])
    assert fence is None, "a fence was left open"
    return "\n".join(out)


def _assert_inert(markdown: str) -> None:
    visible = _outside_code(markdown)
    for pattern in LIVE:
        assert pattern.search(visible) is None, (pattern.pattern, visible)
    assert re.search(r"(?i)\b(fix|fixes|close[sd]?|resolve[sd]?)\s+#[0-9]", visible) is None


def _hostile_result() -> str:
    change = PackageChange(
        "numpy", "1.0`@octocat", "2.0 #12", "upgraded", "major", direct=True, marker=HOSTILE
    )
    results = (
        changed("serve", change, notes=(HOSTILE,)),
        failed("train", HOSTILE, tool_output="```\n@octocat fixes #3\n````\n~~~"),
    )
    return pr_body(run_result(*results), ROLLBACK)


def test_an_old_version_with_a_backtick_does_not_mention_anyone() -> None:
    body = _hostile_result()
    assert "`` 1.0`@octocat ``" in body
    _assert_inert(body)


def test_every_hostile_value_in_a_pr_body_is_inert() -> None:
    body = _hostile_result()
    _assert_inert(body)
    # Tables keep their columns: the change row has its six cells.
    row = next(line for line in body.splitlines() if line.startswith("| [numpy]"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 7
    # The tool output is quoted whole, in a fence longer than any backtick run in it.
    assert "\n`````text\n```\n@octocat fixes #3\n````\n~~~\n`````\n" in body


@pytest.mark.parametrize(
    "value", [HOSTILE, "@octocat", "#1", "fixes #1", "<!-- x -->", "a|b", "`", "```", "\\`"]
)
def test_text_and_html_are_inert(value: str) -> None:
    for rendered in (escape.text(value), escape.html(value)):
        visible = _outside_code(rendered) if rendered is not escape.html(value) else rendered
        for pattern in LIVE:
            assert pattern.search(visible) is None
        assert "<" not in rendered
        assert "\n" not in rendered


@pytest.mark.parametrize("value", ["1.0`@octocat", "``", "a ``` b", "|", "` x `", "@a\nb"])
def test_a_code_span_cannot_be_broken(value: str) -> None:
    span = escape.code(value, table=True)
    (found,) = escape._code_spans(span)
    assert found.group() == span
    assert "|" not in span.replace("\\|", "")


def test_ordinary_values_are_unchanged() -> None:
    for value in ("numpy", "typing_extensions", "1.26.4", "2.0.0rc1", "1!2.0+cpu", "torch-cuda"):
        assert escape.text(value) == value
        assert escape.code(value) == f"`{value}`"


def test_links_to_the_index_stay_links() -> None:
    change = PackageChange("numpy", "1.0", "2.0) [x](http://evil", "upgraded", None, True)
    body = pr_body(run_result(changed("serve", change)), ROLLBACK)
    assert "(https://pypi.org/project/numpy/2.0%29%20%5Bx%5D%28http%3A%2F%2Fevil/)" in body
