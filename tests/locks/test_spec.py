"""Reading a spec together with the files it includes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path, PurePosixPath

import pytest

from bot.errors import LockfileParseError
from bot.locks.spec import read_spec_tree, repo_relative
from bot.paths import PathEscapeError


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), "utf-8")


@pytest.mark.parametrize(
    ("files", "spec", "names", "constraints", "included"),
    [
        pytest.param(
            {"serve.in": "numpy>=2\nTorch==2.3.0\nuvicorn[standard]\n"},
            "serve.in",
            {"numpy", "torch", "uvicorn"},
            set(),
            ("serve.in",),
            id="plain-spec-canonical-names",
        ),
        pytest.param(
            {
                "requirements/train.in": "-r common.in\ntorch\n",
                "requirements/common.in": "Pillow\n--requirement nested/more.in\n",
                "requirements/nested/more.in": "ruamel.yaml\n",
            },
            "requirements/train.in",
            {"torch", "pillow", "ruamel-yaml"},
            set(),
            ("requirements/train.in", "requirements/common.in", "requirements/nested/more.in"),
            id="names-through-r-includes",
        ),
        pytest.param(
            {
                "requirements/train.in": "-c serve.txt\n-r ../shared/base.in\ntorch\n",
                "requirements/serve.txt": "numpy==2.0.0\n",
                "shared/base.in": "--constraint ../requirements/pins.txt\nnumpy\n",
            },
            "requirements/train.in",
            {"torch", "numpy"},
            {"requirements/serve.txt", "requirements/pins.txt"},
            ("requirements/train.in", "shared/base.in"),
            id="constraints-relative-to-including-file",
        ),
        pytest.param(
            {"requirements/serve.in": "-r missing.in\n-c absent.txt\nnumpy\n"},
            "requirements/serve.in",
            {"numpy"},
            {"requirements/absent.txt"},
            ("requirements/serve.in",),
            id="missing-include-ignored",
        ),
        pytest.param(
            {"a.in": "-r b.in\nalpha\n", "b.in": "-r a.in\n-r ./b.in\nbeta\n"},
            "a.in",
            {"alpha", "beta"},
            set(),
            ("a.in", "b.in"),
            id="include-loop",
        ),
        pytest.param({}, "missing.in", set(), set(), (), id="missing-spec"),
    ],
)
def test_read_spec_tree(
    tmp_path: Path,
    files: dict[str, str],
    spec: str,
    names: set[str],
    constraints: set[str],
    included: tuple[str, ...],
) -> None:
    write(tmp_path, files)
    tree = read_spec_tree(tmp_path, spec)
    assert tree.direct_names == names
    assert tree.constraint_files == constraints
    assert tree.files == included


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("-r ../outside.in", "'../outside.in' leaves the repository", id="r-up"),
        pytest.param("-c ../../pins.txt", "'../../pins.txt' leaves the repository", id="c-up"),
        pytest.param("-c /etc/pins.txt", "'/etc/pins.txt' is absolute", id="c-absolute"),
        pytest.param("--constraint=${HOME}/x", "uses an environment variable", id="env-var"),
    ],
)
def test_read_spec_tree_refuses_includes_leaving_the_repo(
    tmp_path: Path, line: str, expected: str
) -> None:
    write(tmp_path, {"serve.in": f"numpy\n{line}\n"})
    with pytest.raises(PathEscapeError, match=re.escape(expected)) as caught:
        read_spec_tree(tmp_path, "serve.in")
    assert caught.value.user_message.startswith("serve.in:2: ")


def test_read_spec_tree_parse_error_names_the_included_file(tmp_path: Path) -> None:
    write(tmp_path, {"a.in": "-r sub/b.in\n", "sub/b.in": "numpy\n-r\n"})
    with pytest.raises(LockfileParseError) as caught:
        read_spec_tree(tmp_path, "a.in")
    assert (caught.value.path, caught.value.line) == ("sub/b.in", 2)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("requirements/serve.txt", "requirements/serve.txt", id="plain"),
        pytest.param("requirements/./serve.txt", "requirements/serve.txt", id="dot"),
        pytest.param("requirements/../serve.txt", "serve.txt", id="dotdot-inside"),
        pytest.param("a/b/../../c.txt", "c.txt", id="dotdot-to-root"),
        pytest.param("../serve.txt", None, id="leaves-repo"),
        pytest.param("a/../../serve.txt", None, id="leaves-repo-later"),
        pytest.param("/etc/serve.txt", None, id="absolute"),
        pytest.param(".", "", id="root"),
    ],
)
def test_repo_relative(path: str, expected: str | None) -> None:
    assert repo_relative(PurePosixPath(path)) == expected
