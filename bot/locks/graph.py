"""Order environments by their constraints: a lock is compiled after every lock it is
constrained by, so ``train`` sees the new ``serve`` pins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.errors import ConstraintCycleError


def topological_order(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """Names ordered so each comes after its upstreams; ties keep the input order.

    ``edges`` maps every environment to the environments that constrain it.
    """
    upstream = {name: list(dict.fromkeys(deps)) for name, deps in edges.items()}
    for name, deps in upstream.items():
        for dep in deps:
            if dep not in upstream:
                raise ConstraintCycleError(
                    f"environment {name!r} is constrained by unknown {dep!r}"
                )
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = [*path[path.index(name) :], name]
            raise ConstraintCycleError(
                "environments constrain each other in a cycle: "
                + " -> ".join(cycle)
                + "; remove one of these constraints"
            )
        state[name] = "active"
        for dep in upstream[name]:
            visit(dep, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in upstream:
        visit(name, [])
    return order


def downstream_closure(edges: Mapping[str, Iterable[str]], selected: Iterable[str]) -> set[str]:
    """``selected`` plus every environment constrained by them, directly or through others."""
    out = set(selected)
    changed = True
    while changed:
        changed = False
        for name, deps in edges.items():
            if name not in out and out.intersection(deps):
                out.add(name)
                changed = True
    return out
