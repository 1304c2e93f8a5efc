"""Files of an environment that git ignores: the staging tree leaves them out (it holds what
git tracks or would track), so they are reported as ignored, with the rule, not as missing."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot import shell
from bot.errors import LockwardenError, ToolNotFoundError

# The same environment the staging copy lists files with, so both agree on what is ignored.
_GIT_ENV = {"PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_CONFIG_NOSYSTEM": "1"}


def ignore_rules(repo_root: Path, stage_root: Path, paths: Iterable[str]) -> dict[str, str]:
    """``path -> "source:line: pattern"`` for each of ``paths`` that is a file in
    ``repo_root`` but was left out of ``stage_root`` because git ignores it."""
    left_out = [p for p in dict.fromkeys(paths) if _left_out(repo_root, stage_root, p)]
    if not left_out or not (repo_root / ".git").exists():
        return {}
    try:
        result = shell.run(
            # fsmonitor would start a program the repository's own config names
            ["git", "-c", "core.fsmonitor=false", "check-ignore", "-v", "-z", "--stdin"],
            cwd=repo_root,
            env=_GIT_ENV,
            timeout_s=60,
            stdin_text="".join(f"{path}\0" for path in left_out),
        )
    except ToolNotFoundError:
        return {}
    # -z -v: source NUL line NUL pattern NUL path NUL, per ignored path; exit 1: none ignored
    fields = result.stdout.split("\0")
    out: dict[str, str] = {}
    for start in range(0, len(fields) - 3, 4):
        source, line, pattern, path = fields[start : start + 4]
        out[path] = f"{source}:{line}: {pattern}"
    return out


def check_not_ignored(repo_root: Path, stage_root: Path, paths: Iterable[str]) -> None:
    """Raise naming the first of ``paths`` that git ignores, its rule and what to do."""
    for path, rule in ignore_rules(repo_root, stage_root, paths).items():
        raise LockwardenError(
            f"{path} is git-ignored ({rule}), and Lockwarden reads only the files git does "
            f"not ignore: commit it ('git add -f {path}') or remove the ignore rule"
        )


def _left_out(repo_root: Path, stage_root: Path, path: str) -> bool:
    if path.startswith(":"):  # git would read pathspec magic (check-ignore has no literal mode)
        return False
    return (repo_root / path).is_file() and not (stage_root / path).exists()
