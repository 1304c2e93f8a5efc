"""Reference pages generated from the code: the config, the settings and the review commands.

Each generated table lives in a page under ``docs/`` between ``<!-- generated: NAME -->`` and
``<!-- end -->``; ``lockwarden docs`` rewrites those blocks and ``lockwarden docs --check``
(and the test suite) fails when a committed page no longer matches the code, so the reference
cannot drift from the pydantic models and the ``/lockwarden help`` text it describes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.commands.messages import HELP_TEXT
from bot.config import json_schema
from bot.errors import LockwardenError
from bot.settings import Settings

REGENERATE = "run `lockwarden docs` (or `.venv/bin/lockwarden docs`) to regenerate it"
_DEFAULT = re.compile(r"\s*Default: (?P<text>[^.]*(?:\.[^\s.][^.]*)*)\.?\s*$")


class DocsError(LockwardenError):
    code = "docs"


@dataclass(frozen=True)
class GeneratedBlock:
    """One generated block: which page holds it, its marker name, and what renders it."""

    page: str
    name: str
    render: Callable[[], str]

    @property
    def start(self) -> str:
        return f"<!-- generated: {self.name} -->"


END_MARKER = "<!-- end -->"


# -- rendering a JSON Schema as a table --------------------------------------------------------


def _cell(text: str) -> str:
    # A table cell is one line; a bare pipe would end it.
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())


def _code(value: object) -> str:
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        shown = str(int(value))
    elif isinstance(value, str):
        shown = value
    else:
        shown = json.dumps(value)
    return f"`{shown}`"


def _type(prop: Mapping[str, Any]) -> str:
    """A schema type in words: `a` | `b` for enums, "list of string", "number"."""
    if "const" in prop:
        return _code(prop["const"])
    if "enum" in prop:
        return " | ".join(_code(choice) for choice in prop["enum"])
    if "anyOf" in prop:
        kinds = [_type(option) for option in prop["anyOf"] if option.get("type") != "null"]
        return " or ".join(kinds)
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"map of string to {_type(values)}" if values else "mapping"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    words = {"boolean": "bool", "path": "path", "password": "string (secret)"}
    text = words.get(str(prop.get("format", kind)), str(kind))
    if "pattern" in prop:
        text += f" matching `{prop['pattern']}`"
    return text


def _split_default(description: str) -> tuple[str, str]:
    """The description without its trailing "Default: ..." sentence, and that sentence."""
    match = _DEFAULT.search(description)
    if match is None:
        return description.strip(), ""
    return description[: match.start()].strip(), match["text"].strip()


def _default(prop: Mapping[str, Any], required: bool, spoken: str) -> str:
    """The default column: the value itself, with the description's words when it has some."""
    if required:
        return "required"
    value = prop.get("default")
    shown = _code(value) if "default" in prop and value not in (None, [], {}) else ""
    if shown and spoken:
        return f"{shown} ({spoken})"
    if shown or spoken:
        return shown or spoken
    if "default" in prop:
        return _code(value) if value is not None else "none"
    return _code({}) if prop.get("type") == "object" else "none"


def _row(name: str, prop: Mapping[str, Any], required: bool) -> str:
    meaning, spoken = _split_default(str(prop.get("description", "")))
    cells = (f"`{name}`", _type(prop), _default(prop, required, spoken), meaning)
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _rows(schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str) -> list[str]:
    """Rows for an object's properties; nested objects and lists of objects are expanded."""
    rows: list[str] = []
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if ref is None:
            rows.append(_row(path, prop, name in required))
            continue
        target = defs[str(ref).rsplit("/", 1)[-1]]
        if "items" in prop:
            rows.append(_row(path, {**prop, "items": {"type": "object"}}, name in required))
            path += "[]"
        rows.extend(_rows(target, defs, f"{path}."))
    return rows


def schema_table(schema: Mapping[str, Any], *, first: str, prefix: str = "") -> str:
    """A Markdown table of a JSON Schema's properties: name, type, default, meaning."""
    header = [f"| {first} | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join([*header, *_rows(schema, schema.get("$defs", {}), prefix)]) + "\n"


# -- the three references ----------------------------------------------------------------------


def render_config_reference() -> str:
    """The fields of ``.github/lockwarden.yml``, from the config model's JSON Schema."""
    return schema_table(json_schema(), first="field")


def render_settings_reference() -> str:
    """The ``LOCKWARDEN_*`` variables, from the settings model."""
    schema = Settings.model_json_schema()
    # Variables are spelled as the environment spells them, and a list is one comma-separated
    # string there.
    properties = {
        f"LOCKWARDEN_{name.upper()}": (
            {"type": "comma-separated list", "description": prop.get("description", "")}
            if prop.get("type") == "array"
            else prop
        )
        for name, prop in schema["properties"].items()
    }
    return schema_table({**schema, "properties": properties}, first="variable")


def render_commands_reference() -> str:
    """The review commands: the reply to ``/lockwarden help``, without its own heading."""
    lines = HELP_TEXT.splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


BLOCKS = (
    GeneratedBlock("docs/configuration.md", "config", render_config_reference),
    GeneratedBlock("docs/operations.md", "settings", render_settings_reference),
    GeneratedBlock("docs/commands.md", "commands", render_commands_reference),
)


# -- pages -------------------------------------------------------------------------------------


def replace_block(text: str, block: GeneratedBlock, content: str) -> str:
    """The page with the block's generated content replaced; missing markers are an error."""
    begin = text.find(block.start)
    end = text.find(END_MARKER, begin + len(block.start)) if begin >= 0 else -1
    if begin < 0 or end < 0:
        raise DocsError(
            f"{block.page}: no `{block.start}` ... `{END_MARKER}` block; put the two markers "
            "where the generated reference belongs, then " + REGENERATE
        )
    head = text[: begin + len(block.start)]
    return f"{head}\n{content}{text[end:]}"


def _pages(root: Path) -> dict[str, tuple[str, str]]:
    """Each page's committed text and the text it should have."""
    pages: dict[str, tuple[str, str]] = {}
    for block in BLOCKS:
        path = root / block.page
        if block.page not in pages:
            try:
                text = path.read_text("utf-8")
            except OSError as exc:
                raise DocsError(f"{block.page}: cannot read it ({exc.strerror})") from exc
            pages[block.page] = (text, text)
        committed, wanted = pages[block.page]
        pages[block.page] = (committed, replace_block(wanted, block, block.render()))
    return pages


def stale_pages(root: Path) -> tuple[str, ...]:
    """The pages under ``root`` whose generated blocks differ from what the code generates."""
    return tuple(page for page, (old, new) in _pages(root).items() if old != new)


def write_pages(root: Path) -> tuple[str, ...]:
    """Regenerate every block under ``root``; the pages that changed."""
    changed: list[str] = []
    for page, (old, new) in _pages(root).items():
        if old != new:
            (root / page).write_text(new, "utf-8")
            changed.append(page)
    return tuple(changed)
