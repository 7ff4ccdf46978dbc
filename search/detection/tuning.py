"""Detection measured on scenes with known boxes: one-to-one matching at an IoU, recall and
precision, and the trained detector's peak threshold chosen on validation scenes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from search.detection.base import Detection
from search.detection.trained import TrainedDetector, decode, forward, letterbox

Box = tuple[float, float, float, float]
THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.1, 0.8, 0.05))


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def match(truth: Sequence[Box], found: Sequence[Box], at: float = 0.5) -> dict[int, int]:
    """truth index -> found index, one to one, greedily by IoU (pairs below ``at`` never)."""
    pairs = sorted(
        ((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
        reverse=True,
    )
    matched: dict[int, int] = {}
    used: set[int] = set()
    for value, i, j in pairs:
        if value < at:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def counts(truth: Sequence[Box], found: Sequence[Detection]) -> tuple[int, int, int]:
    """(matched items, true items, detections) at IoU 0.5."""
    return len(match(truth, [d.box for d in found])), len(truth), len(found)


def recall_precision(totals: Sequence[tuple[int, int, int]]) -> tuple[float, float]:
    hit, n_truth, n_found = (sum(c[k] for c in totals) for k in range(3))
    return hit / max(n_truth, 1), hit / max(n_found, 1)


def tune_threshold(
    detector: TrainedDetector, scenes: Sequence[tuple[Image.Image, list[Box]]]
) -> tuple[float, dict[str, float]]:
    """The peak threshold with the best F1 on ``scenes`` (never the held-out ones), and the
    recall and precision it gives."""
    cfg = detector.weights.config
    outputs = []
    for photo, _ in scenes:
        arr, scale = letterbox(photo, cfg["input"])
        x = (arr.astype(np.float32).transpose(2, 0, 1) / 255 - cfg["mean"]) / cfg["std"]
        outputs.append((forward(detector.weights, x), photo.size, scale))
    best = None
    for threshold in THRESHOLDS:
        c = {**cfg, "threshold": threshold}
        totals = [
            counts(truth, [Detection(box, s) for box, s in decode(out, c, size, scale)])
            for (out, size, scale), (_, truth) in zip(outputs, scenes, strict=True)
        ]
        recall, precision = recall_precision(totals)
        f1 = 2 * recall * precision / max(recall + precision, 1e-9)
        if best is None or f1 > best[0]:
            best = (f1, threshold, recall, precision)
    f1, threshold, recall, precision = best
    return threshold, {
        "threshold": threshold,
        "recall@0.5": round(recall, 4),
        "precision@0.5": round(precision, 4),
        "f1": round(f1, 4),
        "scenes": len(scenes),
    }
