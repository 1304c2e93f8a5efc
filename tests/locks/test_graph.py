"""Constraint order between environments."""

from __future__ import annotations

import pytest

from bot.errors import ConstraintCycleError
from bot.locks.graph import downstream_closure, topological_order


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param({}, [], id="empty"),
        pytest.param({"serve": []}, ["serve"], id="single"),
        pytest.param(
            {"eval": ["train"], "train": ["serve"], "serve": []},
            ["serve", "train", "eval"],
            id="chain-given-backwards",
        ),
        pytest.param(
            {"base": [], "serve": ["base"], "train": ["base"], "eval": ["serve", "train"]},
            ["base", "serve", "train", "eval"],
            id="diamond",
        ),
        pytest.param(
            {"eval": ["train", "serve"], "train": ["base"], "serve": ["base"], "base": []},
            ["base", "train", "serve", "eval"],
            id="diamond-upstreams-in-listed-order",
        ),
        pytest.param(
            {"c": [], "a": [], "b": []}, ["c", "a", "b"], id="independent-keep-input-order"
        ),
        pytest.param(
            {"train": ["serve"], "docs": [], "serve": []},
            ["serve", "train", "docs"],
            id="upstream-pulled-forward",
        ),
        pytest.param(
            {"train": ["serve", "serve"], "serve": []},
            ["serve", "train"],
            id="repeated-edge",
        ),
        pytest.param(
            {"train": iter(["serve"]), "serve": ()}, ["serve", "train"], id="any-iterable"
        ),
    ],
)
def test_topological_order(edges: dict[str, list[str]], expected: list[str]) -> None:
    order = topological_order(edges)
    assert order == expected


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        pytest.param({"a": ["a"]}, "a -> a", id="self-loop"),
        pytest.param({"a": ["b"], "b": ["a"]}, "a -> b -> a", id="cycle-of-2"),
        pytest.param({"a": ["b"], "b": ["c"], "c": ["a"]}, "a -> b -> c -> a", id="cycle-of-3"),
        pytest.param(
            {"docs": [], "x": ["y"], "y": ["z"], "z": ["y"]},
            "y -> z -> y",
            id="cycle-behind-a-chain-names-only-the-cycle",
        ),
    ],
)
def test_cycle_is_named(edges: dict[str, list[str]], cycle: str) -> None:
    with pytest.raises(ConstraintCycleError) as caught:
        topological_order(edges)
    message = str(caught.value)
    assert f"in a cycle: {cycle};" in message
    assert "remove one of these constraints" in message
    assert caught.value.code == "constraint-cycle"


def test_unknown_upstream() -> None:
    with pytest.raises(ConstraintCycleError, match="'train' is constrained by unknown 'serve'"):
        topological_order({"train": ["serve"]})


@pytest.mark.parametrize(
    ("edges", "selected", "expected"),
    [
        pytest.param(
            {"serve": [], "train": ["serve"], "eval": ["train"], "docs": []},
            ["serve"],
            {"serve", "train", "eval"},
            id="transitive",
        ),
        pytest.param(
            {"serve": [], "train": ["serve"], "eval": ["train"]},
            ["train"],
            {"train", "eval"},
            id="upstream-not-included",
        ),
        pytest.param(
            {"base": [], "serve": ["base"], "train": ["base"], "eval": ["serve", "train"]},
            ["serve"],
            {"serve", "eval"},
            id="diamond-one-side",
        ),
        pytest.param({"a": [], "b": []}, ["a"], {"a"}, id="independent"),
        pytest.param({"a": [], "b": ["a"]}, [], set(), id="nothing-selected"),
        pytest.param(
            {"eval": ["train"], "train": ["serve"], "serve": []},
            ["serve"],
            {"serve", "train", "eval"},
            id="edges-listed-downstream-first",
        ),
    ],
)
def test_downstream_closure(
    edges: dict[str, list[str]], selected: list[str], expected: set[str]
) -> None:
    assert downstream_closure(edges, selected) == expected
