"""Text from a repository or an index, made inert for GitHub Markdown.

Anything read from a repository (paths, lock contents, tool output, error messages) or from
a package index (names, versions) may carry Markdown, HTML, ``@mentions``, issue references
(``#12``, ``GH-12``, ``owner/repo#12``) or closing keywords (``fixes #3``). GitHub acts on
those in a pull request body or a comment: it notifies people, links and even closes issues.
Every such value goes through one of these functions before it reaches Markdown:

- ``code``: an inline code span no backtick inside can end (CommonMark 6.1);
- ``text``: plain text with Markdown markers backslash-escaped;
- ``html``: text inside an HTML element (``<summary>``), entity-escaped;
- ``fenced``: a fenced code block no line inside can close;
- ``quote``: what someone wrote (a command line), shown as a code span, cut to a length.

``text`` and ``html`` also put a WORD JOINER (U+2060, invisible) after ``@``, after ``#`` or
``GH-`` before a number and inside ``://``, so that no mention, reference or link is formed.
Inside code GitHub forms none of them. Ordinary package names and versions come out as they
went in.
"""

from __future__ import annotations

import html as html_lib
import re

WORD_JOINER = "\u2060"

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# Backslash-escaped wherever they occur: each can open or close markup (`&` an entity, which
# could spell an `@`). Angle brackets become entities, as the reports always wrote them.
_MARKERS = re.compile(r"([\\`*\[\]|~&])")
# `_` only at a word's edge: inside a word (typing_extensions) it never makes emphasis.
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# A leading character that would start a block (heading, list, quote, thematic break).
_BLOCK_START = re.compile(r"^(?:[#+=-](?=[\s#+=-]|$)|[0-9]{1,9}(?=[.)](?:\s|$)))")
_BACKTICKS = re.compile(r"`+")
_MENTION = re.compile(r"@(?=[A-Za-z0-9_])")
_REFERENCE = re.compile(r"(#|\bGH-)(?=[0-9])", re.IGNORECASE)
_SCHEME = re.compile(r"(?<=[A-Za-z]):(?=//)")
_WWW = re.compile(r"\b(www)(?=\.)", re.IGNORECASE)
# Invisible characters that reorder or hide text (bidi controls, zero widths): in a quote of
# what someone wrote they are shown as escapes, so the quote reads as the bytes it holds.
_INVISIBLE = re.compile(
    "[\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufeff\ufff9-\ufffb]"
)


def defang(value: str) -> str:
    """``value`` with no mention, issue reference or link GitHub would form."""
    value = _MENTION.sub("@" + WORD_JOINER, value)
    value = _REFERENCE.sub(lambda m: m.group(1) + WORD_JOINER, value)
    value = _SCHEME.sub(":" + WORD_JOINER, value)
    return _WWW.sub(lambda m: m.group(1) + WORD_JOINER, value)


def one_line(value: str) -> str:
    """``value`` on one line: line breaks become spaces, other control characters go."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", value))


def text(value: str) -> str:
    """``value`` as inline Markdown text that renders literally (safe in a table cell too).

    Complete code spans in ``value`` are kept (nothing inside one is live), so messages that
    quote a command or a file in backticks still read as written; everything else is
    escaped."""
    value = one_line(value)
    out: list[str] = []
    position = 0
    for span in _code_spans(value):
        out.append(_plain(value[position : span.start()]))
        out.append(span.group().replace("|", "\\|"))
        position = span.end()
    out.append(_plain(value[position:]))
    return _BLOCK_START.sub(_escape_block_start, "".join(out))


def _escape_block_start(match: re.Match[str]) -> str:
    # A backslash before a digit would show; the `.` or `)` after it is escaped instead.
    marker = match.group()
    return marker + "\\" if marker[0].isdigit() else "\\" + marker


def _code_spans(value: str) -> list[re.Match[str]]:
    """The code spans of ``value``: a backtick run up to the next run of the same length."""
    spans = []
    position = 0
    while (opener := _BACKTICKS.search(value, position)) is not None:
        run = len(opener.group())
        closer = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(value, opener.end())
        if closer is None:
            position = opener.end()
            continue
        match = re.compile(r".+", re.DOTALL).match(value, opener.start(), closer.end())
        assert match is not None
        spans.append(match)
        position = closer.end()
    return spans


def _plain(value: str) -> str:
    value = _MARKERS.sub(r"\\\1", value)
    value = value.replace("<", "&lt;").replace(">", "&gt;")
    return defang(_UNDERSCORE.sub(r"\\_", value))


def html(value: str) -> str:
    """``value`` as text inside an HTML element (Markdown is not read there)."""
    return defang(html_lib.escape(one_line(value), quote=True))


def code(value: str, *, table: bool = False) -> str:
    """``value`` as an inline code span that nothing inside it can end. In a GFM table cell
    (``table``) pipes are escaped, which the table reads before the code span."""
    value = one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    # Padded when it holds backticks, so none touches the fence (CommonMark 6.1 strips one
    # space on each side).
    pad = " " if longest else ""
    if table:
        value = value.replace("|", "\\|")
    return f"{fence}{pad}{value}{pad}{fence}" if value else "` `"


def fenced(value: str, info: str = "text") -> str:
    """``value`` as a fenced code block whose fence is longer than any backtick run in it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", value)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{value}\n{fence}"


def quote(value: str, limit: int) -> str:
    """What someone wrote, as a code span GitHub renders inertly (no mention, reference, link,
    image or HTML is formed inside code): on one line, invisible characters shown as
    ``\\u202e``-style escapes, cut to ``limit`` characters with "…"."""
    value = _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", one_line(value))
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return code(value)
