"""YAML from a repository, read within fixed bounds: no anchors or aliases, limited nesting.

An alias is a reference, so a few hundred bytes of anchors that each list ten aliases of the
previous one expand to billions of nodes when the document is walked or constructed. Nothing
Lockwarden reads (its config, conda ``environment.yml`` files) needs them, so they are refused
outright while the document is still an event stream: refusal costs one pass over the text and
nothing is expanded. Nesting is capped too, so walks over the result cannot exhaust the stack.
"""

from __future__ import annotations

from typing import Any

import yaml

from bot.errors import ConfigError

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted (a config is about five deep)."""

# libyaml when it is built in: its event parser is not recursive and runs at C speed.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(yaml.YAMLError):
    """The document uses something refused here; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def check(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``YamlLimitError`` at the first anchor, alias or over-deep collection of
    ``text``; YAML syntax errors raise ``yaml.YAMLError`` as usual."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlLimitError(
                "YAML anchors and aliases (&name, *name) are not accepted; write the values "
                "out in full",
                line,
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlLimitError(
                    f"nested more than {max_depth} levels deep; flatten the document", line
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def compose(text: str, *, max_depth: int = MAX_DEPTH) -> yaml.Node | None:
    """The node tree of ``text`` once ``check`` has passed."""
    check(text, max_depth=max_depth)
    return yaml.compose(text, Loader=_LOADER)


def safe_load(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load`` of ``text`` once ``check`` has passed."""
    check(text, max_depth=max_depth)
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (CSafeLoader)


def compose_file(text: str, path: str) -> yaml.Node | None:
    """``compose`` for the file ``path``: every refusal and YAML error is a ``ConfigError``
    naming the file and, where known, the line."""
    try:
        return compose(text)
    except YamlLimitError as exc:
        raise ConfigError(path, exc.message, line=exc.line) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError(path, f"invalid YAML: {exc.problem}", line=line) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(path, f"invalid YAML: {str(exc).splitlines()[0]}", line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {exc}") from exc
