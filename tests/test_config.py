"""Repository config: parsing with located errors, loading, discovery, the JSON schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config import (
    CONFIG_PATH,
    EnvironmentConfig,
    RepoConfig,
    Schedule,
    discover,
    json_schema,
    load_config,
    parse_config,
    unlocked_note,
)
from bot.errors import ConfigError

PATH = ".github/lockwarden.yml"


def parse(text: str) -> RepoConfig:
    return parse_config(textwrap.dedent(text), PATH)


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), "utf-8")


# -- parse_config: valid --------------------------------------------------------------------

FULL = """\
version: 1
environments:
  - name: serve
    spec: requirements/serve.in
    lock: requirements/serve.lock.txt
    python: "3.11"
    backend: uv
    compile_args: ["--no-emit-index-url", "--annotation-style=line"]
    dockerfile: docker/serve.Dockerfile
    context: services/serve
    image: ghcr.io/acme/serve
    test_command: ["python", "-c", "import torch"]
  - name: train
    spec: requirements/train.in
    constraints: [serve]
schedule:
  cron: "30 4 * * 2"
  timezone: Europe/Berlin
labels: [dependencies, ml]
reviewers: [alice, bob]
consistent: [numpy, torch]
index_url: https://pypi.example.com/simple
extra_index_urls:
  - https://download.pytorch.org/whl/cpu
"""


def test_parse_config_accepts_every_field() -> None:
    config = parse_config(FULL, PATH)
    serve, train = config.environments
    assert config.version == 1
    assert serve == EnvironmentConfig(
        name="serve",
        spec="requirements/serve.in",
        lock="requirements/serve.lock.txt",
        python="3.11",
        backend="uv",
        compile_args=("--no-emit-index-url", "--annotation-style=line"),
        dockerfile="docker/serve.Dockerfile",
        context="services/serve",
        image="ghcr.io/acme/serve",
        test_command=("python", "-c", "import torch"),
    )
    assert serve.lock_path == "requirements/serve.lock.txt"
    assert train.constraints == ("serve",)
    assert train.backend == "pip-tools"
    assert config.schedule == Schedule(cron="30 4 * * 2", timezone="Europe/Berlin")
    assert config.labels == ("dependencies", "ml")
    assert config.reviewers == ("alice", "bob")
    assert config.consistent == ("numpy", "torch")
    assert config.index_url == "https://pypi.example.com/simple"
    assert config.extra_index_urls == ("https://download.pytorch.org/whl/cpu",)
    assert config.environment("train") is train


def test_parse_config_defaults() -> None:
    config = parse("environments: []\n")
    assert config.environments == ()
    assert config.schedule == Schedule(cron="0 5 * * 1", timezone="UTC")
    assert config.labels == ("dependencies",)
    assert config.index_url is None


@pytest.mark.parametrize(
    ("spec", "lock", "expected"),
    [
        pytest.param("requirements/serve.in", None, "requirements/serve.txt", id="in-to-txt"),
        pytest.param("serve.in", None, "serve.txt", id="top-level"),
        pytest.param("deps/serve", None, "deps/serve.txt", id="no-suffix"),
        pytest.param("a.in", "locks/a.txt", "locks/a.txt", id="explicit-lock"),
        pytest.param("./reqs/./a.in", None, "reqs/a.txt", id="dot-segments-normalised"),
    ],
)
def test_lock_path(spec: str, lock: str | None, expected: str) -> None:
    assert EnvironmentConfig(name="a", spec=spec, lock=lock).lock_path == expected


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        pytest.param("pytest -q tests", ("pytest", "-q", "tests"), id="words"),
        pytest.param(
            "\"python -c 'import torch; print(1)'\"",
            ("python", "-c", "import torch; print(1)"),
            id="quoted-argument",
        ),
        pytest.param('["sh", "-c", "a b"]', ("sh", "-c", "a b"), id="list-kept-as-is"),
        pytest.param('""', (), id="empty-string"),
    ],
)
def test_test_command_string_is_split_with_shlex(
    yaml_value: str, expected: tuple[str, ...]
) -> None:
    text = f"environments:\n  - name: a\n    spec: a.in\n    test_command: {yaml_value}\n"
    assert parse_config(text, PATH).environments[0].test_command == expected


def test_environment_lookup_names_the_known_ones() -> None:
    config = parse("environments:\n  - name: a\n    spec: a.in\n")
    with pytest.raises(ConfigError, match=r"unknown environment 'b' \(known: a\)"):
        config.environment("b")


# -- parse_config: errors -------------------------------------------------------------------

ONE_ENV = "environments:\n  - name: a\n    spec: a.in\n"

ERROR_CASES = [
    pytest.param("environments: []\nfoo: 1\n", 2, "foo", "unknown field", id="unknown-top-field"),
    pytest.param(
        ONE_ENV + "    bogus: 1\n",
        4,
        "environments[0].bogus",
        "unknown field",
        id="unknown-environment-field",
    ),
    pytest.param(
        ONE_ENV + "    constraints: 3\n",
        4,
        "environments[0].constraints",
        "valid tuple",
        id="wrong-type",
    ),
    pytest.param("labels: dependencies\n", 1, "labels", "valid tuple", id="wrong-type-top-level"),
    pytest.param(
        ONE_ENV + "  - name: b\n    spec: b.in\n    backend: pdm\n",
        6,
        "environments[1].backend",
        "'pip-tools', 'uv', 'poetry' or 'conda'",
        id="invalid-backend",
    ),
    pytest.param(
        "environments:\n  - name: -bad\n    spec: a.in\n",
        2,
        "environments[0].name",
        "should match pattern",
        id="bad-env-name",
    ),
    pytest.param(
        "environments:\n  - name: a b\n    spec: a.in\n",
        2,
        "environments[0].name",
        "should match pattern",
        id="env-name-with-space",
    ),
    pytest.param(
        ONE_ENV + "    python: '2.7'\n",
        4,
        "environments[0].python",
        "should match pattern",
        id="bad-python-version",
    ),
    pytest.param(
        ONE_ENV + "    python: '3.11.4'\n",
        4,
        "environments[0].python",
        "should match pattern",
        id="python-with-patch",
    ),
    pytest.param(
        ONE_ENV + "    python: 3.10\n",
        4,
        "environments[0].python",
        "write the version in quotes",
        id="python-as-yaml-float",
    ),
    pytest.param(
        "environments:\n  - name: a\n    spec: /etc/a.in\n",
        3,
        "environments[0].spec",
        "must be a path inside the repository",
        id="absolute-spec",
    ),
    pytest.param(
        "environments:\n  - name: a\n    spec: ../a.in\n",
        3,
        "environments[0].spec",
        "must be a path inside the repository",
        id="dotdot-spec",
    ),
    pytest.param(
        ONE_ENV + "    dockerfile: docker/../../Dockerfile\n",
        4,
        "environments[0].dockerfile",
        "must be a path inside the repository",
        id="dotdot-dockerfile",
    ),
    pytest.param(
        ONE_ENV + "  - name: a\n    spec: b.in\n",
        4,
        "environments[1].name",
        "duplicate name 'a'",
        id="duplicate-environment-name",
    ),
    pytest.param(
        ONE_ENV + "    constraints: [serve]\n",
        4,
        "environments[0].constraints[0]",
        "unknown environment 'serve' (known: a)",
        id="constraint-unknown-environment",
    ),
    pytest.param(
        ONE_ENV + "  - name: b\n    spec: b.in\n    constraints:\n      - a\n      - b\n",
        8,
        "environments[1].constraints[1]",
        "cannot constrain itself",
        id="self-constraint",
    ),
    pytest.param(
        ONE_ENV + "  - name: b\n    spec: b.in\n    lock: a.txt\n",
        6,
        "environments[1].lock",
        "lock a.txt is used twice",
        id="duplicate-lock-path",
    ),
    pytest.param(
        ONE_ENV + "    compile_args: ['--upgrade']\n",
        4,
        "environments[0].compile_args",
        "--upgrade is managed by Lockwarden",
        id="managed-upgrade",
    ),
    pytest.param(
        ONE_ENV + "    compile_args:\n      - --no-header\n      - -o\n",
        4,
        "environments[0].compile_args",
        "-o is managed by Lockwarden",
        id="managed-short-output",
    ),
    pytest.param(
        ONE_ENV + "    compile_args: ['--output-file=x']\n",
        4,
        "environments[0].compile_args",
        "--output-file is managed by Lockwarden",
        id="managed-output-file-with-value",
    ),
    pytest.param(
        ONE_ENV + '    compile_args: ["--extra=a\\nb"]\n',
        4,
        "environments[0].compile_args",
        "cannot contain newlines",
        id="newline-in-arg",
    ),
    pytest.param(
        ONE_ENV + '    test_command: "pytest \'x"\n',
        4,
        "environments[0].test_command",
        "cannot split command",
        id="unsplittable-test-command",
    ),
    pytest.param(
        "environments:\n  - name: a\n",
        2,
        "environments[0].spec",
        "required field is missing",
        id="missing-spec",
    ),
    pytest.param(
        "environments: []\nschedule:\n  cron: '0 5 * *'\n",
        3,
        "schedule.cron",
        "cron needs five fields",
        id="cron-four-fields",
    ),
    pytest.param(
        "environments: []\nschedule:\n  cron: '0 5 * * 1 2026'\n",
        3,
        "schedule.cron",
        "cron needs five fields",
        id="cron-six-fields",
    ),
    pytest.param(
        "environments: []\nschedule:\n  timezone: Mars/Olympus\n",
        3,
        "schedule.timezone",
        "unknown time zone 'Mars/Olympus'",
        id="unknown-time-zone",
    ),
    pytest.param("version: 2\n", 1, "version", "Input should be 1", id="unsupported-version"),
    pytest.param(
        "environments: []\nlabels: []\nlabels: [x]\n",
        3,
        "labels",
        "duplicate key",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        ONE_ENV + "    spec: b.in\n",
        4,
        "environments[0].spec",
        "duplicate key",
        id="duplicate-nested-key",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), ERROR_CASES)
def test_parse_config_errors_name_file_line_and_field(
    text: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, PATH)
    error = caught.value
    assert (error.path, error.line, error.field) == (PATH, line, field)
    assert str(error).startswith(f"{PATH}:{line} (field '{field}'): ")
    assert message in str(error)
    assert error.code == "config"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "environments:\n  - name: a\n    spec: [a.in\nlabels: []\n",
            4,
            "invalid YAML",
            id="unclosed-flow-sequence",
        ),
        pytest.param("environments: []\nlabels: a: b\n", 2, "invalid YAML", id="mapping-in-scalar"),
        pytest.param("environments: []\n\tlabels: []\n", 2, "invalid YAML", id="tab-indent"),
        pytest.param("a: 1\n---\nb: 2\n", 2, "invalid YAML", id="two-documents"),
        pytest.param(
            "environments: []\nlabels: [\x07]\n",
            2,
            "invalid YAML: unacceptable character #x0007",
            id="control-character",
        ),
        pytest.param("", 1, "the file is empty", id="empty-file"),
        pytest.param("# only a comment\n", 1, "the file is empty", id="only-comments"),
        pytest.param("- a\n- b\n", 1, "the top level must be a mapping", id="top-level-list"),
        pytest.param("just text\n", 1, "the top level must be a mapping", id="top-level-scalar"),
        pytest.param("1: x\n", 1, "keys must be strings", id="integer-key"),
    ],
)
def test_parse_config_document_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, PATH)
    assert caught.value.line == line
    assert caught.value.field is None
    assert str(caught.value).startswith(f"{PATH}:{line}: ")
    assert message in str(caught.value)


# -- load_config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    [
        pytest.param(".github/lockwarden.yml", id="yml"),
        pytest.param(".github/lockwarden.yaml", id="yaml"),
    ],
)
def test_load_config_reads_the_config_file(tmp_path: Path, relative: str) -> None:
    write(tmp_path, {relative: ONE_ENV, "requirements/other.in": "numpy\n"})
    loaded = load_config(tmp_path)
    assert loaded.source == relative
    assert loaded.discovered == ()
    assert [e.name for e in loaded.config.environments] == ["a"]


def test_load_config_prefers_yml_over_yaml(tmp_path: Path) -> None:
    write(
        tmp_path,
        {CONFIG_PATH: ONE_ENV, ".github/lockwarden.yaml": "environments: []\n"},
    )
    assert load_config(tmp_path).source == CONFIG_PATH


def test_load_config_errors_name_the_file_found(tmp_path: Path) -> None:
    write(tmp_path, {".github/lockwarden.yaml": "environments: []\nfoo: 1\n"})
    with pytest.raises(ConfigError, match=r"^\.github/lockwarden\.yaml:2 \(field 'foo'\)"):
        load_config(tmp_path)


def test_load_config_falls_back_to_discovery(tmp_path: Path) -> None:
    write(tmp_path, {"requirements/serve.in": "numpy\n", "requirements/serve.txt": ""})
    loaded = load_config(tmp_path)
    assert loaded.source == "discovery"
    assert [e.name for e in loaded.config.environments] == ["serve"]


# -- discover -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "requirements/serve.in": "",
                "requirements/serve.txt": "",
                "requirements/train.in": "",
                "requirements/train.txt": "",
            },
            [
                ("serve", "requirements/serve.in", "requirements/serve.txt"),
                ("train", "requirements/train.in", "requirements/train.txt"),
            ],
            id="requirements-dir",
        ),
        pytest.param(
            {"requirements-dev.in": "", "requirements-dev.txt": ""},
            [("dev", "requirements-dev.in", "requirements-dev.txt")],
            id="requirements-dash",
        ),
        pytest.param(
            {"requirements.in": "", "requirements.txt": ""},
            [("main", "requirements.in", "requirements.txt")],
            id="requirements-in-is-main",
        ),
        pytest.param(
            {"docs.in": "", "docs.txt": ""},
            [("docs", "docs.in", "docs.txt")],
            id="top-level-in-beside-its-txt",
        ),
        pytest.param({"docs.in": ""}, [], id="top-level-in-without-txt-ignored"),
        pytest.param(
            {"MANIFEST.in": "include README\n", "MANIFEST.txt": ""}, [], id="manifest-ignored"
        ),
        pytest.param(
            {"requirements/nested/x.in": "", "requirements/nested/x.txt": ""},
            [],
            id="nested-dir-ignored",
        ),
        pytest.param(
            {"requirements/-bad.in": "", "requirements/-bad.txt": ""},
            [],
            id="invalid-env-name-ignored",
        ),
        pytest.param({"setup.cfg": "", "README.md": ""}, [], id="nothing"),
        pytest.param(
            {
                "requirements.in": "",
                "requirements.txt": "",
                "requirements/serve.in": "",
                "requirements/serve.txt": "",
                "lint.in": "",
                "lint.txt": "",
            },
            [
                ("lint", "lint.in", "lint.txt"),
                ("main", "requirements.in", "requirements.txt"),
                ("serve", "requirements/serve.in", "requirements/serve.txt"),
            ],
            id="mixed-conventions-sorted-by-path",
        ),
    ],
)
def test_discover_finds_specs_by_convention(
    tmp_path: Path, files: dict[str, str], expected: list[tuple[str, str, str]]
) -> None:
    write(tmp_path, files)
    loaded = discover(tmp_path)
    assert loaded.source == "discovery"
    assert [(e.name, e.spec, e.lock_path) for e in loaded.config.environments] == expected


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "requirements/serve.in": "numpy\n",
                "requirements/train.in": "-c serve.txt\ntorch\n",
            },
            {"serve": (), "train": ("serve",)},
            id="direct-c-line-relative-to-spec",
        ),
        pytest.param(
            {
                "requirements/serve.in": "numpy\n",
                "requirements/train.in": "-r common/base.in\ntorch\n",
                "requirements/common/base.in": "-c ../serve.txt\n",
            },
            {"serve": (), "train": ("serve",)},
            id="c-line-through-r-include",
        ),
        pytest.param(
            {
                "requirements.in": "numpy\n",
                "requirements-dev.in": "-c requirements.txt\n",
                "requirements/eval.in": "-c ../requirements.txt\n-c ../requirements-dev.txt\n",
            },
            {"main": (), "dev": ("main",), "eval": ("dev", "main")},
            id="several-upstreams-sorted",
        ),
        pytest.param(
            {"requirements/serve.in": "-c serve.txt\n"},
            {"serve": ()},
            id="own-lock-is-no-edge",
        ),
        pytest.param(
            {"requirements/serve.in": "-c constraints.txt\n"},
            {"serve": ()},
            id="non-lock-constraint-ignored",
        ),
        pytest.param(
            {"requirements/serve.in": "-c ../requirements/train.txt\n"},
            {"serve": ()},
            id="constraint-on-unknown-env-lock-ignored",
        ),
    ],
)
def test_discover_constraint_edges(
    tmp_path: Path, files: dict[str, str], expected: dict[str, tuple[str, ...]]
) -> None:
    write(tmp_path, files)
    locks = [Path(path).with_suffix(".txt") for path in files if path.count("/") < 2]
    write(tmp_path, {str(lock): "" for lock in locks})
    config = discover(tmp_path).config
    assert {e.name: e.constraints for e in config.environments} == expected


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        pytest.param("Dockerfile.serve", "Dockerfile.serve", id="Dockerfile-dot-env"),
        pytest.param("serve.Dockerfile", "serve.Dockerfile", id="env-dot-Dockerfile"),
        pytest.param(
            "docker/serve.Dockerfile", "docker/serve.Dockerfile", id="docker-dir-env-Dockerfile"
        ),
        pytest.param("Dockerfile", None, id="plain-Dockerfile-not-matched"),
        pytest.param("Dockerfile.train", None, id="other-env-Dockerfile"),
    ],
)
def test_discover_dockerfiles(tmp_path: Path, dockerfile: str, expected: str | None) -> None:
    write(
        tmp_path,
        {
            "requirements/serve.in": "",
            "requirements/serve.txt": "",
            dockerfile: "FROM python:3.11\n",
        },
    )
    (env,) = discover(tmp_path).config.environments
    assert env.dockerfile == expected


def test_discover_dockerfile_pattern_priority(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements/serve.in": "",
            "requirements/serve.txt": "",
            "docker/serve.Dockerfile": "",
            "serve.Dockerfile": "",
            "Dockerfile.serve": "",
        },
    )
    assert discover(tmp_path).config.environments[0].dockerfile == "Dockerfile.serve"


def test_discover_notes(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements/serve.in": "numpy\n",
            "requirements/serve.txt": "numpy==2.0.0\n",
            "requirements/train.in": "-c serve.txt\ntorch\n",
            "requirements/train.txt": "torch==2.0.0\n",
            "Dockerfile.train": "FROM python:3.11\n",
        },
    )
    assert discover(tmp_path).discovered == (
        "serve: requirements/serve.in -> requirements/serve.txt",
        "train: requirements/train.in -> requirements/train.txt; "
        "constrained by serve; image from Dockerfile.train",
    )


def test_discover_proposes_only_specs_that_have_a_lock(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements/serve.in": "-c dev.txt\nnumpy\n",
            "requirements/serve.txt": "numpy==2.0.0\n",
            # lock-less specs: one constrained by serve, one that serve's spec points at
            "requirements/train.in": "-c serve.txt\ntorch\n",
            "requirements/dev.in": "pytest\n",
            "requirements/lint.in": "-c dev.txt\nruff\n",
        },
    )

    loaded = discover(tmp_path)

    (serve,) = loaded.config.environments
    assert (serve.name, serve.constraints) == ("serve", ())  # dev is no environment
    assert loaded.discovered == ("serve: requirements/serve.in -> requirements/serve.txt",)
    assert [(e.name, e.spec, e.constraints) for e in loaded.unlocked] == [
        ("dev", "requirements/dev.in", ()),
        ("lint", "requirements/lint.in", ("dev",)),
        ("train", "requirements/train.in", ("serve",)),
    ]
    assert unlocked_note(loaded.unlocked[0]) == "requirements/dev.in: no requirements/dev.txt"
    # A proposal for a person to review lists them all, edges included.
    assert [e.name for e in loaded.proposal().environments] == ["serve", "dev", "lint", "train"]


def test_discover_nothing_is_an_empty_config(tmp_path: Path) -> None:
    loaded = discover(tmp_path)
    assert loaded.config.environments == ()
    assert loaded.discovered == ()


# -- json_schema ----------------------------------------------------------------------------


def test_json_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "lockwarden.yml" in schema["title"]
    assert "environments" in schema["properties"]
    assert schema["additionalProperties"] is False
    env = schema["$defs"]["EnvironmentConfig"]
    assert env["required"] == ["name", "spec"]
    assert env["properties"]["backend"]["enum"] == ["pip-tools", "uv", "poetry", "conda"]


@pytest.mark.parametrize(
    ("where", "field"),
    [
        pytest.param(("properties",), "environments", id="environments"),
        pytest.param(("properties",), "consistent", id="consistent"),
        pytest.param(("properties",), "index_url", id="index_url"),
        pytest.param(("$defs", "EnvironmentConfig", "properties"), "spec", id="env-spec"),
        pytest.param(("$defs", "EnvironmentConfig", "properties"), "backend", id="env-backend"),
        pytest.param(("$defs", "EnvironmentConfig", "properties"), "python", id="env-python"),
        pytest.param(
            ("$defs", "EnvironmentConfig", "properties"), "test_command", id="env-test_command"
        ),
        pytest.param(("$defs", "Schedule", "properties"), "cron", id="schedule-cron"),
        pytest.param(("$defs", "Schedule", "properties"), "timezone", id="schedule-timezone"),
    ],
)
def test_json_schema_fields_have_descriptions(where: tuple[str, ...], field: str) -> None:
    node = json_schema()
    for key in where:
        node = node[key]
    assert node[field]["description"]
