"""Simple commands of RUN: operators, sh -c, exec form, heredocs, variables, cwd, options."""

from __future__ import annotations

import pytest

from bot.images.dockerfile.shell import (
    APK_VALUE_LONG,
    APK_VALUE_SHORT,
    parse_options,
    run_commands,
    script_commands,
)
from bot.images.dockerfile.syntax import Instruction, dockerfile_instructions


def run_of(line: str) -> Instruction:
    return dockerfile_instructions(f"FROM a\n{line}\n")[1]


@pytest.mark.parametrize(
    ("run", "commands"),
    [
        pytest.param(
            "RUN a 1 && b 2 || c; d | e & f\\\n  g",
            [["a", "1"], ["b", "2"], ["c"], ["d"], ["e"], ["f", "g"]],
            id="operators-and-continuation",
        ),
        pytest.param(
            "RUN a 2>/dev/null >out b <in; c 2 > x",
            [["a", "b"], ["c", "2"]],
            id="redirections",
        ),
        pytest.param(
            "RUN A=1 sudo -u root env -u X B=2 nice pip install x # a comment",
            [["pip", "install", "x"]],
            id="prefixes-and-comment",
        ),
        pytest.param(
            "RUN bash -e -o pipefail -c 'a && sh -c \"b; c\"' && sh run.sh",
            [["a"], ["b"], ["c"], ["sh", "run.sh"]],
            id="sh-c",
        ),
        pytest.param(
            'RUN ["/bin/sh", "-c", "a x && b"]',
            [["a", "x"], ["b"]],
            id="exec-form-sh-c",
        ),
        pytest.param('RUN ["a", "x && y"]', [["a", "x && y"]], id="exec-form"),
        pytest.param(
            "RUN --mount=type=cache,target=/c <<EOF\nset -e\na \\\n  x\nEOF",
            [["set", "-e"], ["a", "x"]],
            id="heredoc-script",
        ),
        pytest.param(
            "RUN python3 <<EOF\nimport os\nEOF", [["python3"]], id="heredoc-for-a-program"
        ),
        pytest.param("RUN if true; then a; fi", [["true"], ["a"], ["fi"]], id="keywords"),
    ],
)
def test_run_commands(run: str, commands: list[list[str]]) -> None:
    assert [list(c.argv) for c in run_commands(run_of(run))] == commands


def test_variables_and_working_directory() -> None:
    found = run_commands(
        run_of("RUN export A=1 B && cd app && C=3 pip x && cd ../lib && sh -c 'cd sub; pip y'"),
        cwd="/srv",
    )
    assert [(c.argv, dict(c.env), c.cwd) for c in found] == [
        (("pip", "x"), {"A": "1", "C": "3"}, "/srv/app"),
        (("pip", "y"), {}, "/srv/lib/sub"),
    ]


def test_words_keep_their_offsets_through_sh_c() -> None:
    text = "FROM a\nRUN sh -c 'apt-get install \"x=1\"'\n"
    (command,) = run_commands(dockerfile_instructions(text)[1])
    assert command.name == "apt-get"
    assert all(text[offset] == char for word in command.words for char, offset in word.chars)


def test_sh_c_is_followed_three_levels_deep() -> None:
    chars = tuple(
        (char, offset) for offset, char in enumerate('sh -c "sh -c \'sh -c \\"sh -c x\\"\'"')
    )
    assert [c.argv for c in script_commands(chars)] == [("sh", "-c", "x")]


def test_parse_options() -> None:
    args = ["--no-cache", "--virtual", ".deps", "-tgrp", "-X", "http://r/", "add", "a", "--", "-b"]
    options = parse_options(args, APK_VALUE_LONG, APK_VALUE_SHORT)
    assert options.flags == (
        ("--no-cache", None),
        ("--virtual", ".deps"),
        ("-t", "grp"),
        ("-X", "http://r/"),
    )
    assert options.positionals == ("add", "a", "-b")
    assert options.positional_indexes == (6, 7, 9)
    assert options.has("--no-cache")
    assert not options.has("-n")
    assert options.values("--virtual", "-t") == [".deps", "grp"]


def test_an_option_without_its_value_at_the_end() -> None:
    options = parse_options(["-qy", "--virtual"], APK_VALUE_LONG, APK_VALUE_SHORT)
    assert options.flags == (("-q", None), ("-y", None), ("--virtual", None))
    assert options.positionals == ()
