"""``DETECTOR=trained``: the project's own small detector, run in numpy (no torch to serve).

Trained on synthetic scenes of Fashion-MNIST garments (``python manage.py train_detector``,
``clip_train/detector.py``): touching and overlapping items, busy backgrounds, uneven light,
which the weightless foreground detector cannot separate. CenterNet-style: per cell of a
stride-4 grid, an item-centre score, the box's size and the centre's offset; an item is a
local maximum of the score above the tuned threshold. The weights file
(``detector.safetensors``, config in its metadata) is the contract with the training code,
which builds the same layers in torch; batch norm is already folded in. About 4 ms of
numpy per photo on one core.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from safetensors import safe_open

from search.detection.base import Detection, clamp_box

SHIPPED = Path(__file__).parent / "weights" / "shop-detector" / "detector.safetensors"
NMS_IOU = 0.5  # two peaks whose boxes overlap this much are one item


class Weights:
    """The tensors and config of a ``detector.safetensors`` file."""

    def __init__(self, path: Path):
        with safe_open(str(path), "np") as f:
            self.config = json.loads(f.metadata()["config"])
            self.tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)

    def conv(self, x: np.ndarray, name: str, stride: int = 1) -> np.ndarray:
        return conv2d(x, self.tensors[f"{name}.weight"], self.tensors[f"{name}.bias"], stride)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1) -> np.ndarray:
    """[C, H, W] -> [O, H', W'], 'same' padding for odd kernels, as torch's Conv2d."""
    k = w.shape[-1]
    if k > 1:
        x = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    c, h, wd = win.shape[:3]
    cols = win.transpose(1, 2, 0, 3, 4).reshape(h * wd, c * k * k)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.T.reshape(w.shape[0], h, wd)


def forward(weights: Weights, x: np.ndarray) -> np.ndarray:
    """The network (``clip_train.detector.build_model``): [3, S, S] -> [5, S/4, S/4]."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    feats = []
    for i in range(len(weights.config["channels"])):
        x = relu(weights.conv(x, f"stages.{i}.0", 2))
        x = relu(weights.conv(x, f"stages.{i}.1"))
        feats.append(x)
    up = lambda a: a.repeat(2, axis=1).repeat(2, axis=2)  # noqa: E731
    p = weights.conv(feats[3], "lat16")
    p = up(p) + weights.conv(feats[2], "lat8")
    p = up(p) + weights.conv(feats[1], "lat4")
    return weights.conv(relu(weights.conv(relu(p), "head")), "out")


def letterbox(image: Image.Image, side: int) -> tuple[np.ndarray, float]:
    """As in training: longer side to ``side``, top-left, padded with the edge pixels."""
    rgb = image.convert("RGB")
    scale = side / max(rgb.size)
    w, h = max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))
    arr = np.asarray(rgb.resize((w, h), Image.Resampling.BILINEAR))
    return np.pad(arr, ((0, side - h), (0, side - w), (0, 0)), mode="edge"), scale


def decode(
    out: np.ndarray, cfg: dict, size: tuple[int, int], scale: float
) -> list[tuple[tuple[float, float, float, float], float]]:
    """Peaks of the centre score (3x3 local maxima above the threshold) -> (box as fractions
    of the photo of ``size``, score), best first, overlapping duplicates dropped."""
    score = 1 / (1 + np.exp(-out[0]))
    padded = np.pad(score, 1, constant_values=-1)
    local_max = sliding_window_view(padded, (3, 3)).max(axis=(-1, -2))
    ys, xs = np.nonzero((score >= local_max) & (score >= cfg["threshold"]))
    stride, (W, H) = cfg["stride"], size
    found = []
    for i in np.argsort(-score[ys, xs]):
        y, x = ys[i], xs[i]
        bw, bh = np.exp(out[1, y, x]) * stride, np.exp(out[2, y, x]) * stride
        cx, cy = (x + out[3, y, x]) * stride, (y + out[4, y, x]) * stride
        box = ((cx - bw / 2) / scale / W, (cy - bh / 2) / scale / H)
        box = (*box, bw / scale / W, bh / scale / H)
        if all(_iou(box, other) < NMS_IOU for other, _ in found):
            found.append((box, float(score[y, x])))
    return found


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


@cache
def load(path: str) -> Weights:
    return Weights(Path(path))


class TrainedDetector:
    """Boxes from the trained network; ``category`` is left to CLIP (``search.services.look``
    labels each crop zero-shot over the catalog's own categories)."""

    name = "trained"

    def __init__(self, weights: str | Path | None = None):
        path = Path(weights or SHIPPED)
        if not path.is_file():
            raise FileNotFoundError(
                f"DETECTOR_WEIGHTS {str(path)!r} is not a file: point it at a "
                "detector.safetensors written by `python manage.py train_detector`"
            )
        self.weights = load(str(path.resolve()))

    def detect(self, image: Image.Image, *, max_items: int = 8) -> list[Detection]:
        cfg = self.weights.config
        arr, scale = letterbox(image, cfg["input"])
        x = (arr.astype(np.float32).transpose(2, 0, 1) / 255 - cfg["mean"]) / cfg["std"]
        found = decode(forward(self.weights, x), cfg, image.size, scale)[:max_items]
        boxes = [Detection(clamp_box(box), round(score, 4)) for box, score in found]
        return sorted(boxes, key=lambda d: -d.area)
