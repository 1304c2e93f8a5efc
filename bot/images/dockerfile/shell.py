"""The simple commands of a ``RUN`` instruction, for the checks and the OS-package pins.

A ``RUN`` is split into simple commands (``&&``, ``;``, ``|``, newlines...) with the words of
:mod:`bot.images.dockerfile.syntax`, following ``sh -c 'script'``, the exec form ``RUN [...]``
and a heredoc script (``RUN <<EOF``, ``RUN bash <<EOF``). Each command knows the variables set
for it (``A=1 cmd``, ``env A=1 cmd``, ``export A=1``) and its working directory (``cd``);
redirections, wrappers (``sudo``, ``env``...) and shell keywords (``then``, ``do``...) are
dropped. Command lines are split into options and positional arguments by
:func:`parse_options`, with the tables of options that take a value for apt and apk.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.images.dockerfile.syntax import (
    Chars,
    Instruction,
    ShellToken,
    exec_form,
    shell_tokens,
    split_flags,
    strip_heredoc_markers,
)

SHELLS = frozenset(("sh", "bash", "ash", "dash", "zsh"))
APT_VALUE_LONG = frozenset({"--option", "--target-release", "--config-file", "--default-release"})
APT_VALUE_SHORT = frozenset("otc")
APK_VALUE_LONG = frozenset(
    {"--repository", "--virtual", "--root", "--keys-dir", "--repositories-file", "--arch"}
    | {"--cache-dir", "--cache-max-age", "--timeout", "--progress-fd", "--wait"}
)
APK_VALUE_SHORT = frozenset("Xtp")

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset(("sudo", "exec", "time", "nohup", "command", "nice"))
_SHELL_KEYWORDS = frozenset(("then", "do", "else", "elif", "if", "while", "until", "!", "{", "}"))
_MAX_DEPTH = 3
"""How deep ``sh -c`` inside ``sh -c`` is followed."""


@dataclass(frozen=True)
class ShellCommand:
    """One simple command: its words (prefixes dropped), variables and working directory."""

    words: tuple[ShellToken, ...]
    env: Mapping[str, str]
    """Variables assigned for this command (``A=1 cmd``, ``env A=1 cmd``, ``export A=1``)."""
    cwd: str

    @property
    def argv(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.words)

    @property
    def name(self) -> str:
        """The program's base name: ``pip`` for ``/opt/venv/bin/pip``."""
        return posixpath.basename(self.words[0].text)


def run_commands(instruction: Instruction, cwd: str = "/") -> tuple[ShellCommand, ...]:
    """The simple commands of a ``RUN``: its shell form, exec form or heredoc script, with
    ``cwd`` the stage's working directory."""
    _, rest = split_flags(instruction.arguments)
    if instruction.heredocs:
        rest = strip_heredoc_markers(rest)
    exec_words = exec_form(rest)
    commands = script_commands(rest, cwd) if exec_words is None else _walk([exec_words], cwd, 0)
    if instruction.heredocs and (not commands or commands[0].name in SHELLS):
        commands = [c for c in commands if c.name not in SHELLS]
        commands.extend(script_commands(instruction.heredocs[0], cwd))
    return tuple(commands)


def script_commands(chars: Chars, cwd: str = "/", depth: int = 0) -> list[ShellCommand]:
    """The simple commands of a shell script, following ``sh -c``, ``cd`` and ``export``."""
    return _walk(_simple_commands(chars), cwd, depth)


def _simple_commands(chars: Chars) -> list[list[ShellToken]]:
    """The words of each simple command, redirections dropped."""
    commands: list[list[ShellToken]] = []
    current: list[ShellToken] = []
    tokens = shell_tokens(chars)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind == "word":
            current.append(token)
            continue
        if "<" in token.text or ">" in token.text:
            # A redirection: its target is not an argument, nor is an fd written before it.
            previous = current[-1] if current else None
            if (
                previous is not None
                and previous.text.isdigit()
                and previous.chars[-1][1] + 1 == token.chars[0][1]
            ):
                current.pop()
            if index < len(tokens) and tokens[index].kind == "word":
                index += 1
            continue
        commands.append(current)
        current = []
    commands.append(current)
    return [c for c in commands if c]


def _walk(commands: Iterable[Sequence[ShellToken]], cwd: str, depth: int) -> list[ShellCommand]:
    result: list[ShellCommand] = []
    exported: dict[str, str] = {}
    for words in commands:
        argv, env = strip_prefix(words)
        if not argv:
            continue
        name = posixpath.basename(argv[0].text)
        if name == "cd" and len(argv) > 1:
            cwd = join_path(cwd, argv[1].text)
            continue
        if name == "export":
            exported.update(_assignment(a.text) for a in argv[1:] if _ENV_NAME_RE.match(a.text))
            continue
        if name in SHELLS and depth < _MAX_DEPTH:
            script = shell_c_script(argv)
            if script is not None:
                result.extend(script_commands(script.chars, cwd, depth + 1))
                continue
        result.append(ShellCommand(tuple(argv), {**exported, **env}, cwd))
    return result


def _assignment(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def strip_prefix(words: Sequence[ShellToken]) -> tuple[list[ShellToken], dict[str, str]]:
    """The command without what comes before the program (``A=1``, ``sudo``, ``env -u X``,
    ``then``...), and the variables those prefixes assign."""
    argv = list(words)
    env: dict[str, str] = {}
    while argv:
        head = argv[0].text
        base = posixpath.basename(head)
        if head in _SHELL_KEYWORDS:
            argv.pop(0)
        elif _ENV_NAME_RE.match(head):
            env.update([_assignment(argv.pop(0).text)])
        elif base == "env" or base in _WRAPPERS:
            argv.pop(0)
            while argv and argv[0].text.startswith("-"):
                flag = argv.pop(0).text
                if flag in ("-u", "-n", "-g", "-C", "--chdir", "--unset", "--user") and argv:
                    argv.pop(0)
        else:
            break
    return argv, env


def shell_c_script(argv: Sequence[ShellToken]) -> ShellToken | None:
    """The script of ``sh [options] -c 'script'``; None for ``sh file`` or bare ``sh``."""
    index = 1
    while index < len(argv):
        arg = argv[index].text
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return argv[index + 1] if index + 1 < len(argv) else None
        if not arg.startswith(("-", "+")):
            return None
        index += 2 if arg in ("-o", "+o", "-O", "+O") else 1
    return None


def join_path(cwd: str, path: str) -> str:
    """``path`` seen from the directory ``cwd`` of the image, normalised."""
    return posixpath.normpath(posixpath.join(cwd or "/", path))


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    """A command line split into options (with their values) and positional arguments."""

    flags: tuple[tuple[str, str | None], ...]
    positionals: tuple[str, ...]
    positional_indexes: tuple[int, ...]
    """Where each positional stands in the arguments given to :func:`parse_options`."""

    def has(self, *names: str) -> bool:
        return any(n in names for n, _ in self.flags)

    def values(self, *names: str) -> list[str]:
        return [v for n, v in self.flags if n in names and v is not None]


def parse_options(
    args: Sequence[str], value_long: Collection[str], value_short: Collection[str]
) -> Options:
    """Split command-line words into options and positionals: ``value_long`` options
    (``--virtual``) and ``value_short`` letters (``-t``) take the next word as their value
    unless it is attached (``--virtual=x``, ``-tx``); ``--`` ends the options."""
    flags: list[tuple[str, str | None]] = []
    indexes: list[int] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            indexes.extend(range(index, len(args)))
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            takes = not eq and name in value_long and index < len(args)
            flags.append((name, value if eq else args[index] if takes else None))
            index += 1 if takes else 0
        elif arg.startswith("-") and len(arg) > 1:
            index = _short_flags(args, index, value_short, flags)
        else:
            indexes.append(index - 1)
    return Options(tuple(flags), tuple(args[i] for i in indexes), tuple(indexes))


def _short_flags(
    args: Sequence[str],
    index: int,
    value_short: Collection[str],
    flags: list[tuple[str, str | None]],
) -> int:
    """Record the letters of ``args[index - 1]`` (``-qy``, ``-tname``); the next index."""
    arg = args[index - 1]
    for position, char in enumerate(arg[1:], start=1):
        if char not in value_short:
            flags.append((f"-{char}", None))
            continue
        rest = arg[position + 1 :]
        if rest:
            flags.append((f"-{char}", rest))
        elif index < len(args):
            flags.append((f"-{char}", args[index]))
            index += 1
        else:
            flags.append((f"-{char}", None))
        break
    return index
