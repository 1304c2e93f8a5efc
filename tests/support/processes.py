"""Whether processes are still running, read from ``/proc``: for tests that check a process
was stopped by what it left behind, never by how long it took."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

GONE_WITHIN_S = 60.0
"""How long a killed process may take to disappear: only stops a test that would hang."""


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def running_with(fragment: str) -> list[int]:
    """The live processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if fragment in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def settled(check: Callable[[], bool]) -> bool:
    """``check()`` once it holds, polling; False if it still fails after
    :data:`GONE_WITHIN_S` (a signal is delivered at once, but the kernel may take a moment to
    tear the process down, longer on a busy machine)."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
