"""Reciprocal rank fusion of the keyword and vector legs (pure; weights from settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Fused:
    product_id: int
    score: float
    matched: tuple[str, ...]


def ranked(ids_and_keys: Sequence[tuple[int, object]]) -> list[tuple[int, int]]:
    """(id, rank) with equal keys sharing a rank (competition ranking: 1, 2, 2, 4): products
    with the same evidence (the keyword leg: same words matched, same weighted rank) must not
    be told apart by the order the database happened to return them in."""
    out, rank, previous = [], 0, object()
    for position, (pid, sort_key) in enumerate(ids_and_keys, start=1):
        if sort_key != previous:
            rank, previous = position, sort_key
        out.append((pid, rank))
    return out


def rrf(
    legs: Mapping[str, Sequence[tuple[int, int]]], *, weights: Mapping[str, float], k: float
) -> list[Fused]:
    """Each leg is a list of (product id, rank); a product scores sum(weight / (k + rank))
    over the legs that returned it. Ranks, not raw scores: full-text ranks and cosines are
    on different scales, and rank fusion needs no calibration between them. Ties by id."""
    scores: dict[int, float] = {}
    matched: dict[int, list[str]] = {}
    for leg, hits in legs.items():
        weight = weights.get(leg, 1.0)
        for pid, rank in hits:
            scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
            matched.setdefault(pid, []).append(leg)
    order = sorted(scores, key=lambda pid: (-scores[pid], pid))
    return [Fused(pid, scores[pid], tuple(sorted(matched[pid]))) for pid in order]
