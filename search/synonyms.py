"""Synonym graph: expansion at query time and loop detection for the admin. Pure Python over
anything shaped like ``search.models.Synonym`` (``term``, ``target_list``, ``two_way``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol


class SynonymLike(Protocol):
    term: str
    two_way: bool

    @property
    def target_list(self) -> list[str]: ...


def _edges(rows: Iterable[SynonymLike], *, two_way: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        term = row.term.strip().lower()
        for target in row.target_list:
            graph[term].add(target)
            if row.two_way and two_way:
                graph[target].add(term)
    return graph


def _path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path start -> ... -> goal (breadth first), or None."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = [node]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1]
        for nxt in sorted(graph.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def synonym_loop(row: SynonymLike, others: Iterable[SynonymLike]) -> list[str] | None:
    """The loop ``row`` would close (``["a", "b", "a"]``), or None.

    A one-way synonym loops when one of its targets already leads back to its term; a two-way
    one when a one-way chain leads from a target back to the term (the chain would then
    contradict the equivalence). Equivalences among themselves never loop.
    """
    term = row.term.strip().lower()
    graph = _edges(others, two_way=not row.two_way)
    for target in row.target_list:
        if target == term:
            return [term, term]
        path = _path(graph, target, term)
        if path:
            return [term, *path]
    return None


def synonym_expansions(rows: Iterable[SynonymLike], *, depth: int = 3) -> dict[str, set[str]]:
    """term -> every word it finds (transitively, ``depth`` steps at most; loops saved in
    spite of the admin check cannot hang a query)."""
    graph = _edges(rows)
    expanded: dict[str, set[str]] = {}
    for term in graph:
        seen, frontier = set(), {term}
        for _ in range(depth):
            frontier = {n for f in frontier for n in graph.get(f, ())} - seen - {term}
            seen |= frontier
        expanded[term] = seen
    return expanded
