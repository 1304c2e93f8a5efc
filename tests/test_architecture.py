"""The shape of ``bot/``, read from its source: no import cycles, the core never reaches up
into GitHub, the server or the jobs, and githubkit stays behind ``bot/github/``.

Every import counts, at module level or inside a function (an import inside a function
still ties the two modules together); only imports under ``if TYPE_CHECKING:`` do not, as
they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"

CORE = ("bot.locks", "bot.images", "bot.report", "bot.config", "bot.sandbox")
UPPER = ("bot.github", "bot.server", "bot.jobs", "bot.github_jobs")


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """What it imports, as written (absolute): a module, or a module's attribute."""
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the nodes under ``if TYPE_CHECKING:``."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                hidden.update(id(n) for n in ast.walk(child))
    return hidden


def imports_of(path: Path) -> Iterator[Import]:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in(module, package, path.read_text("utf-8"))


def imports_in(module: str, package: str, source: str) -> Iterator[Import]:
    """Every import ``module`` (in ``package``) runs, relative ones made absolute."""
    tree = ast.parse(source)
    hidden = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def all_imports() -> list[Import]:
    return [found for path in sorted(BOT.rglob("*.py")) for found in imports_of(path)]


def modules() -> set[str]:
    return {module_name(path) for path in BOT.rglob("*.py")}


def _resolve(target: str, known: set[str]) -> str | None:
    """The ``bot`` module ``target`` names: itself, or the module it is an attribute of."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for found in all_imports():
        target = _resolve(found.target, known) if found.target.startswith("bot") else None
        if target is not None and target != found.module:
            graph[found.module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first module repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_bot_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())

    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_core_never_imports_github_server_or_jobs() -> None:
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in all_imports()
        if _within(i.module, CORE) and _within(i.target, UPPER)
    ]

    assert wrong == []


def test_githubkit_is_imported_only_under_bot_github() -> None:
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in all_imports()
        if _within(i.target, ("githubkit", "githubkit_schemas"))
        and not _within(i.module, ("bot.github",))
    ]

    assert wrong == []


def test_reports_read_results_not_the_stages() -> None:
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in all_imports()
        if _within(i.module, ("bot.report",)) and _within(i.target, ("bot.pipeline",))
    ]

    assert wrong == []


# -- the checks themselves ------------------------------------------------------------------


def test_a_cycle_is_reported_as_its_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_count_and_type_checking_ones_do_not() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.github import client\n"
        "def later():\n"
        "    from bot.jobs.queue import JobRequest\n"
        "    import githubkit\n"
        "from . import shell\n"
        "from .locks.lockfile import Lockfile\n"
    )

    found = {(i.target, i.line) for i in imports_in("bot.probe", "bot", source)}

    assert found == {
        ("typing.TYPE_CHECKING", 1),
        ("bot.jobs.queue.JobRequest", 5),
        ("githubkit", 6),
        ("bot.shell", 7),
        ("bot.locks.lockfile.Lockfile", 8),
    }


MAX_FUNCTION_LINES = 80


def test_no_function_in_bot_is_longer_than_80_lines() -> None:
    """ruff's C901 and PLR0915 bound complexity and statements; this bounds length, from
    ``def`` to the function's last line."""
    root = Path(__file__).resolve().parents[1]
    long = []
    for path in sorted((root / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
                    long.append(f"{where} ({length} lines)")
    assert long == [], "split these functions:\n" + "\n".join(long)
