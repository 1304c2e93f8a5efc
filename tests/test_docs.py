"""The documentation: generated reference pages match the code, links resolve, examples parse,
and the README keeps the test command CI runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.commands.grammar import COMMAND_NAMES
from bot.commands.messages import HELP_TEXT
from bot.config import DockerfileChecks, EnvironmentConfig, RepoConfig, Schedule, parse_config
from bot.docs import (
    BLOCKS,
    END_MARKER,
    DocsError,
    render_commands_reference,
    render_config_reference,
    render_settings_reference,
    replace_block,
    schema_table,
    stale_pages,
    write_pages,
)
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
README_LINES = 220


def test_committed_reference_pages_match_the_code() -> None:
    stale = stale_pages(ROOT)
    assert stale == (), (
        f"{', '.join(stale)} differ from the code: run `.venv/bin/lockwarden docs` to "
        "regenerate them, then commit the pages"
    )


def _copy_pages(tmp_path: Path) -> Path:
    for block in BLOCKS:
        target = tmp_path / block.page
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / block.page, target)
    return tmp_path


def test_cli_reports_a_drifted_page_and_regenerates_it(tmp_path: Path) -> None:
    root = _copy_pages(tmp_path)
    page = root / "docs" / "configuration.md"
    page.write_text(page.read_text("utf-8").replace("`environments[].spec`", "`spec`"), "utf-8")
    runner = CliRunner()

    checked = runner.invoke(main, ["docs", str(root), "--check"])
    assert checked.exit_code == 1, checked.output
    assert "docs/configuration.md: out of date" in checked.output
    assert "lockwarden docs" in checked.output
    assert "`spec`" in page.read_text("utf-8"), "--check writes nothing"

    written = runner.invoke(main, ["docs", str(root)])
    assert written.exit_code == 0, written.output
    assert written.output == "docs/configuration.md: regenerated\n"
    assert page.read_text("utf-8") == (ROOT / "docs" / "configuration.md").read_text("utf-8")
    assert runner.invoke(main, ["docs", str(root), "--check"]).exit_code == 0


def test_a_page_without_its_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    root = _copy_pages(tmp_path)
    page = root / "docs" / "commands.md"
    page.write_text("# Review commands\n\nno block here\n", "utf-8")
    before = {path: path.read_bytes() for path in root.rglob("*.md")}

    with pytest.raises(DocsError, match=r"docs/commands.md: no `<!-- generated: commands -->`"):
        write_pages(root)
    result = CliRunner().invoke(main, ["docs", str(root)])
    assert result.exit_code == 2
    assert "lockwarden docs" in result.output
    assert {path: path.read_bytes() for path in root.rglob("*.md")} == before


def test_a_missing_page_is_named(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match=r"docs/configuration.md: cannot read it"):
        stale_pages(tmp_path)


def test_replace_block_keeps_the_text_around_it() -> None:
    block = BLOCKS[0]
    text = f"before\n{block.start}\nold\n{END_MARKER}\nafter\n"
    wanted = f"before\n{block.start}\nnew\n{END_MARKER}\nafter\n"
    assert replace_block(text, block, "new\n") == wanted


def _fields(model: Any, prefix: str) -> set[str]:
    return {f"`{prefix}{name}`" for name in model.model_fields}


def test_config_reference_has_a_row_for_every_field() -> None:
    table = render_config_reference()
    rows = {line.split(" | ")[0].removeprefix("| ") for line in table.splitlines()[2:]}
    expected = (
        _fields(RepoConfig, "") - {"`schedule`", "`dockerfile_checks`"}
        | _fields(EnvironmentConfig, "environments[].")
        | _fields(Schedule, "schedule.")
        | _fields(DockerfileChecks, "dockerfile_checks.")
    )
    assert rows == expected
    assert "| `environments[].name` | string matching `^" in table
    assert "| required |" in table
    assert "| `environments[].backend` | `pip-tools` \\| `uv` \\| `poetry` \\| `conda` |" in table


def test_settings_reference_has_every_variable_and_env_example_lists_them() -> None:
    table = render_settings_reference()
    env_example = (ROOT / "deploy" / "env.example").read_text("utf-8")
    for name in Settings.model_fields:
        variable = f"LOCKWARDEN_{name.upper()}"
        assert f"| `{variable}` |" in table
        assert re.search(rf"^#? ?{variable}=", env_example, re.M), f"env.example lacks {variable}"
    assert "| `LOCKWARDEN_ALLOWED_PRIVATE_HOSTS` | comma-separated list | none |" in table
    assert "| `LOCKWARDEN_MAX_PARALLEL_COMPILES` | integer | the CPU count |" in table


def test_commands_reference_is_the_help_reply() -> None:
    reference = render_commands_reference()
    assert reference in HELP_TEXT
    assert not reference.startswith("#")
    for name in COMMAND_NAMES:
        assert f"| `{name}" in reference, name


@pytest.mark.parametrize(
    ("prop", "row"),
    [
        pytest.param(
            {"type": "integer", "default": 3, "description": "Tries."},
            "| `x` | integer | `3` | Tries. |",
            id="plain",
        ),
        pytest.param(
            {"type": "number", "default": 1.0, "description": "A | B."},
            "| `x` | number | `1` | A \\| B. |",
            id="whole-float-and-pipe",
        ),
        pytest.param(
            {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
                "description": "Where. Default: ~/.cache/x, else none.",
            },
            "| `x` | string | ~/.cache/x, else none | Where. |",
            id="default-in-words",
        ),
        pytest.param(
            {"type": "string", "default": "0 5 * * 1", "description": "Cron. Default: Mondays."},
            "| `x` | string | `0 5 * * 1` (Mondays) | Cron. |",
            id="value-and-words",
        ),
        pytest.param(
            {"type": "array", "items": {"type": "string"}, "default": [], "description": ""},
            "| `x` | list of string | `[]` |  |",
            id="empty-list",
        ),
        pytest.param(
            {"type": "object", "additionalProperties": {"type": "string"}},
            "| `x` | map of string to string | `{}` |  |",
            id="map-without-default",
        ),
        pytest.param(
            {"type": "boolean", "default": False, "description": "``on`` or not."},
            "| `x` | bool | `false` | `on` or not. |",
            id="bool-and-rst-quotes",
        ),
        pytest.param({"const": 1, "default": 1}, "| `x` | `1` | `1` |  |", id="const"),
    ],
)
def test_schema_table_rows(prop: dict[str, Any], row: str) -> None:
    assert schema_table({"properties": {"x": prop}}, first="name").splitlines()[2] == row


# -- the pages themselves ----------------------------------------------------------------------


def test_readme_is_short_and_keeps_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= README_LINES
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    command = ci[ci.index("# The test command from the README, verbatim:") + 1]
    development = readme.split("\n## Development\n", 1)[1]
    assert f"```sh\n{command}\n```" in development


def _slug(heading: str) -> str:
    # GitHub's anchors: lower case, punctuation dropped, spaces become hyphens.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text("utf-8"), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text("utf-8"), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_internal_links_resolve(page: Path) -> None:
    for link in _links(page):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link} points at nothing"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{page.name}: {link}: no such heading"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {link.split("#")[0] for link in _links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in linked, page.name


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_config_examples_are_valid(page: Path) -> None:
    for example in re.findall(r"```yaml\n(.*?)```", page.read_text("utf-8"), re.S):
        config = parse_config(example, f"{page.name} example")
        assert config.environments
