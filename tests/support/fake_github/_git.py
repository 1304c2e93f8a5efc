"""Bare git repositories on disk, driven with git's plumbing (no work tree anywhere).

Everything the fake needs from a repository goes through :class:`BareRepo`: commits made "as a
human" (``commit_files``), branch and ref updates, file reads, history, and the merge of a pull
request (``git merge-tree --write-tree``, git >= 2.38).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ZERO_SHA = "0" * 40

# Separators for ``git log --format``: NUL between fields, RS between records.
_FIELD = "%x00"
_RECORD = "%x1e"


def git_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which git reads no configuration of the machine or of the user."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key not in ("HOME", "XDG_CONFIG_HOME")
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


class GitError(RuntimeError):
    pass


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class CommitInfo:
    """One commit as ``FakeGitHub.log`` reports it (newest first)."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    authored_at: int  # unix seconds
    committed_at: int
    message: str
    trailers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class FileChanges:
    added: list[str]
    modified: list[str]
    removed: list[str]


class BareRepo:
    """A bare repository at ``path``."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self._home = home

    @classmethod
    def init(cls, path: Path, home: Path, default_branch: str) -> BareRepo:
        path.mkdir(parents=True)
        repo = cls(path, home)
        repo.git("init", "--quiet", "--bare", f"--initial-branch={default_branch}")
        repo.git("config", "http.receivepack", "true")
        repo.git("config", "receive.denyDeleteCurrent", "warn")
        return repo

    # -- running git ---------------------------------------------------------------------

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            input=input,
            capture_output=True,
            env=git_env(self._home, {"GIT_DIR": str(self.path), **(env or {})}),
            check=False,
        )
        if check and proc.returncode != 0:
            raise GitError(
                f"git {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc

    def git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        return self.run(*args, input=input, env=env).stdout.decode().strip()

    # -- refs ----------------------------------------------------------------------------

    def refs(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)")
        refs = {}
        for line in out.splitlines():
            sha, ref = line.split(" ", 1)
            refs[ref] = sha
        return refs

    def branches(self) -> dict[str, str]:
        prefix = "refs/heads/"
        return {
            ref[len(prefix) :]: sha for ref, sha in self.refs().items() if ref.startswith(prefix)
        }

    def resolve(self, rev: str) -> str | None:
        """The commit that ``rev`` (sha, branch, tag, ``refs/...``) names, or None."""
        if not rev or rev.startswith("-"):
            return None
        proc = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def branch_sha(self, branch: str) -> str | None:
        return self.refs().get(f"refs/heads/{branch}")

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        args = ["update-ref", ref, new] + ([old] if old is not None else [])
        self.git(*args)

    def delete_ref(self, ref: str) -> bool:
        return self.run("update-ref", "-d", ref, check=False).returncode == 0

    # -- objects -------------------------------------------------------------------------

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, str | bytes | None],
        *,
        message: str,
        author: Person,
        committer: Person | None = None,
        start: str | None = None,
    ) -> str:
        """Commit ``files`` (None deletes a path) on top of ``branch`` (or of ``start`` when the
        branch does not exist yet; an orphan commit when neither exists).  Returns the sha."""
        current = self.branch_sha(branch)
        parent = current or (self.resolve(start) if start else None)
        with tempfile.TemporaryDirectory(prefix="fake-github-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git("read-tree", parent, env=env)
            lines = []
            for path, content in files.items():
                clean = path.strip("/")
                if content is None:
                    lines.append(f"0 {ZERO_SHA}\t{clean}")
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = self.git("hash-object", "-w", "--stdin", input=data)
                lines.append(f"100644 {blob}\t{clean}")
            if lines:
                self.git(
                    "update-index", "--index-info", input="\n".join(lines).encode() + b"\n", env=env
                )
            tree = self.git("write-tree", env=env)
        sha = self.commit_tree(tree, [parent] if parent else [], message, author, committer)
        self.update_ref(f"refs/heads/{branch}", sha, current or ZERO_SHA)
        return sha

    def commit_tree(
        self,
        tree: str,
        parents: Sequence[str],
        message: str,
        author: Person,
        committer: Person | None = None,
    ) -> str:
        committer = committer or author
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        return self.git(*args, input=message.encode(), env=env)

    def read_blob(self, rev: str, path: str) -> bytes | None:
        proc = self.run("cat-file", "blob", f"{rev}:{path.strip('/')}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def object_type(self, rev: str, path: str) -> str | None:
        spec = f"{rev}:{path.strip('/')}" if path.strip("/") else f"{rev}^{{tree}}"
        proc = self.run("cat-file", "-t", spec, check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def object_sha(self, rev: str, path: str) -> str:
        spec = f"{rev}:{path.strip('/')}" if path.strip("/") else f"{rev}^{{tree}}"
        return self.git("rev-parse", spec)

    def ls_tree(self, rev: str, path: str) -> list[tuple[str, str, str, int, str]]:
        """Entries of a directory: (mode, type, sha, size, name)."""
        spec = f"{rev}:{path.strip('/')}" if path.strip("/") else f"{rev}^{{tree}}"
        out = self.run("ls-tree", "-l", "-z", spec).stdout.decode()
        entries = []
        for item in out.split("\0"):
            if not item:
                continue
            meta, name = item.split("\t", 1)
            mode, kind, sha, size = meta.split()
            entries.append((mode, kind, sha, 0 if size == "-" else int(size), name))
        return entries

    # -- history -------------------------------------------------------------------------

    def log(
        self,
        rev: str,
        *,
        exclude: str | None = None,
        reverse: bool = False,
        max_count: int | None = None,
    ) -> list[CommitInfo]:
        fmt = _FIELD.join(
            (
                "%H",
                "%T",
                "%P",
                "%an",
                "%ae",
                "%at",
                "%cn",
                "%ce",
                "%ct",
                "%B",
                "%(trailers:only,unfold)",
            )
        )
        args = ["log", f"--format={fmt}{_RECORD}"]
        if reverse:
            args.append("--reverse")
        if max_count is not None:
            args.append(f"--max-count={max_count}")
        args.append(rev)
        if exclude:
            args.append(f"^{exclude}")
        args.append("--")
        out = self.run(*args).stdout.decode(errors="replace")
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, tree, parents, an, ae, at, cn, ce, ct, body, trailer_text = record.split("\0")
            trailers: dict[str, list[str]] = {}
            for line in trailer_text.splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    trailers.setdefault(key.strip(), []).append(value.strip())
            commits.append(
                CommitInfo(
                    sha=sha,
                    tree=tree,
                    parents=tuple(parents.split()),
                    author=Person(an, ae),
                    committer=Person(cn, ce),
                    authored_at=int(at),
                    committed_at=int(ct),
                    message=body.rstrip("\n"),
                    trailers=trailers,
                )
            )
        return commits

    def commit(self, rev: str) -> CommitInfo:
        sha = self.resolve(rev)
        if sha is None:
            raise GitError(f"no commit {rev!r}")
        return self.log(sha, max_count=1)[0]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return (
            self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode
            == 0
        )

    def count_commits(self, base: str, head: str) -> int:
        return int(self.git("rev-list", "--count", head, f"^{base}"))

    def diff_stats(self, base: str, head: str) -> tuple[int, int, int]:
        """(additions, deletions, changed files) of ``head`` against its merge base with
        ``base``."""
        out = self.git("diff", "--numstat", f"{base}...{head}")
        additions = deletions = files = 0
        for line in out.splitlines():
            add, delete, _ = line.split("\t", 2)
            files += 1
            additions += int(add) if add.isdigit() else 0
            deletions += int(delete) if delete.isdigit() else 0
        return additions, deletions, files

    def changes(self, sha: str) -> FileChanges:
        """Files added, modified and removed by ``sha`` against its first parent."""
        commit = self.commit(sha)
        if commit.parents:
            out = self.git("diff", "--name-status", "--no-renames", "-z", commit.parents[0], sha)
        else:
            out = self.git(
                "diff-tree",
                "--root",
                "--name-status",
                "--no-renames",
                "-r",
                "-z",
                "--no-commit-id",
                sha,
            )
        fields = [f for f in out.split("\0") if f]
        changes = FileChanges([], [], [])
        for status, path in zip(fields[::2], fields[1::2], strict=True):
            {"A": changes.added, "D": changes.removed}.get(status[0], changes.modified).append(path)
        return changes

    def merge_tree(self, base: str, head: str) -> str | None:
        """The tree of merging ``head`` into ``base``; None when they conflict."""
        proc = self.run("merge-tree", "--write-tree", "--no-messages", base, head, check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().split()[0]
        if proc.returncode == 1:
            return None
        raise GitError(proc.stderr.decode(errors="replace"))
