"""Publishing locks: atomic writes, and only changed results are written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.pipeline.write import write_atomic, write_locks
from bot.results import LockResult, Status


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("numpy==2.0.0\n", id="plain"),
        pytest.param("", id="empty"),
        pytest.param("naïve==1.0  # ünïcödé\n", id="utf-8"),
        pytest.param("a==1\r\nb==2\r\n", id="crlf-kept"),
    ],
)
def test_write_atomic_creates_file_and_parents(tmp_path: Path, text: str) -> None:
    target = tmp_path / "requirements" / "deep" / "serve.txt"
    write_atomic(target, text)
    assert target.read_bytes() == text.encode("utf-8")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o664, 0o755], ids=oct)
def test_write_atomic_replaces_content_and_keeps_mode(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "serve.txt"
    target.write_text("old\n")
    target.chmod(mode)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert leftovers(tmp_path) == []


def test_write_atomic_replaces_the_inode(tmp_path: Path) -> None:
    target = tmp_path / "serve.txt"
    target.write_text("old\n")
    before = target.stat().st_ino
    write_atomic(target, "new\n")
    assert target.stat().st_ino != before


def test_write_atomic_failure_leaves_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "serve.txt"
    target.write_text("old\n")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LockwardenError) as caught:
        write_atomic(target, "new\n")
    assert str(caught.value) == f"{target}: could not write: Permission denied"
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_write_atomic_failure_without_strerror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LockwardenError, match="could not write: disk on fire"):
        write_atomic(tmp_path / "serve.txt", "new\n")
    assert list(tmp_path.iterdir()) == []


def result(name: str, status: Status, new_text: str | None) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="pip-tools",
        status=status,
        new_text=new_text,
    )


@pytest.mark.parametrize(
    ("results", "written"),
    [
        pytest.param((), (), id="nothing"),
        pytest.param(
            (result("serve", "changed", "numpy==2.1.0\n"),),
            ("requirements/serve.txt",),
            id="changed",
        ),
        pytest.param((result("serve", "unchanged", "numpy==2.0.0\n"),), (), id="unchanged"),
        pytest.param((result("serve", "failed", "numpy==9\n"),), (), id="failed"),
        pytest.param((result("serve", "changed", None),), (), id="changed-without-text"),
        pytest.param(
            (
                result("serve", "changed", "numpy==2.1.0\n"),
                result("train", "failed", None),
                result("eval", "changed", "torch==2.4.0\n"),
            ),
            ("requirements/serve.txt", "requirements/eval.txt"),
            id="mixed-in-order",
        ),
    ],
)
def test_write_locks_writes_only_changed(
    tmp_path: Path, results: tuple[LockResult, ...], written: tuple[str, ...]
) -> None:
    (tmp_path / "requirements").mkdir()
    for r in results:
        (tmp_path / r.lock).write_text("original\n")
    assert write_locks(tmp_path, results) == written
    for r in results:
        expected = r.new_text if r.lock in written else "original\n"
        assert (tmp_path / r.lock).read_text() == expected


def test_write_locks_creates_a_new_lock(tmp_path: Path) -> None:
    written = write_locks(tmp_path, (result("serve", "changed", "numpy==2.1.0\n"),))
    assert written == ("requirements/serve.txt",)
    assert (tmp_path / "requirements/serve.txt").read_text() == "numpy==2.1.0\n"
    assert os.listdir(tmp_path / "requirements") == ["serve.txt"]
