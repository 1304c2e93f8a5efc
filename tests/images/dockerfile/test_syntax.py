"""Dockerfile syntax: instructions with their offsets, heredocs, directives, pragmas, words."""

from __future__ import annotations

import pytest

from bot.errors import LockwardenError
from bot.images.dockerfile.from_lines import find_base_images
from bot.images.dockerfile.syntax import (
    Chars,
    LineIndex,
    Problem,
    decode_dockerfile,
    dockerfile_instructions,
    exec_form,
    parse_dockerfile,
    replace_spans,
    shell_tokens,
    split_flags,
    strip_heredoc_markers,
)

# -- the text scanner ------------------------------------------------------------------------


def test_instructions_join_continuations_and_skip_comment_lines() -> None:
    text = "FROM a\r\nRUN one \\\r\n  # note\r\n\r\n  two\r\nCMD x\r\n"
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.line) for i in found] == [("FROM", 1), ("RUN", 2), ("CMD", 6)]
    run = found[1]
    assert "".join(c for c, _ in run.arguments) == " one   two"
    assert all(text[offset] == char for char, offset in run.arguments)


def test_text_that_is_no_instruction_is_skipped() -> None:
    text = "FROM a\n123 nonsense\nRUN x \\\n# only a comment after the continuation\n"
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.line) for i in found] == [("FROM", 1), ("RUN", 3)]
    assert "".join(c for c, _ in found[1].arguments) == " x "


def test_only_newlines_end_lines() -> None:
    text = 'FROM a\nLABEL x="a\x0cb\u2028c"\nFROM b:1\nRUN x'
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.line) for i in found] == [
        ("FROM", 1),
        ("LABEL", 2),
        ("FROM", 3),
        ("RUN", 4),
    ]
    assert [(r.line, r.image) for r in find_base_images(text, "x")] == [(1, "a"), (3, "b:1")]


def test_escape_directive_and_byte_order_mark() -> None:
    text = "\ufeff# escape=`\nFROM a\nRUN one `\n  two \\\n"
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.line) for i in found] == [("FROM", 2), ("RUN", 3)]
    assert "".join(c for c, _ in found[1].arguments) == " one   two \\"


def test_heredoc_bodies_are_kept_apart() -> None:
    text = "FROM a\nRUN <<-EOT bash\n\techo hi\n\tEOT\nCOPY <<A <<B /x/\na\nA\nb\nB\nCMD z\n"
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.line) for i in found] == [
        ("FROM", 1),
        ("RUN", 2),
        ("COPY", 5),
        ("CMD", 10),
    ]
    assert ["".join(c for c, _ in body) for body in found[1].heredocs] == ["\techo hi\n"]
    assert ["".join(c for c, _ in body) for body in found[2].heredocs] == ["a\n", "b\n"]


@pytest.mark.parametrize(
    ("source", "tokens"),
    [
        ("a b", "<a> <b>"),
        ("a && b; c | d || e & f", "<a> [&&] <b> [;] <c> [|] <d> [||] <e> [&] <f>"),
        ("'a b' \"c $d\" e\\ f", "<a b> <c $d> <e f>"),
        ('"x\\"y" \'x\\y\'', '<x"y> <x\\y>'),
        ("a # comment\nb", "<a> [\n] <b>"),
        ("a#b", "<a#b>"),
        ("a \\\nb", "<a> <b>"),
        ("a 2>/dev/null", "<a> <2> [>] </dev/null>"),
        ("a>&2 <<EOF", "<a> [>&] <2> [<<] <EOF>"),
        ("$(a) `b`", "<$> [(] <a> [)] <`b`>"),
    ],
)
def test_shell_tokens(source: str, tokens: str) -> None:
    chars = tuple((char, offset) for offset, char in enumerate(source))
    found = shell_tokens(chars)
    shown = [f"[{t.text}]" if t.kind == "operator" else f"<{t.text}>" for t in found]
    assert " ".join(shown) == tokens
    # Every character still points at itself in the source.
    assert all(source[offset] == char for token in found for char, offset in token.chars)


# -- the model: positions, problems, directives, pragmas -------------------------------------


def text_of(chars: Chars) -> str:
    return "".join(char for char, _ in chars)


def test_positions_of_a_continued_instruction() -> None:
    text = "FROM a\nRUN one \\\n  # note\n  two \\\n  three\nCMD x\n"
    found = parse_dockerfile(text).instructions
    assert [(i.keyword, i.line, i.end_line) for i in found] == [
        ("FROM", 1, 1),
        ("RUN", 2, 5),
        ("CMD", 6, 6),
    ]
    run = found[1]
    assert run.value == "one   two   three"
    index = LineIndex(text)
    words = [(w.text, index.line(w.chars[0][1])) for w in run.words()]
    assert words == [("one", 2), ("two", 4), ("three", 5)]


def test_heredoc_bodies_keep_their_offsets_and_lines() -> None:
    text = 'FROM a\nRUN <<"EOT" cat >/x\nline one\n  line two\nEOT\nCOPY <<-A /y\n\tz\n\tA\n'
    found = parse_dockerfile(text).instructions
    run, copy = found[1], found[2]
    assert (run.line, run.end_line, copy.line) == (2, 2, 6)
    (body,) = run.heredocs
    assert text_of(body) == "line one\n  line two\n"
    assert all(text[offset] == char for char, offset in body)
    assert LineIndex(text).line(body[0][1]) == 3
    assert text_of(copy.heredocs[0]) == "\tz\n"
    # The markers are not words of the instruction.
    assert [w.text for w in copy.words()] == ["/y"]
    assert text_of(strip_heredoc_markers(run.arguments)).split() == ["cat", ">/x"]


def test_escape_directive_sets_the_continuation_character() -> None:
    text = "# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN dir C:\\ `\n  && echo x\n"
    dockerfile = parse_dockerfile(text)
    assert dockerfile.escape == "`"
    assert dict(dockerfile.directives) == {"syntax": "docker/dockerfile:1", "escape": "`"}
    run = dockerfile.instructions[1]
    assert (run.line, run.end_line, run.value) == (4, 5, "dir C:\\   && echo x")


@pytest.mark.parametrize(
    "text",
    [
        "# a comment first\n# escape=`\nFROM a\nRUN x `\n",
        "\n# escape=`\nFROM a\nRUN x `\n",
        "FROM a\n# escape=`\nRUN x `\n",
        "# escape=x\nFROM a\nRUN x `\n",
    ],
    ids=["after-comment", "after-blank-line", "after-instruction", "not-an-escape"],
)
def test_escape_directive_only_counts_at_the_top(text: str) -> None:
    dockerfile = parse_dockerfile(text)
    assert dockerfile.escape == "\\"
    assert dockerfile.instructions[-1].value == "x `"


def test_pragmas_belong_to_the_next_instruction() -> None:
    text = (
        "FROM a\n"
        "# lockwarden ignore=LW005, lw001\n"
        "# hadolint ignore=DL3008\n"
        "RUN apt-get install -y curl\n"
        "RUN a \\\n"
        "  # lockwarden ignore=LW007\n"
        "  b\n"
        "RUN c\n"
    )
    found = parse_dockerfile(text).instructions
    assert found[1].ignored("lockwarden") == {"LW005", "LW001"}
    assert found[1].ignored("hadolint") == {"DL3008"}
    assert found[2].pragmas == frozenset()
    # A pragma inside a continued instruction applies to the one after it.
    assert found[3].ignored("lockwarden") == {"LW007"}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("FROM a\nFORM b\n", 2, "unknown instruction 'FORM'"),
        ("FROM a\n123 nonsense\n", 2, "unknown instruction '123'"),
        ("FROM a\nRUN\n", 2, "RUN on line 2 has no arguments"),
        ("ARG X=1\nRUN true\nFROM a\n", 2, "comes before FROM"),
        ("FROM a\nRUN <<EOF\ntrue\n", 2, "<<EOF opened on line 2 is never closed"),
        ("# only a comment\n", 1, "no FROM instruction"),
        ("FROM a\nRUN x\nBAD y\nFROM b\nWRONG z\n", 3, "unknown instruction 'BAD'"),
    ],
)
def test_problems_docker_would_refuse(text: str, line: int, words: str) -> None:
    problem = parse_dockerfile(text).problem
    assert problem is not None
    assert problem.line == line
    assert words in problem.message


def test_a_valid_file_has_no_problem_and_blank_continuation_lines_are_skipped() -> None:
    dockerfile = parse_dockerfile("FROM a\nRUN x \\\n\n  y\nRUN\\\n  z\n")
    assert dockerfile.problem is None
    assert [i.value for i in dockerfile.instructions] == ["a", "x   y", "z"]


def test_decoding() -> None:
    assert decode_dockerfile("\ufeffFROM a\n".encode()) == "FROM a\n"
    problem = decode_dockerfile(b"FROM a\nRUN \xff\n")
    assert problem == Problem(2, "line 2 is not UTF-8 text; save the file as UTF-8")


# -- arguments and words ---------------------------------------------------------------------


def chars_of(source: str) -> Chars:
    return tuple((char, offset) for offset, char in enumerate(source))


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("a b", ["a", "b"]),
        ('A="x y" B=1;2', ["A=x y", "B=1;2"]),
        ("--from=build /a\n/b", ["--from=build", "/a", "/b"]),
        ("a #b", ["a", "#b"]),
        ("'a|b' c>d", ["a|b", "c>d"]),
    ],
)
def test_plain_words_know_no_shell_operators(source: str, words: list[str]) -> None:
    found = shell_tokens(chars_of(source), shell=False)
    assert [t.text for t in found] == words
    assert {t.kind for t in found} <= {"word"}


def test_flags_and_exec_form() -> None:
    source = ' --mount=type=cache,target=/root/.cache --network=host ["pip", "a\\u002db"]'
    flags, rest = split_flags(chars_of(source))
    assert flags == ("--mount=type=cache,target=/root/.cache", "--network=host")
    words = exec_form(rest)
    assert words is not None
    assert [w.text for w in words] == ["pip", "a-b"]
    # Characters written as they are keep their offsets; an escape stands for itself (-1).
    assert source[words[0].chars[0][1]] == "p"
    assert [offset for _, offset in words[1].chars][1] == -1


@pytest.mark.parametrize("source", ["pip install x", "[1, 2]", "[]", '["a", ', "[ -f x ]"])
def test_text_that_is_no_json_list_of_strings_is_shell_form(source: str) -> None:
    assert exec_form(chars_of(source)) is None


def test_replace_spans() -> None:
    assert replace_spans("abcdef", {(4, 5): "E", (0, 1): "A"}) == "AbcdEf"
    with pytest.raises(LockwardenError, match="overlapping"):
        replace_spans("abcdef", {(0, 3): "x", (2, 4): "y"})
