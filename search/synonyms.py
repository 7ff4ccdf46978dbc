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


def _edges(rows: Iterable[SynonymLike], *, two_way: bool = True) -> dict[str, dict[str, None]]:
    # Ordered sets (dicts): a term's targets keep the order they were written in.
    graph: dict[str, dict[str, None]] = defaultdict(dict)
    for row in rows:
        term = row.term.strip().lower()
        for target in row.target_list:
            graph[term][target] = None
            if row.two_way and two_way:
                graph[target][term] = None
    return graph


def _path(graph: dict[str, dict[str, None]], start: str, goal: str) -> list[str] | None:
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


def synonym_expansions(rows: Iterable[SynonymLike], *, depth: int = 3) -> dict[str, list[str]]:
    """term -> every word it finds (transitively, ``depth`` steps at most; loops saved in
    spite of the admin check cannot hang a query), its own targets first and in the order
    they were written ("winter -> coat, pullover": coat first)."""
    graph = _edges(rows)
    expanded: dict[str, list[str]] = {}
    for term in graph:
        seen: dict[str, None] = {}
        frontier = [term]
        for _ in range(depth):
            found = (n for f in frontier for n in graph.get(f, ()) if n not in seen and n != term)
            frontier = list(dict.fromkeys(found))
            seen.update(dict.fromkeys(frontier))
        expanded[term] = list(seen)
    return expanded
