"""``bot.paths``: repository paths resolve inside the repository, reads never quote a file
outside it, and writes never go through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.paths import (
    PathEscapeError,
    is_file_inside,
    normalise,
    read_text_inside,
    resolve_inside,
    write_text_inside,
)

SECRET = "root:x:0:0:secret line\n"


def make_outside(tmp_path: Path, secret: str = SECRET) -> Path:
    """A folder beside the repository, with ``secret.txt`` that must never be quoted."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(secret, "utf-8")
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return make_outside(tmp_path)


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """A repository with in-tree links (relative, absolute, chained) and links leading out."""
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "file.txt").write_text("inside\n", "utf-8")
    (repo / "in").symlink_to("sub")
    (repo / "in-abs").symlink_to(repo / "sub")
    (repo / "chain").symlink_to("in")
    (repo / "out").symlink_to(outside)
    (repo / "out-rel").symlink_to("../outside")
    (repo / "secret.txt").symlink_to(outside / "secret.txt")
    (repo / "via-chain").symlink_to("out")
    (repo / "loop").symlink_to("loop")
    return repo


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        pytest.param("sub/file.txt", "sub/file.txt", id="plain"),
        pytest.param("in/file.txt", "sub/file.txt", id="relative-link"),
        pytest.param("in-abs/file.txt", "sub/file.txt", id="absolute-link-inside"),
        pytest.param("chain/file.txt", "sub/file.txt", id="chained-links"),
        pytest.param("sub/../sub/./file.txt", "sub/file.txt", id="dots-inside"),
        pytest.param("new/dir/file.txt", "new/dir/file.txt", id="not-yet-there"),
        pytest.param(Path("sub/file.txt"), "sub/file.txt", id="path-object"),
    ],
)
def test_resolve_inside_accepts(root: Path, relative: str | Path, expected: str) -> None:
    assert resolve_inside(root, relative, source="cfg") == root.resolve() / expected


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        pytest.param("/etc/passwd", "path '/etc/passwd' is absolute", id="absolute"),
        pytest.param("../x", "path '../x' leaves the repository through '..'", id="dotdot"),
        pytest.param("sub/../../x", "leaves the repository through '..'", id="dotdot-later"),
        pytest.param(
            "out/serve.txt",
            "path 'out/serve.txt' leads outside the repository (symlink 'out' -> '{out}')",
            id="folder-link",
        ),
        pytest.param("out-rel/x", "(symlink 'out-rel' -> '../outside')", id="relative-folder-link"),
        pytest.param("secret.txt", "(symlink 'secret.txt' -> '{out}/secret.txt')", id="file"),
        pytest.param("via-chain/x", "(symlink 'via-chain' -> 'out')", id="chain-out"),
        pytest.param("loop/x", "goes through a symlink loop (symlink 'loop' -> 'loop')", id="loop"),
        pytest.param("", "is not a valid path", id="empty"),
        pytest.param("a\0b", "is not a valid path", id="nul"),
    ],
)
def test_resolve_inside_refuses(root: Path, outside: Path, relative: str, message: str) -> None:
    with pytest.raises(PathEscapeError) as caught:
        resolve_inside(root, relative, source="requirements/serve.in:3")
    error = caught.value
    assert error.code == "path-escape"
    assert error.user_message.startswith("requirements/serve.in:3: ")
    assert message.format(out=outside) in error.user_message
    assert "use a relative path to a real file in the repository" in error.user_message
    assert error.path == relative


def test_read_text_inside_reads_and_never_quotes_outside(root: Path, outside: Path) -> None:
    assert read_text_inside(root, "in/file.txt", source="s") == "inside\n"
    with pytest.raises(PathEscapeError) as caught:
        read_text_inside(root, "secret.txt", source="spec")
    assert "secret line" not in str(caught.value)
    assert (caught.value.link, caught.value.target) == ("secret.txt", str(outside / "secret.txt"))


def test_read_text_inside_newlines_size_and_encoding(root: Path) -> None:
    (root / "crlf.txt").write_bytes(b"a\r\nb\rc\n")
    assert read_text_inside(root, "crlf.txt", source="s") == "a\nb\nc\n"
    assert read_text_inside(root, "crlf.txt", source="s", newline="") == "a\r\nb\rc\n"
    assert read_text_inside(root, "crlf.txt", source="s", max_bytes=7) == "a\nb\nc\n"
    with pytest.raises(LockwardenError, match=r"s: 'crlf.txt' is larger than 6 bytes"):
        read_text_inside(root, "crlf.txt", source="s", max_bytes=6)
    (root / "latin.txt").write_bytes(b"caf\xe9 secret\n")
    with pytest.raises(LockwardenError, match="is not UTF-8 text") as caught:
        read_text_inside(root, "latin.txt", source="s")
    assert "secret" not in str(caught.value)
    with pytest.raises(LockwardenError, match="'sub' is not a regular file"):
        read_text_inside(root, "sub", source="s")
    with pytest.raises(FileNotFoundError):
        read_text_inside(root, "missing.txt", source="s")


def test_is_file_inside(root: Path) -> None:
    assert is_file_inside(root, "in/file.txt", source="s")
    assert not is_file_inside(root, "sub", source="s")
    assert not is_file_inside(root, "missing", source="s")
    with pytest.raises(PathEscapeError):
        is_file_inside(root, "secret.txt", source="s")


def test_write_text_inside_creates_replaces_and_keeps_mode(root: Path) -> None:
    written = write_text_inside(root, "new/deep/lock.txt", "one\n", source="s")
    assert written == root.resolve() / "new/deep/lock.txt"
    assert written.read_text("utf-8") == "one\n"
    assert written.stat().st_mode & 0o777 == 0o644
    written.chmod(0o600)
    inode = written.stat().st_ino
    write_text_inside(root, "new/deep/lock.txt", "two\r\n", source="s")
    assert written.read_bytes() == b"two\r\n"
    assert written.stat().st_mode & 0o777 == 0o600
    assert written.stat().st_ino != inode
    assert sorted(p.name for p in written.parent.iterdir()) == ["lock.txt"]


def test_write_text_inside_through_an_in_tree_link_keeps_the_link(root: Path) -> None:
    (root / "lock.txt").symlink_to("sub/file.txt")
    write_text_inside(root, "lock.txt", "new\n", source="s")
    assert (root / "lock.txt").is_symlink()
    assert (root / "sub/file.txt").read_text("utf-8") == "new\n"


@pytest.mark.parametrize(
    "relative", ["out/serve.txt", "out-rel/new/serve.txt", "secret.txt", "../x", "/tmp/x", "."]
)
def test_write_text_inside_refuses_and_writes_nothing(
    root: Path, outside: Path, relative: str
) -> None:
    before = sorted(os.listdir(outside))
    with pytest.raises(PathEscapeError):
        write_text_inside(root, relative, "evil\n", source="cmd")
    assert sorted(os.listdir(outside)) == before
    assert (outside / "secret.txt").read_text("utf-8") == SECRET


def test_write_refuses_a_link_swapped_in_after_the_check(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write walks real directories only: a folder replaced by a link between the check
    and the write is refused, not followed."""
    import bot.paths as paths

    real_resolve = paths.resolve_inside

    def resolve_then_swap(root_: Path, relative: str | Path, *, source: str) -> Path:
        found = real_resolve(root_, relative, source=source)
        (root / "sub" / "file.txt").unlink()
        (root / "sub").rmdir()
        (root / "sub").symlink_to(outside)
        return found

    monkeypatch.setattr(paths, "resolve_inside", resolve_then_swap)
    with pytest.raises(PathEscapeError, match=r"symlink 'sub' -> '.*outside'"):
        write_text_inside(root, "sub/file.txt", "evil\n", source="s")
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_write_refuses_a_final_link_swapped_in(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.paths as paths

    real_resolve = paths.resolve_inside

    def resolve_then_swap(root_: Path, relative: str | Path, *, source: str) -> Path:
        found = real_resolve(root_, relative, source=source)
        (root / "sub" / "file.txt").unlink()
        (root / "sub" / "file.txt").symlink_to(outside / "secret.txt")
        return found

    monkeypatch.setattr(paths, "resolve_inside", resolve_then_swap)
    with pytest.raises(PathEscapeError, match="was replaced by a symlink"):
        write_text_inside(root, "sub/file.txt", "evil\n", source="s")
    assert (outside / "secret.txt").read_text("utf-8") == SECRET


def test_write_errors_name_the_source(root: Path) -> None:
    (root / "blocker").write_text("", "utf-8")
    with pytest.raises(LockwardenError, match="s: could not create the directory for"):
        write_text_inside(root, "blocker/x.txt", "x", source="s")
    with pytest.raises(LockwardenError, match="'sub' exists and is not a regular file"):
        write_text_inside(root, "sub", "x", source="s")


@pytest.mark.parametrize(
    ("relative", "expected"),
    [("a/./b/../c.txt", "a/c.txt"), ("c.txt", "c.txt"), ("../c", None), ("/c", None)],
)
def test_normalise(relative: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(PathEscapeError):
            normalise(relative, source="s")
    else:
        assert normalise(relative, source="s") == expected
