"""The JSON report of ``lockwarden run --json``: keys and values of the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.report.json_report import SCHEMA_VERSION, dumps, to_json
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
    hashes_added=("sha256:" + "a" * 64, "sha256:" + "c" * 64),
    hashes_removed=("sha256:" + "b" * 64,),
)

SERVE = LockResult(
    name="serve",
    spec="requirements/serve.in",
    lock="requirements/serve.txt",
    backend="uv",
    status="changed",
    diff=LockDiff((NUMPY_UP, PILLOW_ADDED, SIX_REMOVED, TORCH_HASH)),
    command=("uv", "pip", "compile", "requirements/serve.in"),
    compile_s=1.23456,
    notes=("dropped --no-deps: uv option with no pip-tools equivalent",),
)
TRAIN = LockResult(
    name="train",
    spec="requirements/train.in",
    lock="requirements/train.txt",
    backend="pip-tools",
    status="failed",
    constrained_by=("serve",),
    error="no release of ghost on the index matches the spec",
    failure="not-found",
    tool_output="ERROR: No matching distribution found for ghost",
    compile_s=0.5,
)
DOCS = LockResult(
    name="docs",
    spec="docs.in",
    lock="docs.txt",
    backend="pip-tools",
    status="unchanged",
    diff=LockDiff(()),
)
ISSUES = (
    ConsistencyIssue("numpy", (("serve", "2.0.0"), ("train", "1.26.4")), required=True),
    ConsistencyIssue("six", (("serve", "1.16.0"), ("docs", "1.15.0")), required=False),
)


def run_result(
    *results: LockResult,
    consistency: tuple[ConsistencyIssue, ...] = (),
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass
    dry_run: bool = False,
    written: tuple[str, ...] = (),
    index_url: str | None = None,
    source: str = ".github/lockwarden.yml",
) -> RunResult:
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(index_url=index_url), source=source),
        mode=mode,
        compiled=CompileStageResult(results, consistency, tuple(r.name for r in results)),
        written=written,
        dry_run=dry_run,
        duration_s=4.56789,
    )


def report(**kwargs: Any) -> dict[str, Any]:
    results = kwargs.pop("results", (SERVE, TRAIN, DOCS))
    return to_json(run_result(*results, **kwargs))


# -- keys -----------------------------------------------------------------------------------


def test_top_level_keys() -> None:
    assert list(report()) == [
        "schema_version",
        "repo",
        "mode",
        "upgrade_packages",
        "dry_run",
        "config_source",
        "builder",
        "environments",
        "consistency",
        "image_pins",
        "signals",
        "written",
        "failed",
        "timings",
    ]
    assert list(report()["signals"]) == [
        "advisories",
        "notes",
        "yanked",
        "held_back",
        "quarantine_passed",
    ]


def test_environment_keys() -> None:
    for environment in report()["environments"]:
        assert list(environment) == [
            "name",
            "spec",
            "lock",
            "backend",
            "status",
            "error",
            "failure",
            "tool_output",
            "constrained_by",
            "changes",
            "text_change",
            "platform",
            "outputs",
            "wheel_gaps",
            "wheels_unchecked",
            "command",
            "notes",
            "image",
            "tests",
            "lint",
            "timings",
        ]
        assert list(environment["timings"]) == ["compile_s"]


def test_change_keys() -> None:
    for change in report()["environments"][0]["changes"]:
        assert list(change) == [
            "name",
            "from",
            "to",
            "change",
            "kind",
            "direct",
            "marker",
            "hashes_added",
            "hashes_removed",
            "url",
            "groups",
            "groups_before",
            "build_before",
            "build_after",
            "marker_before",
            "files_changed",
        ]


def test_consistency_keys() -> None:
    for issue in report(consistency=ISSUES)["consistency"]:
        assert list(issue) == ["package", "versions", "required"]


# -- values ---------------------------------------------------------------------------------


def test_top_level_values() -> None:
    data = report(
        mode=CompileMode("targeted", ("numpy", "torch==2.4.0")),
        written=("requirements/serve.txt",),
        source="discovery",
    )
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["repo"] == "acme/ml-service"
    assert data["mode"] == "targeted"
    assert data["upgrade_packages"] == ["numpy", "torch==2.4.0"]
    assert data["dry_run"] is False
    assert data["config_source"] == "discovery"
    assert [e["name"] for e in data["environments"]] == ["serve", "train", "docs"]
    assert data["written"] == ["requirements/serve.txt"]
    assert data["failed"] is True
    assert data["timings"] == {"total_s": 4.568}


@pytest.mark.parametrize(
    ("results", "failed"),
    [
        pytest.param((SERVE, DOCS), False, id="no-failure"),
        pytest.param((SERVE, TRAIN), True, id="one-failed"),
        pytest.param((), False, id="empty"),
    ],
)
def test_failed_flag(results: tuple[LockResult, ...], failed: bool) -> None:
    assert report(results=results)["failed"] is failed


def test_changed_environment() -> None:
    serve = report()["environments"][0]
    assert serve["name"] == "serve"
    assert serve["spec"] == "requirements/serve.in"
    assert serve["lock"] == "requirements/serve.txt"
    assert serve["backend"] == "uv"
    assert serve["status"] == "changed"
    assert serve["error"] is None
    assert serve["failure"] is None
    assert serve["tool_output"] is None
    assert serve["constrained_by"] == []
    assert serve["command"] == ["uv", "pip", "compile", "requirements/serve.in"]
    assert serve["notes"] == ["dropped --no-deps: uv option with no pip-tools equivalent"]
    assert serve["timings"] == {"compile_s": 1.235}
    assert len(serve["changes"]) == 4


def test_failed_environment() -> None:
    train = report()["environments"][1]
    assert train["status"] == "failed"
    assert train["error"] == "no release of ghost on the index matches the spec"
    assert train["failure"] == "not-found"
    assert train["tool_output"] == "ERROR: No matching distribution found for ghost"
    assert train["constrained_by"] == ["serve"]
    assert train["changes"] == []


def test_unchanged_environment() -> None:
    docs = report()["environments"][2]
    assert (docs["status"], docs["changes"], docs["timings"]) == (
        "unchanged",
        [],
        {"compile_s": 0.0},
    )


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        pytest.param(
            0,
            {
                "name": "numpy",
                "from": "1.26.4",
                "to": "2.0.0",
                "change": "upgraded",
                "kind": "major",
                "direct": True,
                "marker": None,
                "hashes_added": 0,
                "hashes_removed": 0,
                "url": "https://pypi.org/project/numpy/2.0.0/",
                "groups": [],
                "groups_before": None,
                "build_before": None,
                "build_after": None,
                "marker_before": None,
                "files_changed": [],
            },
            id="upgraded",
        ),
        pytest.param(
            1,
            {
                "name": "pillow",
                "from": None,
                "to": "10.4.0",
                "change": "added",
                "kind": None,
                "direct": False,
                "marker": 'python_version < "3.12"',
                "hashes_added": 0,
                "hashes_removed": 0,
                "url": "https://pypi.org/project/pillow/10.4.0/",
                "groups": [],
                "groups_before": None,
                "build_before": None,
                "build_after": None,
                "marker_before": None,
                "files_changed": [],
            },
            id="added-with-marker",
        ),
        pytest.param(
            2,
            {
                "name": "six",
                "from": "1.16.0",
                "to": None,
                "change": "removed",
                "kind": None,
                "direct": False,
                "marker": None,
                "hashes_added": 0,
                "hashes_removed": 0,
                "url": "https://pypi.org/project/six/1.16.0/",
                "groups": [],
                "groups_before": None,
                "build_before": None,
                "build_after": None,
                "marker_before": None,
                "files_changed": [],
            },
            id="removed-links-old-release",
        ),
        pytest.param(
            3,
            {
                "name": "torch",
                "from": "2.3.0",
                "to": "2.3.0",
                "change": "hash-only",
                "kind": None,
                "direct": True,
                "marker": None,
                "hashes_added": 2,
                "hashes_removed": 1,
                "url": "https://pypi.org/project/torch/2.3.0/",
                "groups": [],
                "groups_before": None,
                "build_before": None,
                "build_after": None,
                "marker_before": None,
                "files_changed": [],
            },
            id="hash-only-counts",
        ),
    ],
)
def test_change_values(position: int, expected: dict[str, Any]) -> None:
    assert report()["environments"][0]["changes"][position] == expected


def test_change_url_on_a_configured_index() -> None:
    data = report(index_url="https://artifacts.acme.example/simple")
    urls = [c["url"] for c in data["environments"][0]["changes"]]
    assert urls == [
        "https://artifacts.acme.example/simple/numpy/",
        "https://artifacts.acme.example/simple/pillow/",
        "https://artifacts.acme.example/simple/six/",
        "https://artifacts.acme.example/simple/torch/",
    ]


def test_consistency_values() -> None:
    assert report(consistency=ISSUES)["consistency"] == [
        {"package": "numpy", "versions": {"serve": "2.0.0", "train": "1.26.4"}, "required": True},
        {"package": "six", "versions": {"serve": "1.16.0", "docs": "1.15.0"}, "required": False},
    ]


@pytest.mark.parametrize(
    ("mode", "name", "packages"),
    [
        pytest.param(CompileMode(), "minimal", [], id="minimal"),
        pytest.param(CompileMode("full"), "full", [], id="full"),
        pytest.param(CompileMode("targeted", ("numpy",)), "targeted", ["numpy"], id="targeted"),
    ],
)
def test_mode(mode: CompileMode, name: str, packages: list[str]) -> None:
    data = report(mode=mode)
    assert (data["mode"], data["upgrade_packages"]) == (name, packages)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
def test_dry_run(dry_run: bool) -> None:
    assert report(dry_run=dry_run)["dry_run"] is dry_run


# -- serialisation --------------------------------------------------------------------------


def test_dumps_is_json_of_to_json() -> None:
    result = run_result(SERVE, TRAIN, DOCS, consistency=ISSUES, written=("docs.txt",))
    text = dumps(result)
    assert text.endswith("}\n")
    assert json.loads(text) == to_json(result)
    assert text.startswith('{\n  "schema_version": 1,\n  "repo": "acme/ml-service",')


def test_report_is_plain_json() -> None:
    data = report(consistency=ISSUES)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
