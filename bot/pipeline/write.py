"""Write: results leave a local run as files. The locks are written in place (each
atomically: temp file beside the lock, then rename), and so are the reports; a GitHub job
publishes a pull request instead (``bot.pipeline.publish_pr``).

Every write goes through :func:`bot.paths.write_text_inside`: a lock path that leads
outside the repository (through a symlink, ``..`` or an absolute path) is refused, never
followed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import LockwardenError
from bot.git import (
    BotIdentity,
    commit_worktree,
    is_repository,
    person_identity,
    staged_paths,
    uncommitted,
)
from bot.paths import read_text_if_present, write_text_inside
from bot.results import LockResult

if TYPE_CHECKING:
    from bot.results import RunResult


def write_locks(root: Path, results: tuple[LockResult, ...]) -> tuple[str, ...]:
    """Write every changed, non-failed lock (with its per-platform locks and export); return
    the paths written. A failed environment's files are never touched."""
    return write_files(root, {p: t for r in results for p, t in r.files().items()})


def write_files(root: Path, files: Mapping[str, str]) -> tuple[str, ...]:
    """Write each file atomically inside ``root``; return the paths written, in order."""
    for path, text in files.items():
        write_text_inside(root, path, text, source=path)
    return tuple(files)


def refuse_overwrites(root: Path, files: Mapping[str, str], *, force: bool = False) -> None:
    """Raise, naming them, when any of ``files`` (path -> new text) that the write would
    change holds uncommitted work: a change, staged or not, or an untracked file. A file
    that would stay as it is does not count; ``force`` (``--force``) skips the check, and
    so does a folder that is in no git repository."""
    if force:
        return
    changing = [path for path, text in files.items() if _current(root, path) != text]
    work = uncommitted(root, changing)
    if work:
        named = ", ".join(
            f"{c.path} ({'untracked' if c.untracked else 'staged' if c.staged else 'modified'})"
            for c in work
        )
        raise LockwardenError(
            f"refusing to overwrite uncommitted changes to {named}: commit or stash them "
            "first, or pass --force to overwrite them"
        )


def _current(root: Path, path: str) -> str | None:
    return read_text_if_present(root, path, source=path)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` (one the user named, such as a report) with ``text`` so a reader sees
    the old file or the new one, never half; a symlink leading out of its folder is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_inside(path.parent, path.name, text, source=str(path))


def prepare_commit(root: Path) -> BotIdentity:
    """Before a run that commits (``run --commit``): the person's identity, once it is sure
    the commit can hold the run's files alone (a repository, nothing else staged)."""
    if not is_repository(root):
        raise LockwardenError(
            f"{root} is not in a git repository, so --commit has nothing to commit to: "
            "run without --commit, or git init the repository first"
        )
    staged = staged_paths(root)
    if staged:
        raise LockwardenError(
            f"--commit would mix the new locks with changes already staged: "
            f"{', '.join(staged[:10])}; commit them, or unstage them (git restore --staged "
            "FILE), then run again"
        )
    return person_identity(root)


def commit_run(root: Path, result: RunResult, author: BotIdentity) -> str | None:
    """Commit exactly the files ``result`` wrote, with the message and ledger trailers of
    the bot's own commits (so ``history`` and ``rollback --to known-good`` see the run), as
    ``author``; None when the run changed nothing."""
    from bot.report.pull_request import commit_text

    if not result.written:
        return None
    return commit_worktree(root, result.written, commit_text(result), author)
