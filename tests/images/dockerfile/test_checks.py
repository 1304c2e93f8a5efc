"""Dockerfile checks: Lockwarden's lock rules, hadolint's generic ones, file:line."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.images import Finding
from bot.images.dockerfile.checks import RULES, check_dockerfile

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ml-service"
LOCK = "requirements/serve.txt"

GOOD = """\
FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv
COPY requirements/serve.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY src/ src/
USER 10001
CMD ["/opt/venv/bin/python", "-m", "app"]
"""


def check(
    tmp_path: Path,
    text: str,
    *,
    lock: str | None = LOCK,
    hashes: bool = True,
    hadolint: bool = False,
    **options: object,
) -> tuple[Finding, ...]:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_dockerfile(
        path,
        display_path="envs/serve/Dockerfile",
        lock_path=lock,
        lock_has_hashes=hashes,
        run_hadolint=hadolint,
        **options,  # type: ignore[arg-type]
    )


def located(findings: tuple[Finding, ...]) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in findings]


@dataclass(frozen=True)
class Case:
    rule: str
    dockerfile: str
    lines: tuple[int, ...]
    """Lines where ``rule`` must be reported (and nowhere else); () for a fixed file."""
    lock: str | None = LOCK
    hashes: bool = True


CASES = [
    # LW001: installed from a spec, a name, the project or another file instead of the lock
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.in /tmp/requirements.in
            RUN pip install --no-cache-dir -r /tmp/requirements.in
            """,
            (3,),
        ),
        id="LW001-spec-file",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.in /tmp/requirements.txt
            RUN pip install --no-cache-dir -r /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW001-spec-copied-under-a-txt-name",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/base.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW001-another-txt-than-the-lock",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
            """,
            (),
        ),
        id="LW001-fixed-lock-copied-to-tmp",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            WORKDIR /app
            COPY requirements/ requirements/
            RUN pip install --no-cache-dir --require-hashes -r requirements/serve.txt
            """,
            (),
        ),
        id="LW001-fixed-lock-in-copied-directory",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            RUN --mount=type=bind,source=requirements/serve.txt,target=/tmp/r.txt \\
                pip install --no-cache-dir --require-hashes -r /tmp/r.txt
            """,
            (),
        ),
        id="LW001-fixed-lock-bind-mounted",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
            COPY . /app
            RUN pip install --no-cache-dir /app
            """,
            (5,),
        ),
        id="LW001-project-directory",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            WORKDIR /app
            COPY . .
            RUN pip install --no-cache-dir -e .
            """,
            (4,),
        ),
        id="LW001-editable-project",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            WORKDIR /app
            COPY . .
            RUN pip install --no-cache-dir --no-deps .
            """,
            (),
        ),
        id="LW001-fixed-project-with-no-deps",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY pyproject.toml /app/
            RUN uv pip install --system --no-cache -r /app/pyproject.toml
            """,
            (3,),
        ),
        id="LW001-uv-pyproject",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            RUN pip install --no-cache-dir numpy "pandas>=2"
            """,
            (2,),
        ),
        id="LW001-bare-and-ranged-names",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            RUN pip install --no-cache-dir numpy==1.26.4
            """,
            (),
        ),
        id="LW001-fixed-exact-pin",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY pyproject.toml poetry.lock ./
            RUN pip install --no-cache-dir poetry==1.8.3 && poetry install --no-root
            """,
            (3,),
        ),
        id="LW001-poetry-install",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.in /tmp/
            RUN pip install --no-cache-dir pip-tools==7.4.1 \\
                && pip-compile --generate-hashes -o /tmp/lock.txt /tmp/serve.in
            """,
            (3,),
        ),
        id="LW001-pip-compile-in-image",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.in /tmp/
            RUN uv pip compile /tmp/serve.in -o /tmp/lock.txt
            """,
            (3,),
        ),
        id="LW001-uv-pip-compile-in-image",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.in /tmp/
            RUN uv pip install --system --no-cache -r /tmp/serve.in
            """,
            (3,),
        ),
        id="LW001-uv-pip-install-spec",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/ /tmp/requirements/
            RUN python -m piptools compile /tmp/requirements/serve.in \\
                && pip-sync --pip-args "--no-cache-dir --require-hashes" /tmp/requirements/serve.in
            RUN uv lock && pipenv install --deploy
            """,
            (3, 3, 5, 5),
        ),
        id="LW001-more-resolvers-in-image",
    ),
    pytest.param(
        Case(
            "LW001",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/
            RUN pip-sync --pip-args "--no-cache-dir --require-hashes" /tmp/serve.txt
            """,
            (),
        ),
        id="LW001-fixed-pip-sync-of-the-lock",
    ),
    # LW002: source copied before the lock install
    pytest.param(
        Case(
            "LW002",
            """\
            FROM python:3.11-slim
            WORKDIR /app
            COPY . .
            RUN pip install --no-cache-dir --require-hashes -r requirements/serve.txt
            """,
            (3,),
        ),
        id="LW002-whole-context",
    ),
    pytest.param(
        Case(
            "LW002",
            """\
            FROM python:3.11-slim
            COPY src/ /app/src/
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
            """,
            (2,),
        ),
        id="LW002-source-directory",
    ),
    pytest.param(
        Case(
            "LW002",
            """\
            FROM python:3.11-slim
            COPY requirements/ /tmp/requirements/
            COPY constraints.txt /tmp/
            RUN pip install --no-cache-dir --require-hashes \\
                -c /tmp/constraints.txt -r /tmp/requirements/serve.txt
            WORKDIR /app
            COPY . .
            """,
            (),
        ),
        id="LW002-fixed-requirements-first-source-after",
    ),
    pytest.param(
        Case(
            "LW002",
            """\
            FROM python:3.12-slim AS build
            COPY --from=ghcr.io/astral-sh/uv:0.5.0 /uv /bin/uv
            WORKDIR /app
            RUN --mount=type=cache,target=/root/.cache/uv \\
                --mount=type=bind,source=uv.lock,target=uv.lock \\
                --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\
                uv sync --frozen --no-install-project
            COPY . /app
            RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen
            FROM python:3.12-slim
            COPY --from=build /app /app
            """,
            (),
            lock="uv.lock",
        ),
        id="LW002-fixed-uv-sync-dependencies-then-project",
    ),
    # LW003: hashed lock installed without --require-hashes
    pytest.param(
        Case(
            "LW003",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir -r /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW003-no-require-hashes",
    ),
    pytest.param(
        Case(
            "LW003",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN uv pip sync --system --no-cache /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW003-uv-pip-sync",
    ),
    pytest.param(
        Case(
            "LW003",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir -r /tmp/requirements.txt
            """,
            (),
            hashes=False,
        ),
        id="LW003-fixed-lock-without-hashes",
    ),
    pytest.param(
        Case(
            "LW003",
            """\
            FROM python:3.11-slim
            ENV PIP_REQUIRE_HASHES=1
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir -r /tmp/requirements.txt
            """,
            (),
        ),
        id="LW003-fixed-by-env",
    ),
    # LW004: build tools in the final stage
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim
            RUN apt-get update \\
                && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 \\
                && rm -rf /var/lib/apt/lists/*
            """,
            (2,),
        ),
        id="LW004-single-stage-compiler",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim AS build
            RUN apt-get install -y --no-install-recommends gcc=4:12.2.0-3 python3-dev=3.11.2-1
            FROM python:3.11-slim
            COPY --from=build /opt/venv /opt/venv
            """,
            (),
        ),
        id="LW004-fixed-tools-only-in-build-stage",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim AS build
            RUN python -m venv /opt/venv
            FROM python:3.11-slim
            COPY --from=build /opt/venv /opt/venv
            RUN apt-get install -y --no-install-recommends libpq-dev=15.8-0+deb12u1
            """,
            (5,),
        ),
        id="LW004-dev-package-in-final-stage",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim AS build
            RUN python -m venv /opt/venv
            FROM python:3.11-slim
            COPY --from=build /opt/venv /opt/venv
            RUN pip install --no-cache-dir uv==0.5.0
            """,
            (5,),
        ),
        id="LW004-uv-in-final-stage",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim
            COPY --from=ghcr.io/astral-sh/uv:0.5.0 /uv /bin/uv
            """,
            (2,),
        ),
        id="LW004-uv-binary-copied-in",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim AS build
            RUN apt-get install -y build-essential=12.9
            FROM build AS final
            CMD ["python"]
            """,
            (2,),
        ),
        id="LW004-final-stage-built-from-build-stage",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-alpine
            RUN apk add --no-cache --virtual .build-deps gcc=13.2.1-r0 musl-dev=1.2.4-r2 \\
                && pip install --no-cache-dir --no-deps /wheels/*.whl \\
                && apk del .build-deps
            """,
            (),
        ),
        id="LW004-fixed-apk-virtual-group-deleted",
    ),
    pytest.param(
        Case(
            "LW004",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/
            RUN apt-get install -y --no-install-recommends gcc=4:12.2.0-3 \\
                && pip install --no-cache-dir uv==0.5.0 \\
                && uv pip sync --system --no-cache --require-hashes /tmp/serve.txt \\
                && pip uninstall -y uv \\
                && apt-get purge -y --auto-remove gcc
            """,
            (),
        ),
        id="LW004-fixed-tools-removed-in-the-same-layer",
    ),
    # LW005: unpinned OS packages
    pytest.param(
        Case(
            "LW005",
            """\
            FROM python:3.11-slim
            RUN apt-get update && apt-get install -y --no-install-recommends curl tini
            """,
            (2,),
        ),
        id="LW005-apt-get",
    ),
    pytest.param(
        Case(
            "LW005",
            """\
            FROM python:3.11-slim
            RUN apt install -y curl=7.88.1-10+deb12u8 tini
            """,
            (2,),
        ),
        id="LW005-apt-one-unpinned",
    ),
    pytest.param(
        Case(
            "LW005",
            """\
            FROM python:3.11-alpine
            RUN apk add --no-cache tini
            """,
            (2,),
        ),
        id="LW005-apk",
    ),
    pytest.param(
        Case(
            "LW005",
            """\
            FROM python:3.11-slim
            RUN apt-get update \\
                && apt-get install -y -o Dpkg::Use-Pty=0 --no-install-recommends \\
                    curl=7.88.1-10+deb12u8 tini=0.19.0-1+b3 \\
                && apk add --no-cache tini=0.19.0-r3
            """,
            (),
        ),
        id="LW005-fixed-pinned",
    ),
    # LW006: upgrades inside the image
    pytest.param(
        Case(
            "LW006",
            """\
            FROM python:3.11-slim
            RUN pip install --no-cache-dir --upgrade pip
            """,
            (2,),
        ),
        id="LW006-upgrade-pip",
    ),
    pytest.param(
        Case(
            "LW006",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --no-cache-dir --require-hashes -qU -r /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW006-short-flag-cluster",
    ),
    pytest.param(
        Case(
            "LW006",
            """\
            FROM python:3.11-slim
            RUN python -m venv --upgrade-deps /opt/venv
            """,
            (2,),
        ),
        id="LW006-venv-upgrade-deps",
    ),
    pytest.param(
        Case(
            "LW006",
            """\
            FROM python:3.11-slim
            RUN python -m venv /opt/venv
            """,
            (),
        ),
        id="LW006-fixed",
    ),
    # LW007: pip cache left in the image
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --require-hashes -r /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW007-pip-cache",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN uv pip sync --system --require-hashes /tmp/requirements.txt
            """,
            (3,),
        ),
        id="LW007-uv-cache",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            ARG PIP_NO_CACHE_DIR=1
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --require-hashes -r /tmp/requirements.txt
            """,
            (),
        ),
        id="LW007-fixed-by-arg",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            ENV PIP_NO_CACHE_DIR=1
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --require-hashes -r /tmp/requirements.txt
            """,
            (),
        ),
        id="LW007-fixed-by-env",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN --mount=type=cache,target=/root/.cache/pip \\
                pip install --require-hashes -r /tmp/requirements.txt
            """,
            (),
        ),
        id="LW007-fixed-by-cache-mount",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim AS build
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --require-hashes --target /opt/site -r /tmp/requirements.txt
            FROM python:3.11-slim
            COPY --from=build /opt/site /opt/site
            """,
            (),
        ),
        id="LW007-fixed-cache-only-in-build-stage",
    ),
    pytest.param(
        Case(
            "LW007",
            """\
            FROM python:3.11-slim
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN pip install --require-hashes -r /tmp/requirements.txt && pip cache purge
            RUN uv pip sync --system --require-hashes /tmp/requirements.txt && rm -rf /root/.cache
            """,
            (),
        ),
        id="LW007-fixed-cache-removed-in-the-same-layer",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_rule(tmp_path: Path, case: Case) -> None:
    findings = check(tmp_path, case.dockerfile, lock=case.lock, hashes=case.hashes)
    assert [f.line for f in findings if f.rule == case.rule] == list(case.lines), findings
    for finding in findings:
        assert finding.file == "envs/serve/Dockerfile"
        assert finding.source == "lockwarden"
        assert finding.severity == RULES[finding.rule][0]
        assert finding.message


def test_good_dockerfile_has_no_findings(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD) == ()


def test_messages_say_what_and_how(tmp_path: Path) -> None:
    findings = check(
        tmp_path,
        """\
        FROM python:3.11-slim
        WORKDIR /app
        COPY . .
        RUN pip install -r requirements/serve.in
        """,
    )
    by_rule = {f.rule: f.message for f in findings}
    assert set(by_rule) == {"LW001", "LW002", "LW007"}
    assert "requirements/serve.in" in by_rule["LW001"]
    assert "requirements/serve.txt" in by_rule["LW001"]
    assert "the whole build context" in by_rule["LW002"]
    assert "line 4" in by_rule["LW002"]
    assert "--no-cache-dir" in by_rule["LW007"]


def test_single_stage_build_tools_suggest_multi_stage(tmp_path: Path) -> None:
    (finding,) = check(
        tmp_path,
        """\
        FROM python:3.11-slim
        RUN apt-get install -y gcc=4:12.2.0-3 libffi-dev=3.4.4-1
        """,
    )
    assert finding.rule == "LW004"
    assert "gcc, libffi-dev" in finding.message
    assert "multi-stage" in finding.message


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        pytest.param(
            """\
            FROM python:3.11-slim
            RUN set -eux; \\
                apt-get update; \\
                # tini reaps zombies
                apt-get install -y --no-install-recommends \\
                    tini; \\
                rm -rf /var/lib/apt/lists/*
            """,
            [("LW005", 2)],
            id="continuation-with-comment-reports-first-line",
        ),
        pytest.param(
            """\
            # syntax=docker/dockerfile:1.7
            # escape=`
            FROM python:3.11-slim
            RUN pip install `
                --no-cache-dir numpy
            """,
            [("LW001", 4)],
            id="escape-directive",
        ),
        pytest.param(
            """\
            # syntax=docker/dockerfile:1.7
            ARG PYTHON=3.11
            FROM python:${PYTHON}-slim AS build
            COPY requirements/serve.txt /tmp/requirements.txt
            RUN <<EOF
            set -eu
            # the comment and the next line belong to the heredoc, not the Dockerfile
            pip install --no-cache-dir -r /tmp/requirements.txt
            EOF

            FROM python:${PYTHON}-slim
            RUN apt-get install -y curl
            """,
            [("LW003", 5), ("LW005", 12)],
            id="heredoc-arg-before-from-named-stages",
        ),
        pytest.param(
            """\
            FROM python:3.11-slim
            RUN cat <<EOF > /etc/pip.conf
            [global]
            no-cache-dir = true
            EOF
            RUN ["pip", "install", "--no-cache-dir", "numpy"]
            RUN ["/bin/sh", "-c", "pip install --no-cache-dir --upgrade pip"]
            """,
            [("LW001", 6), ("LW006", 7)],
            id="heredoc-data-and-exec-form",
        ),
        pytest.param(
            """\
            FROM python:3.11-slim
            RUN bash -o pipefail -c 'cd /tmp && PIP_NO_CACHE_DIR=1 pip install numpy'
            """,
            [("LW001", 2)],
            id="sh-c-with-inline-env",
        ),
    ],
)
def test_parsing(tmp_path: Path, dockerfile: str, expected: list[tuple[str, int]]) -> None:
    assert located(check(tmp_path, dockerfile)) == expected


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        pytest.param(b"FROM python:3.11\nRUN echo \xff\xfe\n", 2, "UTF-8", id="not-utf8"),
        pytest.param(b"FROM python:3.11\nFORM x\n", 2, "unknown instruction", id="typo"),
        pytest.param(b"# nothing\n", 1, "no FROM", id="no-from"),
        pytest.param(b"RUN true\nFROM python:3.11\n", 1, "before FROM", id="run-before-from"),
        pytest.param(b"FROM python:3.11\nRUN\n", 2, "no arguments", id="empty-run"),
        pytest.param(b"FROM python:3.11\nRUN <<EOF\ntrue\n", 2, "never closed", id="heredoc"),
    ],
)
def test_unreadable_dockerfile_is_a_finding(
    tmp_path: Path, content: bytes, line: int, words: str
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(content)
    (finding,) = check_dockerfile(
        path, display_path="Dockerfile", lock_path=LOCK, lock_has_hashes=True
    )
    assert (finding.rule, finding.severity, finding.line) == ("LW100", "error", line)
    assert words in finding.message


@pytest.mark.parametrize(
    ("name", "words"),
    [("Dockerfile.nope", "no such Dockerfile"), (".", "is a directory")],
    ids=["missing", "directory"],
)
def test_a_file_that_cannot_be_opened_raises(tmp_path: Path, name: str, words: str) -> None:
    path = tmp_path / name
    with pytest.raises(LockwardenError, match=words) as caught:
        check_dockerfile(path, display_path="x", lock_path=LOCK, lock_has_hashes=True)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- options


def test_severity_overrides_and_ignore(tmp_path: Path) -> None:
    text = """\
        FROM python:latest
        MAINTAINER someone@example.com
        RUN apt-get install -y curl && pip install --no-deps --require-hashes -r /r.txt
        """
    findings = check(
        tmp_path,
        text,
        hadolint=True,
        severities={"LW007": "error", "DL3007": "style"},
        ignore=["LW005", "DL4000"],
    )
    rules = {f.rule: f.severity for f in findings}
    assert rules["LW007"] == "error"
    assert rules["DL3007"] == "style"
    assert "LW005" not in rules
    assert "DL4000" not in rules


@pytest.mark.parametrize(
    ("dockerfile", "lock", "expected"),
    [
        pytest.param(
            """\
            FROM python:3.11-slim
            COPY requirements.txt /tmp/
            RUN pip install --no-cache-dir -r /tmp/requirements.txt
            """,
            None,
            [("LW003", 3)],
            id="unknown-lock-path-takes-any-txt-as-the-lock",
        ),
        pytest.param(
            """\
            FROM python:3.11-slim
            # lockwarden ignore=LW005
            RUN apt-get install -y curl
            RUN apt-get install -y tini
            """,
            LOCK,
            [("LW005", 4)],
            id="inline-pragma-silences-one-instruction",
        ),
        pytest.param(
            """\
            FROM python:3.11-slim
            RUN pip install -U numpy && apt-get install -y gcc
            COPY . /app
            RUN pip install -r /app/requirements/serve.txt
            """,
            LOCK,
            [
                ("LW001", 2),
                ("LW004", 2),
                ("LW005", 2),
                ("LW006", 2),
                ("LW007", 2),
                ("LW002", 3),
                ("LW003", 4),
                ("LW007", 4),
            ],
            id="sorted-by-line-then-rule",
        ),
    ],
)
def test_findings_located(
    tmp_path: Path, dockerfile: str, lock: str | None, expected: list[tuple[str, int]]
) -> None:
    assert located(check(tmp_path, dockerfile, lock=lock)) == expected


def test_rules_table() -> None:
    assert set(RULES) == {f"LW00{n}" for n in range(8)} | {"LW100"}
    for severity, title in RULES.values():
        assert severity in ("error", "warning", "info", "style")
        assert title
