"""Git for the bot: clone, commit, push. The only user of GitPython.

GitPython runs every git command; this module decides the arguments and, above all, the
environment of each one:

* **The installation token never touches the disk.** A network command gets it through the
  environment, as ``http.extraHeader`` in git's ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_<n>`` /
  ``GIT_CONFIG_VALUE_<n>`` variables (``Authorization: Basic base64("x-access-token:<token>")``,
  GitHub's form for installation tokens over HTTPS). It is not in the remote URL, so it is not
  in ``.git/config``, ``FETCH_HEAD`` or the reflogs, and not on any command line. The token is
  asked of a :class:`TokenSource` right before each network command, because a job can outlive
  the one-hour token. Every error text is redacted (the token, its base64 form, any
  ``Authorization:`` value, any password in a URL) and raised without the original exception
  attached, so no traceback can carry the secret either.
* **Nothing else of the worker's reaches git.** Its credentials in the process environment
  (``LOCKWARDEN_*``, ``GITHUB_*``, ``*TOKEN*``, ``*SECRET*``, ...) are blanked in every git
  command's environment; the job's token is the only secret a network command holds.
* **The machine's git setup cannot interfere.** No system or global config
  (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``), no ``~/.netrc`` or XDG files
  (``HOME`` and ``XDG_CONFIG_HOME`` point at ``/dev/null``), no ``-c`` settings inherited
  through ``GIT_CONFIG_PARAMETERS``, no hooks, no credential helper, no prompt
  (``GIT_TERMINAL_PROMPT=0``, ``GIT_ASKPASS=true``). GitPython starts git with the process
  environment plus ours, so the variables that say where a repository lives (``GIT_DIR``,
  ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``, ...; a git hook sets some of them) are pinned to the
  clone. Commits carry the bot identity from ``GIT_AUTHOR_*`` / ``GIT_COMMITTER_*``, never from
  a config file.
* **Every command has a time limit** (GitPython's ``kill_after_timeout``; a killed git takes
  its helpers, such as ``git-remote-https``, with it).

Clones are shallow: one branch, ``--depth`` commits, no tags. Whether the bot still owns its
branch is decided on the branch's own commits, which :func:`fetch_branch` fetches with
``--shallow-exclude=<default branch>``: the server sends exactly the commits of the bot branch
that are not on the default branch, however far back the branch forked, so a shallow clone
answers :func:`bot_owns_branch` as a full one would.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn, Protocol

from bot.errors import LockwardenError

BRANCH_PREFIX = "lockwarden/"
REMOTE = "origin"
NETWORK_TIMEOUT_S = 600.0
"""Time limit of one clone, fetch or push."""
LOCAL_TIMEOUT_S = 300.0
"""Time limit of one local command (checkout, add, commit, log, ...)."""

_ALLOWED_SCHEMES = ("https", "http", "file")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ASKPASS = "/bin/true" if os.path.exists("/bin/true") else "true"
_NEW_FILE_MODE = 0o644
_SEP = "\x1f"
_REDACTED = "***"
_AUTH_HEADER = re.compile(r"(?i)(authorization:)[^\r\n]*")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")
_NOTHING_TO_EXCLUDE = "no commits selected for shallow requests"


class GitError(LockwardenError):
    """A git command failed; the message says which and why, with every secret redacted."""

    code = "git"


class BranchMovedError(GitError):
    """A push was refused because the remote branch is not where the caller expected it
    (the lease failed, or the push was not a fast-forward). Nothing was overwritten: fetch
    the branch again and decide anew whether it is still the bot's to rewrite."""

    code = "git-branch-moved"


@dataclass(frozen=True)
class BotIdentity:
    name: str = "lockwarden[bot]"
    email: str = "lockwarden[bot]@users.noreply.github.com"


class TokenSource(Protocol):
    def __call__(self) -> str:
        """A current installation token (renewed when it is about to expire). Called right
        before every network command."""
        ...


@dataclass(frozen=True)
class Clone:
    path: Path
    """The working tree (absolute)."""
    repo: str
    """``owner/name``, from the clone URL."""
    default_branch: str
    """The branch that was cloned: the remote's default branch unless ``branch`` was given.
    Pull requests target it; :func:`push_branch` never pushes to it."""
    base_sha: str
    """The tip of ``default_branch`` when it was cloned."""


@dataclass(frozen=True)
class _Result:
    status: int
    stdout: str
    stderr: str


# -- public API --------------------------------------------------------------------------------


def clone(
    url: str,
    dest: Path,
    *,
    token: TokenSource | None,
    branch: str | None = None,
    depth: int | None = 50,
) -> Clone:
    """Clone one branch of ``url`` into ``dest`` (absent or empty): the remote's default branch,
    or ``branch``; the last ``depth`` commits of it (``None``: all of it); no tags.

    Done as ``init`` + ``fetch`` + ``checkout`` rather than ``git clone`` so that every step
    runs inside the new repository with its location pinned (``git clone`` obeys a stray
    ``GIT_WORK_TREE`` or ``GIT_INDEX_FILE`` of the process). Two network commands when
    ``branch`` is not given (``ls-remote`` for the default branch, then ``fetch``), one when it
    is; ``token`` is asked once for each.
    """
    _check_url(url, with_token=token is not None)
    if depth is not None and depth < 1:
        raise GitError(f"clone depth must be at least 1, not {depth}")
    if branch is not None:
        _check_branch_name(branch)
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise GitError(f"{dest}: cannot clone into a path that exists and is not an empty folder")
    existed = dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return _clone_into(url, dest, token=token, branch=branch, depth=depth)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        if existed:
            dest.mkdir(exist_ok=True)
        raise


def fetch_branch(clone: Clone, branch: str, *, token: TokenSource | None) -> str | None:
    """Fetch ``branch`` into ``refs/remotes/origin/<branch>``; its remote sha, or None when the
    remote has no such branch (a stale remote-tracking ref is then deleted).

    In a shallow clone only the branch's own commits are fetched, ``--shallow-exclude`` of the
    default branch: enough for :func:`bot_owns_branch` to be exact, and no more. When the
    branch has no commits of its own (its tip is on the default branch, e.g. after a merge),
    the server has nothing to send that way, and only the tip is fetched. A server that cannot
    exclude (no ``deepen-not``), or fails to, makes the clone whole instead (``--unshallow``):
    slower, still exact. One to three network commands; ``token`` is asked once for each.
    """
    _check_branch_name(branch)
    remote_ref = f"refs/heads/{branch}"
    tracking = f"refs/remotes/{REMOTE}/{branch}"
    what = f"fetch {branch}"
    listed = _network(clone.path, ["ls-remote", REMOTE, remote_ref], token, what=what)
    # ls-remote matches the pattern against the end of ref names; keep the exact ref only.
    shas = [line.split("\t")[0] for line in listed.splitlines() if line.endswith(f"\t{remote_ref}")]
    if not shas:
        if _ref_sha(clone.path, tracking) is not None:
            _local(clone.path, ["update-ref", "-d", tracking], what=f"forget {branch}")
        return None
    remote_sha = shas[0]
    refspec = f"+{remote_ref}:{tracking}"
    fetch = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    if _ref_sha(clone.path, f"{remote_sha}^{{commit}}") == remote_sha:
        # Already here (the bot pushed it from this clone, or it is on the default branch):
        # its history here is as complete as a fetch would make it.
        _local(clone.path, ["update-ref", tracking, remote_sha], what=f"record {branch}")
    elif not (clone.path / ".git" / "shallow").exists():
        _network(clone.path, [*fetch, REMOTE, refspec], token, what=what)
    else:
        exclude = f"--shallow-exclude=refs/heads/{clone.default_branch}"
        result = _run(clone.path, [*fetch, exclude, REMOTE, refspec], network=True, token=token)
        if result.status != 0 and _NOTHING_TO_EXCLUDE in result.stderr:
            _network(clone.path, [*fetch, "--depth=1", REMOTE, refspec], token, what=what)
        elif result.status != 0:
            # The server cannot exclude ("does not support --shallow-exclude") or said no in
            # words we do not know: the whole history answers exactly. A failure that has
            # nothing to do with excluding (a refused token, say) fails here again, and raises.
            base = (
                f"+refs/heads/{clone.default_branch}:refs/remotes/{REMOTE}/{clone.default_branch}"
            )
            _network(clone.path, [*fetch, "--unshallow", REMOTE, base, refspec], token, what=what)
    sha = _ref_sha(clone.path, tracking)
    if sha is None:  # pragma: no cover - git just wrote it
        raise GitError(f"fetched {branch} but {tracking} is missing")
    return sha


def bot_owns_branch(clone: Clone, branch: str, identity: BotIdentity) -> bool:
    """True when every commit of ``origin/<branch>`` that is not on the default branch was
    authored and committed by ``identity`` (name and email). A commit by anyone else (a
    human's push, an edit or "Update branch" on GitHub, whose committer is GitHub) makes it
    False: the branch is then the people's, and the bot must not rewrite it. A branch with no
    commits of its own (its tip is on the default branch, e.g. merged) is the bot's.

    Local only: call :func:`fetch_branch` first (it raises :class:`GitError` otherwise)."""
    _check_branch_name(branch)
    tracking = f"refs/remotes/{REMOTE}/{branch}"
    if _ref_sha(clone.path, tracking) is None:
        raise GitError(f"{clone.repo}: {branch} was not fetched; call fetch_branch first")
    base = _ref_sha(clone.path, f"refs/remotes/{REMOTE}/{clone.default_branch}")
    fmt = _SEP.join(("%H", "%an", "%ae", "%cn", "%ce"))
    out = _local(
        clone.path,
        ["log", f"--format={fmt}", tracking, f"^{base or clone.base_sha}", "--"],
        what=f"read the history of {branch}",
    )
    expected = [identity.name, identity.email, identity.name, identity.email]
    return all(line.split(_SEP)[1:] == expected for line in out.splitlines() if line)


def commit_files(
    clone: Clone,
    branch: str,
    files: Mapping[str, str],
    message: str,
    identity: BotIdentity,
    *,
    parent: str | None = None,
    allow_empty: bool = False,
) -> str:
    """Point the local ``branch`` at ``parent`` (default: ``clone.base_sha``) and check it out,
    discarding local changes; write ``files`` (repository-relative POSIX paths to text, each
    written atomically); commit them with author and committer ``identity`` and ``message``
    kept verbatim (trailers and all); return the new commit's sha.

    Raises :class:`GitError` for a path outside the tree (absolute, ``..``, inside ``.git``,
    or through a symlinked folder), and when the files change nothing unless ``allow_empty``.
    """
    _check_branch_name(branch)
    if not files and not allow_empty:
        raise GitError("no files to commit")
    targets = {name: _safe_target(clone.path, name) for name in files}
    start = parent or clone.base_sha
    start_sha = _ref_sha(clone.path, f"{start}^{{commit}}")
    if start_sha is None:
        raise GitError(f"{clone.repo}: cannot start {branch} at {start!r}: no such commit here")
    _local(
        clone.path,
        ["checkout", "--quiet", "--force", "--no-track", "-B", branch, start_sha],
        what=f"check out {branch}",
    )
    for name, content in files.items():
        _write_atomic(clone.path, targets[name], content)
    if files:
        _local(clone.path, ["add", "--force", "--", *files], what="stage the files")
    staged = _run(clone.path, ["diff", "--cached", "--quiet"])
    if staged.status not in (0, 1):
        _raise_for(staged, what="compare the files with the parent commit")
    if staged.status == 0 and not allow_empty:
        raise GitError(f"{clone.repo}: nothing to commit: the files already match {start}")
    return _commit(clone.path, message, identity, allow_empty=allow_empty)


def _commit(path: Path, message: str, identity: BotIdentity, *, allow_empty: bool) -> str:
    """Commit the index with ``message`` kept verbatim, authored and committed by
    ``identity`` (no hooks, no signing); the new commit's sha."""
    identity_env = {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", prefix="LOCKWARDEN_MSG", delete=False
    ) as handle:
        handle.write(message)
    try:
        args = ["commit", "--quiet", "--no-verify", "--no-gpg-sign", "--cleanup=verbatim"]
        args += ["--allow-empty"] if allow_empty else []
        _check(_run(path, [*args, f"--file={handle.name}"], extra_env=identity_env), what="commit")
    finally:
        Path(handle.name).unlink(missing_ok=True)
    return _local(path, ["rev-parse", "HEAD"], what="read the new commit")


def same_change(clone: Clone, first: str, second: str) -> bool:
    """True when two commits have the same tree, parents and message: pushing one over the
    other would change nothing but the commit date."""

    def content(rev: str) -> str | None:
        result = _run(clone.path, ["show", "--no-patch", "--format=%T %P%n%B", rev, "--"])
        return result.stdout if result.status == 0 else None

    a, b = content(first), content(second)
    return a is not None and a == b


# ``git status`` refreshes the index's stat data and writes it back; a command that only
# looks must leave a person's repository exactly as it was.
_NO_INDEX_WRITE = ("--no-optional-locks",)


def settled_since(root: Path, outputs: Sequence[str], inputs: Sequence[str]) -> str | None:
    """The commit that last changed ``outputs``, when none of ``inputs`` changed after it
    and the working tree has no change to either (paths relative to ``root``, which may be
    a folder of a repository); None otherwise, or when ``root`` is not in a repository."""
    found = _toplevel(root)
    if found is None:
        return None
    top, folder = found
    wanted_out = [str(folder / path) for path in outputs]
    wanted_in = [str(folder / path) for path in inputs]
    status = [*_NO_INDEX_WRITE, "status", "--porcelain", "--untracked-files=all", "--"]
    dirty = _run(top, [*status, *wanted_out, *wanted_in])
    if dirty.status != 0 or dirty.stdout.strip():
        return None
    last = _run(top, ["log", "-1", "--format=%H", "--", *wanted_out])
    commit = last.stdout.strip()
    if last.status != 0 or not commit:
        return None
    since = _run(top, ["rev-list", "--count", f"{commit}..HEAD", "--", *wanted_in])
    return commit if since.status == 0 and since.stdout.strip() == "0" else None


def read_file_at(root: Path, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev`` (a sha or ref in the repository at ``root``), byte for
    byte; None when the commit is not here or has no such file."""
    result = _run(root, ["cat-file", "blob", f"{rev}:{path}"], strip=False)
    return result.stdout if result.status == 0 else None


# -- a person's working tree (the command line) -----------------------------------------------


class NotARepositoryError(GitError):
    """The folder is in no git repository."""


@dataclass(frozen=True)
class TreeChange:
    """A path with uncommitted work in a working tree, as ``git status`` names it."""

    path: str
    """Relative to the folder that was asked about."""
    staged: bool
    """Some of the change is in the index (``git add``)."""
    untracked: bool


def is_repository(root: Path) -> bool:
    """``root`` is inside a git working tree (it may be a folder of one)."""
    return _toplevel(root) is not None


def resolve_revision(root: Path, rev: str) -> str | None:
    """The commit any git revision names in the repository at ``root`` (a sha or its prefix,
    a branch, a tag, ``HEAD~1``, ``main^``, ...); None when it names no commit here."""
    if not rev or rev.startswith("-") or any(c.isspace() or ord(c) < 32 for c in rev):
        return None
    top, _ = _require_toplevel(root)
    return _ref_sha(top, f"{rev}^{{commit}}")


def read_log(root: Path, rev: str, fmt: str, *, limit: int) -> str | None:
    """``git log`` of ``rev`` in ``fmt``, newest first; None when ``rev`` is ``HEAD`` of a
    repository with no commits yet. Raises :class:`NotARepositoryError` outside a repository
    and :class:`GitError` for a revision that names no commit."""
    top, _ = _require_toplevel(root)
    sha = resolve_revision(top, rev)
    if sha is None:
        if rev == "HEAD" and _ref_sha(top, "HEAD") is None:
            return None
        raise GitError(
            f"{root}: {rev[:80]!r} names no commit here: give a commit sha, a branch, a tag or "
            "a revision such as HEAD~1 (see git rev-parse)"
        )
    return _local(
        top, ["log", f"--max-count={limit}", f"--format={fmt}", sha, "--"], what=f"read {rev}"
    )


def uncommitted(root: Path, paths: Sequence[str]) -> tuple[TreeChange, ...]:
    """Those of ``paths`` (relative to ``root``) with uncommitted work: changed, staged,
    deleted or untracked (ignored files are not work git keeps). Empty outside a repository."""
    found = _toplevel(root)
    if found is None or not paths:
        return ()
    top, folder = found
    names = {(folder / path).as_posix(): path for path in paths}
    args = [*_NO_INDEX_WRITE, "status", "--porcelain=v1", "-z", "--untracked-files=all"]
    args += ["--no-renames", "--"]
    listed = _local(top, [*args, *names], what="list the uncommitted changes")
    out = []
    for entry in listed.split("\0"):
        if len(entry) > 3 and entry[3:] in names:
            index = entry[0]
            out.append(
                TreeChange(names[entry[3:]], staged=index not in " ?", untracked=index == "?")
            )
    return tuple(sorted(out, key=lambda change: change.path))


def staged_paths(root: Path) -> tuple[str, ...]:
    """Every path with a staged change in the repository of ``root`` (relative to its top)."""
    top, _ = _require_toplevel(root)
    listed = _local(
        top, ["diff", "--cached", "--name-only", "-z", "--no-renames"], what="list staged files"
    )
    return tuple(name for name in listed.split("\0") if name)


def person_identity(root: Path) -> BotIdentity:
    """The identity git would give a commit the person makes in ``root``: ``user.name`` and
    ``user.email`` from their git config (or ``GIT_AUTHOR_*``), never a guess."""
    top, _ = _require_toplevel(root)
    # Their own configuration is the point here, so HOME and the global config stay theirs.
    found = _run(top, ["-c", "user.useConfigOnly=true", "var", "GIT_AUTHOR_IDENT"], own_config=True)
    name, sep, rest = found.stdout.partition(" <")
    email = rest.partition(">")[0]
    if found.status != 0 or not sep or not name.strip() or not email:
        raise GitError(
            "git does not know who you are: set it with git config user.name 'Your Name' and "
            "git config user.email you@example.com, then run again",
            detail=found.stderr.strip(),
        )
    return BotIdentity(name=name.strip(), email=email)


def commit_worktree(root: Path, paths: Sequence[str], message: str, author: BotIdentity) -> str:
    """Stage ``paths`` (relative to ``root``; a deleted one is staged as deleted) and commit
    exactly them with ``message`` kept verbatim, as ``author``; return the new commit's sha.
    Refuses when anything else is staged."""
    top, folder = _require_toplevel(root)
    names = [(folder / path).as_posix() for path in paths]
    others = sorted(set(staged_paths(top)) - set(names))
    if others:
        raise GitError(
            f"other changes are staged: {', '.join(others[:10])}; commit or unstage them "
            "(git restore --staged FILE) first, so the commit holds only the new locks"
        )
    _local(top, ["add", "--all", "--", *names], what="stage the new locks")
    return _commit(top, message, author, allow_empty=False)


def _toplevel(root: Path) -> tuple[Path, PurePosixPath] | None:
    """The working tree ``root`` is in, and ``root``'s folder inside it."""
    here = root.resolve()
    top = next((p for p in (here, *here.parents) if (p / ".git").exists()), None)
    if top is None:
        return None
    return top, PurePosixPath(here.relative_to(top).as_posix())


def _require_toplevel(root: Path) -> tuple[Path, PurePosixPath]:
    found = _toplevel(root)
    if found is None:
        raise NotARepositoryError(
            f"{root} is not in a git repository: run inside a clone (or git init one)"
        )
    return found


def commit_paths(clone: Clone, rev: str) -> tuple[str, ...]:
    """Paths the commit ``rev`` changed against its first parent."""
    out = _local(
        clone.path,
        ["diff", "--name-only", "-z", "--no-renames", f"{rev}^", rev, "--"],
        what=f"list the files of {rev[:12]}",
    )
    return tuple(name for name in out.split("\0") if name)


def carry_changes(clone: Clone, rev: str, paths: Sequence[str]) -> dict[str, str]:
    """Apply what commit ``rev`` changed in ``paths`` onto the working tree with a three-way
    merge, and return the merged texts. A bot branch's edits (pins, ignore rules) are carried
    onto a newer default branch this way, so a person's later change to the same spec is kept.

    Raises :class:`GitError` when the edits conflict with the working tree (nothing is left
    half-applied: the touched paths are restored)."""
    if not paths:
        return {}
    with tempfile.TemporaryDirectory(prefix="lockwarden-carry-") as tmp:
        patch = Path(tmp) / "edits.patch"
        _local(
            clone.path,
            ["diff", "--binary", "--full-index", f"--output={patch}", f"{rev}^", rev, "--", *paths],
            what=f"read the edits of {rev[:12]}",
        )
        applied = _run(clone.path, ["apply", "--3way", "--whitespace=nowarn", str(patch)])
    if applied.status != 0:
        _run(clone.path, ["reset", "--quiet", "--", *paths])
        _run(clone.path, ["checkout", "--quiet", "--force", "HEAD", "--", *paths])
        for name in paths:  # files the edits created are not in HEAD: remove them too
            target = clone.path / name
            if _ref_sha(clone.path, f"HEAD:{name}") is None and target.is_file():
                target.unlink()
        text = redact(applied.stderr.strip() or applied.stdout.strip())
        raise GitError(
            f"the edits on {rev[:12]} ({', '.join(paths)}) conflict with the default branch",
            detail=text,
        )
    _run(clone.path, ["reset", "--quiet", "--", *paths])  # keep the index as HEAD's
    return {
        name: (clone.path / name).read_text("utf-8")
        for name in paths
        if (clone.path / name).is_file()
    }


def fetch_ref(clone: Clone, ref: str, *, token: TokenSource | None) -> str | None:
    """The commit ``ref`` names: a sha already here, else a branch or tag of the remote
    (fetched); None when the remote has neither."""
    local = _ref_sha(clone.path, f"{ref}^{{commit}}")
    if local is not None:
        return local
    for remote_ref in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
        listed = _network(clone.path, ["ls-remote", REMOTE, remote_ref], token, what=f"find {ref}")
        if any(line.endswith(f"\t{remote_ref}") for line in listed.splitlines()):
            tracking = f"refs/lockwarden/{remote_ref.removeprefix('refs/')}"
            _network(
                clone.path,
                [
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    REMOTE,
                    f"+{remote_ref}:{tracking}",
                ],
                token,
                what=f"fetch {ref}",
            )
            return _ref_sha(clone.path, f"{tracking}^{{commit}}")
    return None


def push_branch(
    clone: Clone,
    branch: str,
    *,
    token: TokenSource | None,
    force: bool,
    expected_remote_sha: str | None,
) -> None:
    """Push the local ``branch`` to ``refs/heads/<branch>`` and record it as
    ``refs/remotes/origin/<branch>``.

    ``force`` rewrites the remote branch only if it is still at ``expected_remote_sha``
    (``--force-with-lease``; ``None``: only if it does not exist). Without ``force`` the push
    must be a fast-forward (or create the branch). Either refusal raises
    :class:`BranchMovedError` and leaves the remote as it was. Only ``lockwarden/`` branches
    are pushed, never the default branch (:class:`GitError`, before anything is run).
    """
    _check_pushable(clone, branch)
    local = _ref_sha(clone.path, f"refs/heads/{branch}")
    if local is None:
        raise GitError(f"{clone.repo}: no local branch {branch} to push; commit to it first")
    ref = f"refs/heads/{branch}"
    args = ["push", "--porcelain", "--no-verify"]
    if force:
        args.append(f"--force-with-lease={ref}:{expected_remote_sha or ''}")
    _push(clone, [*args, REMOTE, f"{ref}:{ref}"], token, what=f"push {branch}")
    _local(clone.path, ["update-ref", f"refs/remotes/{REMOTE}/{branch}", local], what="record")


def delete_remote_branch(
    clone: Clone, branch: str, *, token: TokenSource | None, expected_remote_sha: str
) -> None:
    """Delete the remote ``branch`` if it is still at ``expected_remote_sha`` (a lease, like
    :func:`push_branch`; :class:`BranchMovedError` otherwise). Same refusals as a push."""
    _check_pushable(clone, branch)
    ref = f"refs/heads/{branch}"
    args = ["push", "--porcelain", "--no-verify", f"--force-with-lease={ref}:{expected_remote_sha}"]
    _push(clone, [*args, REMOTE, f":{ref}"], token, what=f"delete {branch}")
    tracking = f"refs/remotes/{REMOTE}/{branch}"
    if _ref_sha(clone.path, tracking) is not None:
        _local(clone.path, ["update-ref", "-d", tracking], what=f"forget {branch}")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without ``secrets``, ``Authorization:`` values or passwords in URLs."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    text = _AUTH_HEADER.sub(rf"\1 {_REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{_REDACTED}@", text)


# -- clone -------------------------------------------------------------------------------------


def _clone_into(
    url: str, dest: Path, *, token: TokenSource | None, branch: str | None, depth: int | None
) -> Clone:
    initial = branch or "main"
    _local(dest, ["init", "--quiet", "--template=", f"--initial-branch={initial}"], what="init")
    _local(dest, ["remote", "add", "--no-tags", REMOTE, url], what="add the remote")
    if branch is None:
        listed = _network(
            dest, ["ls-remote", "--symref", REMOTE, "HEAD"], token, what="find the default branch"
        )
        branch = _default_branch(listed)
        if branch is None:
            raise GitError(
                f"{_repo_name(url)}: the remote names no default branch (is it empty?); "
                "pass the branch to clone"
            )
        _check_branch_name(branch)
    tracking = f"refs/remotes/{REMOTE}/{branch}"
    refspec = f"+refs/heads/{branch}:{tracking}"
    _local(dest, ["config", f"remote.{REMOTE}.fetch", refspec], what="configure the remote")
    fetch = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    fetch += [f"--depth={depth}"] if depth is not None else []
    _network(dest, [*fetch, REMOTE, refspec], token, what=f"fetch {branch}")
    _local(dest, ["checkout", "--quiet", "--no-track", "-B", branch, tracking], what="check out")
    base_sha = _ref_sha(dest, tracking)
    if base_sha is None:  # pragma: no cover - the fetch just wrote it
        raise GitError(f"fetched {branch} but {tracking} is missing")
    return Clone(
        path=dest.resolve(), repo=_repo_name(url), default_branch=branch, base_sha=base_sha
    )


def _default_branch(ls_remote: str) -> str | None:
    for line in ls_remote.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target.removeprefix("ref: refs/heads/")
    return None


def _check_url(url: str, *, with_token: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _ALLOWED_SCHEMES or any(c.isspace() or ord(c) < 32 for c in url):
        raise GitError(f"cannot clone {redact(url)!r}: only {', '.join(_ALLOWED_SCHEMES)} URLs")
    if parts.username is not None or parts.password is not None:
        raise GitError(
            f"cannot clone {redact(url)!r}: credentials in a URL end up in .git/config; "
            "pass a token source instead"
        )
    if with_token and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise GitError(f"cannot clone {url!r} with a token: it would cross the network in clear")


def _repo_name(url: str) -> str:
    path = urllib.parse.urlsplit(url).path.rstrip("/").removesuffix(".git")
    return "/".join(path.split("/")[-2:]).lstrip("/")


# -- files -------------------------------------------------------------------------------------


def _safe_target(root: Path, name: str) -> Path:
    """The absolute path ``name`` names inside ``root``, refusing any way out of the tree."""
    pure = PurePosixPath(name)
    parts = name.split("/")
    if (
        not name
        or "\0" in name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in parts)
        or any(part.lower() == ".git" for part in parts)
    ):
        raise GitError(f"refusing to write {name!r}: not a plain path inside the repository")
    here = root
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise GitError(f"refusing to write {name!r}: {here.relative_to(root)} is not a folder")
    target = root.joinpath(*parts)
    if target.is_dir() and not target.is_symlink():
        raise GitError(f"refusing to write {name!r}: it is a folder")
    return target


def _write_atomic(root: Path, target: Path, content: str) -> None:
    """Write through a temporary file in the same folder and rename it over ``target``: a
    reader sees the old file or the new one, never half of one. A symlink at ``target`` is
    replaced by the file, not followed; an existing file keeps its mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _NEW_FILE_MODE
    if target.exists() and not target.is_symlink():
        mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise GitError(f"cannot write {target.relative_to(root)}: {exc.strerror}") from exc


# -- running git -------------------------------------------------------------------------------

# Configuration given to every command (after the token's http.extraHeader, when there is one).
_CONFIG = {
    "credential.helper": "",  # an empty value empties the list of helpers
    "core.hooksPath": os.devnull,
    "core.fsmonitor": "false",
    "gc.auto": "0",
    "maintenance.auto": "false",
}


# GitPython starts git with the worker's environment plus ours. The worker's own credentials
# (the App's private key or its path, the webhook secret, a database URL, any *TOKEN*) have no
# business there: they are blanked. Only the http.extraHeader below carries the job's token.
_CREDENTIAL_NAME = re.compile(
    r"^(LOCKWARDEN_|GITHUB_|GH_|AWS_|AZURE_)|TOKEN|SECRET|PASSWORD|PRIVATE_KEY|DATABASE_URL",
    re.IGNORECASE,
)


# What keeps the machine's git setup out; left out when the person's own identity is wanted.
_MACHINE_SETUP = frozenset({"GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "HOME", "XDG_CONFIG_HOME"})


def _blanked_credentials() -> dict[str, str]:
    return {name: "" for name in os.environ if _CREDENTIAL_NAME.search(name)}


def _env(path: Path, header: str | None) -> dict[str, str]:
    """The environment of a git command on the repository at ``path``."""
    gitdir = path / ".git"
    env = _blanked_credentials() | {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_PARAMETERS": "",
        "HOME": os.devnull,
        "XDG_CONFIG_HOME": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": _ASKPASS,
        "SSH_ASKPASS": _ASKPASS,
        "GIT_TRACE_REDACT": "1",
        "GIT_ALLOW_PROTOCOL": ":".join(_ALLOWED_SCHEMES),
        "GIT_LITERAL_PATHSPECS": "1",
        "GIT_DIR": str(gitdir),
        "GIT_WORK_TREE": str(path),
        "GIT_INDEX_FILE": str(gitdir / "index"),
        "GIT_OBJECT_DIRECTORY": str(gitdir / "objects"),
        "GIT_COMMON_DIR": str(gitdir),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_NAMESPACE": "",
    }
    config = ({"http.extraHeader": header} if header is not None else {}) | _CONFIG
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _auth(token: TokenSource | None) -> tuple[str | None, list[str]]:
    """The ``http.extraHeader`` value for a fresh token, and the secrets to redact."""
    if token is None:
        return None, []
    value = token()
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise GitError("the installation token is empty or malformed; cannot authenticate to git")
    basic = base64.b64encode(f"x-access-token:{value}".encode()).decode("ascii")
    header = f"Authorization: Basic {basic}"
    return header, [value, basic, header]


def _run(
    path: Path,
    args: Sequence[str],
    *,
    network: bool = False,
    token: TokenSource | None = None,
    extra_env: Mapping[str, str] | None = None,
    strip: bool = True,
    own_config: bool = False,
) -> _Result:
    """Run ``git <args>`` in ``path``; a non-zero exit is a value. A ``network`` command asks
    ``token`` for a token now, and its output comes back with the token redacted.
    ``own_config``: read the person's global git config (their identity), for the CLI."""
    header, secrets = _auth(token if network else None)
    env = _env(path, header) | dict(extra_env or {})
    if own_config:
        env = {key: value for key, value in env.items() if key not in _MACHINE_SETUP}
    timeout_s = NETWORK_TIMEOUT_S if network else LOCAL_TIMEOUT_S
    # Imported on first use: GitPython runs `git version` twice at import, which a run on a
    # tree that is not a repository, or a command that never calls git, need not pay.
    import git as gitpython

    runner = gitpython.Git(str(path))
    executable = str(gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git")
    missing = False
    try:
        status, stdout, stderr = runner.execute(
            [executable, *args],
            env=env,
            kill_after_timeout=timeout_s,
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=strip,
        )
    except gitpython.GitCommandNotFound:
        missing = True
    if missing:  # raised outside the handler, so no exception is chained to it
        raise GitError("git was not found; is it installed and on PATH?")
    out = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout or ""
    if status != 0 and "Timeout:" in stderr and "did not complete" in stderr:
        stderr = f"{stderr}\n(stopped after {timeout_s:.0f} s)"
    if network:
        out, stderr = redact(out, secrets), redact(stderr, secrets)
    return _Result(status, out, stderr)


def _local(path: Path, args: Sequence[str], *, what: str) -> str:
    return _check(_run(path, args), what=what)


def _network(path: Path, args: Sequence[str], token: TokenSource | None, *, what: str) -> str:
    return _check(_run(path, args, network=True, token=token), what=what)


def _check(result: _Result, *, what: str) -> str:
    if result.status != 0:
        _raise_for(result, what=what)
    return result.stdout


def _raise_for(result: _Result, *, what: str) -> NoReturn:
    text = redact(result.stderr.strip() or result.stdout.strip())
    raise GitError(f"git could not {what}{_hint(text)}", detail=text)


def _hint(text: str) -> str:
    lowered = text.lower()
    if "(stopped after" in lowered:
        return ": it ran past its time limit and was stopped"
    if "authentication failed" in lowered or "error: 401" in lowered:
        return ": the token was refused (expired, or the app is not installed on the repository)"
    if "error: 403" in lowered or "permission to" in lowered:
        return ": the app lacks write access ('contents: write') to the repository"
    if "repository not found" in lowered or "error: 404" in lowered:
        return ": the repository was not found, or the installation does not cover it"
    unreachable = ("could not resolve host", "failed to connect", "connection refused", "timed out")
    if any(phrase in lowered for phrase in unreachable):
        return ": the git host could not be reached; try again later"
    return ""


def _push(clone: Clone, args: Sequence[str], token: TokenSource | None, *, what: str) -> None:
    result = _run(clone.path, args, network=True, token=token)
    if result.status == 0:
        return
    rejected = [line for line in result.stdout.splitlines() if line.startswith("!")]
    reasons = ("stale info", "non-fast-forward", "fetch first", "already exists")
    if rejected and any(reason in line for line in rejected for reason in reasons):
        raise BranchMovedError(
            f"{clone.repo}: could not {what}: the remote branch moved since it was fetched; "
            "fetch it again and check it is still the bot's before rewriting it",
            detail="\n".join(rejected),
        )
    _raise_for(result, what=what)


def _ref_sha(path: Path, rev: str) -> str | None:
    result = _run(path, ["rev-parse", "--verify", "--quiet", "--end-of-options", rev])
    return result.stdout.strip() or None if result.status == 0 else None


def _check_branch_name(branch: str) -> None:
    if (
        not branch
        or branch.startswith("-")
        or any(c.isspace() or ord(c) < 32 or c in "~^:?*[\\" for c in branch)
        or ".." in branch
        or "@{" in branch
        or branch.endswith(("/", "."))
        or "//" in branch
        or branch.startswith("/")
        or any(part.startswith(".") or part.endswith(".lock") for part in branch.split("/"))
        or branch == "@"
    ):
        raise GitError(f"{branch!r} is not a valid branch name")


def _check_pushable(clone: Clone, branch: str) -> None:
    _check_branch_name(branch)
    if branch == clone.default_branch:
        raise GitError(f"{clone.repo}: refusing to push {branch}: it is the default branch")
    if not branch.startswith(BRANCH_PREFIX) or branch == BRANCH_PREFIX:
        raise GitError(
            f"{clone.repo}: refusing to push {branch}: "
            f"the bot pushes only {BRANCH_PREFIX}* branches"
        )
