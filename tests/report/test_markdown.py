"""The Markdown report (PR body), release links, and the terminal summary."""

from __future__ import annotations

import re

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.report.links import release_url
from bot.report.markdown import change_summary, render_markdown
from bot.report.terminal import render_summary
from bot.results import CompileStageResult, ConsistencyIssue, LockResult, RunResult

NUMPY_UP = PackageChange("numpy", "1.26.4", "2.0.0", "upgraded", "major", direct=True)
PILLOW_ADDED = PackageChange(
    "pillow", None, "10.4.0", "added", None, direct=False, marker='python_version < "3.12"'
)
SIX_REMOVED = PackageChange("six", "1.16.0", None, "removed", None, direct=False)
TORCH_HASH = PackageChange(
    "torch",
    "2.3.0",
    "2.3.0",
    "hash-only",
    None,
    direct=True,
    hashes_added=("sha256:" + "a" * 64,),
    hashes_removed=("sha256:" + "b" * 64,),
)


def changed(name: str, *changes: PackageChange, **extra: object) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="pip-tools",
        status="changed",
        diff=LockDiff(changes),
        compile_s=1.25,
        **extra,  # type: ignore[arg-type]
    )


def unchanged(name: str, **extra: object) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="uv",
        status="unchanged",
        diff=LockDiff(()),
        compile_s=0.5,
        **extra,  # type: ignore[arg-type]
    )


def failed(name: str, error: str, tool_output: str = "", **extra: object) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="pip-tools",
        status="failed",
        error=error,
        failure="not-found",
        tool_output=tool_output,
        compile_s=2.0,
        **extra,  # type: ignore[arg-type]
    )


def run_result(
    *results: LockResult,
    consistency: tuple[ConsistencyIssue, ...] = (),
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass
    dry_run: bool = False,
    written: tuple[str, ...] = (),
    index_url: str | None = None,
) -> RunResult:
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(index_url=index_url), source=".github/lockwarden.yml"),
        mode=mode,
        compiled=CompileStageResult(results, consistency, tuple(r.name for r in results)),
        written=written,
        dry_run=dry_run,
        duration_s=4.5,
    )


def section(markdown: str, name: str) -> str:
    """The ``<details>`` block of one environment."""
    match = re.search(rf"<details[^>]*><summary><b>{name}</b>.*?</details>", markdown, re.S)
    assert match is not None, f"no section for {name}"
    return match.group(0)


# -- title and summary ----------------------------------------------------------------------


def test_title_is_the_first_line() -> None:
    markdown = render_markdown(run_result(unchanged("serve")))
    assert markdown.splitlines()[0] == "## Lockwarden: lock refresh for `acme/ml-service`"
    assert markdown.endswith("|\n")
    assert not markdown.endswith("\n\n")


@pytest.mark.parametrize(
    ("results", "line"),
    [
        pytest.param(
            (unchanged("serve"),),
            "1 environment · 0 changed · 0 failed",
            id="one-environment-singular",
        ),
        pytest.param(
            (changed("serve", NUMPY_UP), unchanged("train"), failed("eval", "boom")),
            "3 environments · 1 changed · 1 failed",
            id="mixed",
        ),
        pytest.param(
            (changed("serve", NUMPY_UP), changed("train", SIX_REMOVED)),
            "2 environments · 2 changed · 0 failed",
            id="all-changed",
        ),
        pytest.param((), "0 environments · 0 changed · 0 failed", id="none"),
    ],
)
def test_summary_counts(results: tuple[LockResult, ...], line: str) -> None:
    assert f" · {line}\n" in render_markdown(run_result(*results))


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        pytest.param(CompileMode(), "Mode: minimal (only what spec edits force)", id="minimal"),
        pytest.param(CompileMode("full"), "Mode: full refresh (`--upgrade`)", id="full"),
        pytest.param(
            CompileMode("targeted", ("numpy", "torch==2.4.0")),
            "Mode: targeted (`--upgrade-package numpy torch==2.4.0`)",
            id="targeted",
        ),
    ],
)
def test_mode_line(mode: CompileMode, text: str) -> None:
    assert text in render_markdown(run_result(unchanged("serve"), mode=mode))


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
def test_dry_run_note(dry_run: bool) -> None:
    markdown = render_markdown(run_result(changed("serve", NUMPY_UP), dry_run=dry_run))
    assert ("· dry run: nothing written" in markdown) is dry_run


def test_summary_table_rows() -> None:
    markdown = render_markdown(
        run_result(
            changed("serve", NUMPY_UP, PILLOW_ADDED), unchanged("train"), failed("eval", "boom")
        )
    )
    assert "| environment | status | changes | compile |\n|---|---|---|---|\n" in markdown
    assert "| `serve` | 🔄 changed | 1 added, 1 upgraded | 1.2 s |" in markdown
    assert "| `train` | ✅ unchanged | none | 0.5 s |" in markdown
    assert "| `eval` | ❌ failed | boom | 2.0 s |" in markdown


# -- environment sections -------------------------------------------------------------------


def test_one_details_section_per_environment_with_something_to_say() -> None:
    markdown = render_markdown(
        run_result(
            changed("serve", NUMPY_UP),
            unchanged("train"),
            unchanged("docs", notes=("dropped --pre",)),
            failed("eval", "boom"),
        )
    )
    assert markdown.count("<details") == 3
    assert markdown.count("</details>") == 3
    assert re.findall(r"<summary><b>(\w+)</b>", markdown) == ["serve", "docs", "eval"]


@pytest.mark.parametrize(
    ("result", "opening"),
    [
        pytest.param(
            changed("serve", NUMPY_UP, SIX_REMOVED),
            "<details><summary><b>serve</b>: <code>requirements/serve.txt</code>, "
            "1 removed, 1 upgraded</summary>",
            id="changed-closed",
        ),
        pytest.param(
            failed("serve", "the compiler failed"),
            "<details open><summary><b>serve</b>: <code>requirements/serve.txt</code>, "
            "the compiler failed</summary>",
            id="failed-open",
        ),
        pytest.param(
            unchanged("serve", notes=("n",)),
            "<details><summary><b>serve</b>: <code>requirements/serve.txt</code>, none</summary>",
            id="unchanged-with-notes",
        ),
    ],
)
def test_section_opening(result: LockResult, opening: str) -> None:
    assert section(render_markdown(run_result(result)), "serve").startswith(opening + "\n")


def test_change_rows() -> None:
    body = section(
        render_markdown(run_result(changed("serve", NUMPY_UP, PILLOW_ADDED, SIX_REMOVED))),
        "serve",
    )
    assert "| package | change | from | to | kind | |\n|---|---|---|---|---|---|\n" in body
    rows = [line for line in body.splitlines() if line.startswith("| [")]
    assert rows == [
        "| [numpy](https://pypi.org/project/numpy/2.0.0/) | upgraded | `1.26.4` | `2.0.0` "
        "| major | direct |",
        '| [pillow](https://pypi.org/project/pillow/10.4.0/) ; `python_version < "3.12"` '
        "| added |  | `10.4.0` |  | transitive |",
        "| [six](https://pypi.org/project/six/1.16.0/) | removed | `1.16.0` |  |  | transitive |",
    ]


@pytest.mark.parametrize(
    ("index_url", "link"),
    [
        pytest.param(None, "https://pypi.org/project/numpy/2.0.0/", id="pypi-default"),
        pytest.param(
            "https://pypi.org/simple/", "https://pypi.org/project/numpy/2.0.0/", id="pypi-explicit"
        ),
        pytest.param(
            "https://artifacts.acme.example/api/pypi/simple",
            "https://artifacts.acme.example/api/pypi/simple/numpy/",
            id="private-index-project-page",
        ),
    ],
)
def test_change_links_follow_the_configured_index(index_url: str | None, link: str) -> None:
    markdown = render_markdown(run_result(changed("serve", NUMPY_UP), index_url=index_url))
    assert f"| [numpy]({link}) |" in markdown


def test_constrained_by_line() -> None:
    result = changed("train", NUMPY_UP, constrained_by=("serve", "base"))
    assert "Constrained by: `serve`, `base`.\n" in section(
        render_markdown(run_result(result)), "train"
    )


def test_notes_are_listed() -> None:
    result = changed("serve", NUMPY_UP, notes=("dropped --no-deps", "compiled against <old> lock"))
    body = section(render_markdown(run_result(result)), "serve")
    assert "\n- dropped --no-deps\n- compiled against &lt;old&gt; lock\n" in body


# -- warnings and failures ------------------------------------------------------------------


def test_hash_only_warning_block() -> None:
    markdown = render_markdown(
        run_result(changed("serve", TORCH_HASH, NUMPY_UP), changed("train", TORCH_HASH))
    )
    warning = markdown.split("\n\n")[2]
    assert warning.startswith("> [!WARNING]\n> **Hash-only change**: ")
    assert "`torch==2.3.0` in `serve`, `torch==2.3.0` in `train`" in warning
    assert markdown.index("[!WARNING]") < markdown.index("| environment |")
    assert "| ⚠️ **hash-only** | `2.3.0` | `2.3.0` |" in section(markdown, "serve")


def test_no_hash_only_warning_without_hash_only_changes() -> None:
    assert "[!WARNING]" not in render_markdown(run_result(changed("serve", NUMPY_UP)))


def test_failed_environment_quotes_the_tool_output() -> None:
    output = "Collecting ghost\nERROR: No matching distribution found for ghost"
    result = failed("serve", "no release of ghost on the index matches the spec", output)
    body = section(render_markdown(run_result(result)), "serve")
    assert (
        "**no release of ghost on the index matches the spec**\n\n"
        "```text\nCollecting ghost\nERROR: No matching distribution found for ghost\n```"
    ) in body
    assert "| package |" not in body


def test_failed_environment_without_output() -> None:
    body = section(render_markdown(run_result(failed("serve", "boom"))), "serve")
    assert "```text\n(no output)\n```" in body


@pytest.mark.parametrize(
    "output",
    [
        pytest.param("before\n```\nafter", id="fence-line"),
        pytest.param("```python\nx = 1\n```", id="fenced-block"),
        pytest.param("````\nfour\n````", id="four-backticks"),
        pytest.param("inline ``` fence", id="inline"),
    ],
)
def test_code_fences_in_tool_output_do_not_break_the_block(output: str) -> None:
    body = section(render_markdown(run_result(failed("serve", "boom", output))), "serve")
    fence = re.search(r"^(`{3,})text$", body, re.M)
    assert fence is not None
    block = body[fence.end() + 1 :]
    quoted, rest = block.split(f"\n{fence.group(1)}\n", 1)
    # No line of the quoted output can close the fence early: the fence is longer than any
    # backtick run in it, and the output is quoted as it was.
    longest = max((len(run) for run in re.findall(r"`+", output)), default=0)
    assert len(fence.group(1)) > max(longest, 2)
    assert quoted == output
    assert rest.strip() == "</details>"


@pytest.mark.parametrize(
    ("error", "escaped"),
    [
        pytest.param("a | b", "a \\| b", id="pipe"),
        pytest.param("needs <2.0", "needs &lt;2.0", id="angle-brackets"),
    ],
)
def test_cells_are_escaped(error: str, escaped: str) -> None:
    markdown = render_markdown(run_result(failed("serve", error)))
    assert f"| `serve` | ❌ failed | {escaped} | 2.0 s |" in markdown
    # The summary is HTML: entities, and no backslash (it would show).
    in_html = escaped.replace("\\|", "|")
    assert f"<code>requirements/serve.txt</code>, {in_html}</summary>" in markdown
    assert f"**{escaped}**" in markdown
    summary_row = next(line for line in markdown.splitlines() if line.startswith("| `serve`"))
    assert summary_row.replace("\\|", "").count("|") == 5


# -- consistency ----------------------------------------------------------------------------


def test_consistency_table() -> None:
    issues = (
        ConsistencyIssue("numpy", (("serve", "2.0.0"), ("train", "1.26.4")), required=True),
        ConsistencyIssue("six", (("serve", "1.16.0"), ("eval", "1.15.0")), required=False),
    )
    markdown = render_markdown(run_result(unchanged("serve"), consistency=issues))
    assert markdown.endswith(
        "### Versions that differ across environments\n\n"
        "| package | versions | rule |\n|---|---|---|\n"
        "| `numpy` | serve 2.0.0, train 1.26.4 | ❌ listed in `consistent` |\n"
        "| `six` | serve 1.16.0, eval 1.15.0 | informational |\n"
    )


def test_no_consistency_table_without_issues() -> None:
    assert "Versions that differ" not in render_markdown(run_result(unchanged("serve")))


# -- change_summary -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        pytest.param(None, "none", id="no-diff"),
        pytest.param(LockDiff(()), "none", id="empty"),
        pytest.param(LockDiff((NUMPY_UP,)), "1 upgraded", id="one"),
        pytest.param(
            LockDiff((SIX_REMOVED, NUMPY_UP, PILLOW_ADDED, TORCH_HASH)),
            "1 added, 1 removed, 1 upgraded, 1 hash-only",
            id="fixed-order",
        ),
        pytest.param(
            LockDiff(
                (
                    PackageChange("a", "2", "1", "downgraded", "major", direct=True),
                    PackageChange("b", "x", "y", "source", None, direct=True),
                    PackageChange("c", "x", "y", "source", None, direct=True),
                )
            ),
            "1 downgraded, 2 source changed",
            id="downgraded-and-source",
        ),
    ],
)
def test_change_summary(diff: LockDiff | None, expected: str) -> None:
    assert change_summary(diff) == expected


# -- release_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "index", "url"),
    [
        pytest.param(
            "numpy", "2.0.0", None, "https://pypi.org/project/numpy/2.0.0/", id="pypi-release"
        ),
        pytest.param(
            "Pillow_SIMD",
            "10.0",
            None,
            "https://pypi.org/project/pillow-simd/10.0/",
            id="canonical-name",
        ),
        pytest.param(
            "numpy",
            "2.0.0",
            "https://pypi.python.org/simple/",
            "https://pypi.org/project/numpy/2.0.0/",
            id="legacy-pypi-host",
        ),
        pytest.param("numpy", None, None, "https://pypi.org/project/numpy/", id="pypi-no-version"),
        pytest.param(
            "My.Pkg",
            "1.0",
            "https://idx.example/simple/",
            "https://idx.example/simple/my-pkg/",
            id="other-index",
        ),
    ],
)
def test_release_url(name: str, version: str | None, index: str | None, url: str) -> None:
    assert release_url(name, version, index) == url


# -- terminal summary -----------------------------------------------------------------------


def test_render_summary_table() -> None:
    text = render_summary(
        run_result(
            changed("serve", NUMPY_UP, PILLOW_ADDED),
            unchanged("training"),
            failed("eval", "no release of ghost on the index matches the spec"),
        )
    )
    assert text.splitlines()[:4] == [
        "environment  status     changes              compile",
        "serve        changed    1 added, 1 upgraded     1.2s",
        "training     unchanged  none                    0.5s",
        "eval         failed     not-found               2.0s",
    ]


def test_render_summary_failure_notes_consistency_and_written() -> None:
    issues = (
        ConsistencyIssue("numpy", (("serve", "2.0.0"), ("train", "1.26.4")), required=True),
        ConsistencyIssue("six", (("serve", "1.16.0"), ("train", "1.15.0")), required=False),
    )
    text = render_summary(
        run_result(
            changed("serve", NUMPY_UP, notes=("dropped --pre",)),
            failed("train", "boom", "line one\nline two"),
            consistency=issues,
            written=("requirements/serve.txt",),
        )
    )
    assert text.splitlines()[3:] == [
        "note: serve: dropped --pre",
        "",
        "error: train: boom",
        "  | line one",
        "  | line two",
        "error: numpy differs across environments: serve 2.0.0, train 1.26.4",
        "note: six differs across environments: serve 1.16.0, train 1.15.0",
        "wrote requirements/serve.txt",
    ]


@pytest.mark.parametrize(
    ("dry_run", "written", "last"),
    [
        pytest.param(True, (), "dry run: nothing was written", id="dry-run"),
        pytest.param(False, ("a.txt", "b.txt"), "wrote a.txt, b.txt", id="written"),
        pytest.param(False, (), "eval         changed  1 upgraded     1.2s", id="nothing-written"),
    ],
)
def test_render_summary_last_line(dry_run: bool, written: tuple[str, ...], last: str) -> None:
    text = render_summary(run_result(changed("eval", NUMPY_UP), dry_run=dry_run, written=written))
    assert text.splitlines()[-1] == last


def test_render_summary_failure_kind_fallback() -> None:
    result = LockResult("serve", "s.in", "s.txt", "uv", "failed", error="boom")
    assert render_summary(run_result(result)).splitlines()[1].split()[2] == "failed"
