"""Which lines of a comment GitHub shows as lines of a top-level paragraph (pure, no I/O).

A slash command is only read where a reader sees it: at the start of a line of a paragraph
that is not inside a block quote or a list. Everything else a comment can hide text in is
skipped, following CommonMark 0.31 (the block structure of section 4 and 5, and the inline
constructs that can span lines):

- lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only; U+2028, U+0085, ``\\f`` and the like are
  characters inside a line;
- fenced code closes only with a fence of the same character at least as long, and an unclosed
  one runs to the end of its container; indented code (four columns, not interrupting a
  paragraph); HTML blocks of all seven kinds; headings (ATX and setext); GFM tables;
- inside a paragraph: code spans, raw HTML (comments, tags, processing instructions,
  declarations, CDATA), link destinations and titles and link reference definitions, any of
  which may run over several lines.

Where this reading and a renderer's could differ, it errs towards "not a paragraph line".
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Literal

LINE_ENDING = re.compile(r"\r\n|\r|\n")

_ATX_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*$")
_THEMATIC_BREAK = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|(?:-[ \t]*){3,})$")
_SETEXT_UNDERLINE = re.compile(r"(?:=+|-+)[ \t]*$")
_BULLET = re.compile(r"[*+-](?=[ \t]|$)")
_ORDERED = re.compile(r"([0-9]{1,9})[.)](?=[ \t]|$)")
_TABLE_DELIMITER = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")

_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    "details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    "h1|h2|h3|h4|h5|h6|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|"
    "noframes|ol|optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|"
    "thead|title|tr|track|ul"
)
_ATTRIBUTE = (
    r"(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*"
    r"(?:\s*=\s*(?:[^\"'=<>`\x00-\x20]+|'[^']*'|\"[^\"]*\"))?)"
)
_OPEN_TAG = rf"<[A-Za-z][A-Za-z0-9-]*{_ATTRIBUTE}*\s*/?>"
_CLOSE_TAG = r"</[A-Za-z][A-Za-z0-9-]*\s*>"
# Start conditions of HTML blocks 1 to 7, each with its end condition (None: a blank line).
_HTML_BLOCKS: tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...] = (
    (
        re.compile(r"<(?:script|pre|style|textarea)(?:\s|>|$)", re.IGNORECASE),
        re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
    ),
    (re.compile(r"<!--"), re.compile(r"-->")),
    (re.compile(r"<\?"), re.compile(r"\?>")),
    (re.compile(r"<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>")),
    (re.compile(rf"</?(?:{_BLOCK_TAGS})(?:\s|/?>|$)", re.IGNORECASE), None),
    (re.compile(rf"(?:{_OPEN_TAG}|{_CLOSE_TAG})[ \t]*$"), None),
)
_TYPE_7 = 6

# Inline constructs that may hide text across lines (CommonMark 6.5, 6.6, 6.3).
_RAW_HTML = re.compile(
    "|".join(
        (
            _OPEN_TAG,
            _CLOSE_TAG,
            r"<!-->|<!--->|<!--.*?-->",
            r"<\?.*?\?>",
            r"<![A-Za-z][^>]*>",
            r"<!\[CDATA\[.*?\]\]>",
            r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\x00-\x20<>]*>",
        )
    ),
    re.DOTALL,
)
_TERMINATED = (("<!--", "-->"), ("<?", "?>"), ("<![CDATA[", "]]>"), ("<!", ">"))
_TITLE = r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\))"
_DESTINATION = r"(?:<(?:[^<>\n\\]|\\.)*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))+)"
_LINK_TAIL = re.compile(rf"\(\s*(?:{_DESTINATION})?(?:\s+{_TITLE})?\s*\)", re.DOTALL)
_LINK_DEFINITION = re.compile(
    rf"[ \t]*\[(?:[^\[\]\\]|\\.){{1,999}}\]:\s*{_DESTINATION}(?:\s+{_TITLE})?[ \t]*(?:\n|$)",
    re.DOTALL,
)
_PUNCTUATION = frozenset(string.punctuation)


@dataclass(frozen=True)
class ParagraphLine:
    """A line of a top-level paragraph: its 0-based number and text (leading blanks cut)."""

    number: int
    text: str


@dataclass
class _Container:
    kind: Literal["quote", "item"]
    width: int = 0
    """An item's content indent: the columns its continuation lines must be indented by."""
    empty: bool = False
    """An item that opened on a blank line and has had no content yet."""


@dataclass
class _Paragraph:
    depth: int
    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Leaf:
    kind: Literal["fence", "indented", "html"]
    fence: str = ""
    end: re.Pattern[str] | None = None


class _Scanner:
    """CommonMark's block parsing, reduced to what tells paragraph lines from the rest."""

    def __init__(self) -> None:
        self.containers: list[_Container] = []
        self.leaf: _Leaf | _Paragraph | None = None
        self.found: list[ParagraphLine] = []

    def line(self, number: int, raw: str) -> None:
        rest, matched = self._match_containers(raw.expandtabs(4))
        all_matched = matched == len(self.containers)
        if all_matched and isinstance(self.leaf, _Leaf) and self._continue_leaf(rest):
            return
        lazy_ok = isinstance(self.leaf, _Paragraph)
        rest, opened, consumed = self._open_blocks(rest, matched, all_matched)
        if consumed:
            return
        if not rest.strip(" \t"):  # a blank line ends a paragraph and unmatched containers
            self._close(matched if not opened else len(self.containers))
            self._finish()
            return
        if lazy_ok and not opened and isinstance(self.leaf, _Paragraph):
            self.leaf.lines.append((number, rest.lstrip(" \t")))  # continuation, maybe lazy
            return
        self._close(matched if not opened else len(self.containers))
        self._finish()
        self.leaf = _Paragraph(depth=len(self.containers), lines=[(number, rest.lstrip(" \t"))])

    def end(self) -> None:
        """Close everything open at the end of the text."""
        self._close(0)
        self._finish()

    def _match_containers(self, text: str) -> tuple[str, int]:
        for index, container in enumerate(self.containers):
            indent = len(text) - len(text.lstrip(" "))
            if container.kind == "quote":
                if indent > 3 or not text[indent:].startswith(">"):
                    return text, index
                text = text[indent + 1 :]
                text = text[1:] if text.startswith(" ") else text
            elif not text.strip(" \t"):
                if container.empty:  # an item may begin with at most one blank line
                    return text, index
                text = ""
            elif indent >= container.width:
                container.empty = False
                text = text[container.width :]
            else:
                return text, index
        return text, len(self.containers)

    def _continue_leaf(self, rest: str) -> bool:
        """True when the open fence, indented code or HTML block takes the line."""
        leaf = self.leaf
        assert isinstance(leaf, _Leaf)
        if leaf.kind == "fence":
            close = _FENCE_CLOSE.match(rest)
            if (
                close
                and close.group(1)[0] == leaf.fence[0]
                and len(close.group(1)) >= len(leaf.fence)
            ):
                self.leaf = None
            return True
        if leaf.kind == "html":
            ended = leaf.end.search(rest) if leaf.end is not None else not rest.strip(" \t")
            if ended:
                self.leaf = None
            return True
        indent = len(rest) - len(rest.lstrip(" "))
        if indent >= 4 or not rest.strip(" \t"):
            return True
        self.leaf = None
        return False

    def _open_blocks(self, rest: str, matched: int, all_matched: bool) -> tuple[str, bool, bool]:
        """Start the blocks the line opens: (what is left, opened a container, line taken)."""
        opened = False
        while True:
            indent = len(rest) - len(rest.lstrip(" "))
            text = rest[indent:]
            paragraph = isinstance(self.leaf, _Paragraph)
            interrupts = paragraph and all_matched and not opened
            if indent >= 4:
                if paragraph or not text.strip(" \t"):
                    return rest, opened, False
                self._start(matched, opened, _Leaf("indented"))
                return rest, opened, True
            if text.startswith(">"):
                self._push(matched, opened, _Container("quote"))
                opened = True
                rest = text[1:]
                rest = rest[1:] if rest.startswith(" ") else rest
                continue
            leaf = self._leaf_start(text, paragraph and not opened)
            if leaf is not None:
                self._start(matched, opened, leaf if isinstance(leaf, _Leaf) else None)
                return rest, opened, True
            if interrupts and _SETEXT_UNDERLINE.match(text):
                self.leaf = None  # the paragraph was a heading: none of its lines count
                return rest, opened, True
            if _THEMATIC_BREAK.match(text):
                self._start(matched, opened, None)
                return rest, opened, True
            item = _list_item(text, indent, interrupts)
            if item is None:
                return rest, opened, False
            width, content = item
            self._push(matched, opened, _Container("item", width, empty=not content.strip()))
            opened = True
            rest = content

    @staticmethod
    def _leaf_start(text: str, tip_paragraph: bool) -> _Leaf | bool | None:
        """A fence or HTML block the line opens (True: a one-line ATX heading), else None."""
        if _ATX_HEADING.match(text):
            return True
        fence = _FENCE_OPEN.match(text)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            return _Leaf("fence", fence=fence.group(1))
        for kind, (start, end) in enumerate(_HTML_BLOCKS):
            if kind == _TYPE_7 and tip_paragraph:
                break  # the only kind that cannot interrupt a paragraph (lazily either)
            if start.match(text):
                if end is not None and end.search(text):
                    return True  # opened and closed on this line
                return _Leaf("html", end=end)
        return None

    def _push(self, matched: int, opened: bool, container: _Container) -> None:
        self._close(matched if not opened else len(self.containers))
        self._finish()
        self.containers.append(container)

    def _start(self, matched: int, opened: bool, leaf: _Leaf | None) -> None:
        self._close(matched if not opened else len(self.containers))
        self._finish()
        self.leaf = leaf

    def _close(self, keep: int) -> None:
        """Close the containers past the first ``keep`` (the leaf goes with them)."""
        if keep < len(self.containers):
            self._finish()
            del self.containers[keep:]

    def _finish(self) -> None:
        """Close the leaf; a top-level paragraph gives up its visible line starts."""
        if isinstance(self.leaf, _Paragraph) and self.leaf.depth == 0:
            self.found.extend(_visible_starts(self.leaf.lines))
        self.leaf = None


def _list_item(text: str, indent: int, interrupts: bool) -> tuple[int, str] | None:
    """The content indent and the rest of a line that opens a list item, else None."""
    marker = _BULLET.match(text) or _ORDERED.match(text)
    if marker is None:
        return None
    after = text[marker.end() :]
    blank = not after.strip(" \t")
    if interrupts and (blank or (marker.lastindex and int(marker.group(1)) != 1)):
        return None  # CommonMark 5.2: what may interrupt a paragraph
    spaces = len(after) - len(after.lstrip(" "))
    padding = 1 if blank or spaces >= 5 else spaces
    return indent + marker.end() + padding, after[padding:] if not blank else ""


def _visible_starts(lines: list[tuple[int, str]]) -> list[ParagraphLine]:
    """The paragraph lines whose start is not inside a code span, raw HTML, a link's
    destination or title, a link reference definition or a GFM table."""
    text = "\n".join(line for _, line in lines)
    starts, offset = [], 0
    for _, line in lines:
        starts.append(offset)
        offset += len(line) + 1
    hidden = _hidden_spans(text)
    table = _table_start(lines)
    out = []
    for index, (number, line) in enumerate(lines):
        start = starts[index]
        if index >= table or any(begin < start < end for begin, end in hidden):
            continue
        out.append(ParagraphLine(number, line))
    return out


def _table_start(lines: list[tuple[int, str]]) -> int:
    """Index of a GFM table's header row in the paragraph (its length when there is none)."""
    for index in range(1, len(lines)):
        row = lines[index][1]
        if "|" in row and _TABLE_DELIMITER.match(row):
            return index - 1
    return len(lines)


def _hidden_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` a reader does not see as paragraph text, left to right as CommonMark
    gives them precedence: link reference definitions first, then code spans, raw HTML and
    link tails, with backslash escapes honoured outside code."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (definition := _LINK_DEFINITION.match(text, position)) is not None:
        spans.append((position, definition.end()))
        position = definition.end()
    no_closer: dict[int, int] = {}
    while position < len(text):
        char = text[position]
        end = None
        if char == "\\" and text[position + 1 : position + 2] in _PUNCTUATION:
            position += 2
            continue
        if char == "`":
            end, run = _code_span_end(text, position, no_closer)
            if end is None:
                position += run
                continue
        elif char == "<":
            end = _raw_html_end(text, position)
        elif char == "]" and text.startswith("(", position + 1):
            match = _LINK_TAIL.match(text, position + 1)
            end = match.end() if match else None
        if end is None:
            position += 1
            continue
        spans.append((position, end))
        position = end
    return spans


def _raw_html_end(text: str, start: int) -> int | None:
    """The end of raw HTML (or an autolink) opening at ``start``, else None. A construct that
    runs to a terminator is only tried when the terminator occurs later, so that many
    unclosed openers cost one look each, not a scan to the end each."""
    for opener, terminator in _TERMINATED:
        if text.startswith(opener, start):
            if text.find(terminator, start + 2) < 0:
                return None
            break
    match = _RAW_HTML.match(text, start)
    return match.end() if match else None


def _code_span_end(text: str, start: int, no_closer: dict[int, int]) -> tuple[int | None, int]:
    """The end of the code span opening at ``start`` (None when unclosed) and the length of
    its backtick run. ``no_closer`` remembers failed searches, keeping the scan linear."""
    run = 1
    while text.startswith("`", start + run):
        run += 1
    if no_closer.get(run, len(text) + 1) <= start:
        return None, run
    closer = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(text, start + run)
    if closer is None:
        no_closer[run] = start
        return None, run
    return closer.end(), run


def paragraph_lines(body: str) -> tuple[ParagraphLine, ...]:
    """The lines of ``body`` that begin a line of a top-level paragraph, in order."""
    raw_lines = LINE_ENDING.split(body)
    scanner = _Scanner()
    for number, raw in enumerate(raw_lines):
        scanner.line(number, raw)
    scanner.end()
    # The text as written (tabs kept), without the paragraph's leading blanks.
    return tuple(
        ParagraphLine(line.number, raw_lines[line.number].lstrip(" \t")) for line in scanner.found
    )
