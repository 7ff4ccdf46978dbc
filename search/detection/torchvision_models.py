"""``DETECTOR=torchvision:<name>``: any torchvision detection model (Faster R-CNN, RetinaNet,
FCOS, SSD, ...), e.g. ``torchvision:fasterrcnn_mobilenet_v3_large_320_fpn``.

``DETECTOR_WEIGHTS`` says which weights: empty or ``DEFAULT`` for the model's default
pretrained (COCO) weights, downloaded by torchvision on first use into ``TORCH_HOME``; a
weights enum name (``FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1``); a local
checkpoint (a ``state_dict``, or ``{"state_dict", "num_classes", "categories"}`` for a model
fine-tuned on other classes); or ``none`` for random weights (tests, smoke runs).

torch and torchvision come through ``search.embeddings.clip.import_torch``, the one place that
imports them (it also makes torchvision importable on a CPU-only torch whose torchvision
wheel is a CUDA build). That build has no compiled ops: RoIAlign then falls back to
torchvision's own pure-torch version, but ``nms`` (every detector's postprocess) refuses to
run, so a pure-torch ``nms`` is registered as the op's CPU kernel, only when there is none.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
from PIL import Image

from search.detection.base import Detection, clamp_box
from search.embeddings.clip import import_torch

MIN_SCORE = 0.5  # torchvision's own demos keep detections above this


def load_torchvision():
    """(torch, torchvision), with a CPU ``nms`` where the compiled ops are missing."""
    torch, _ = import_torch()
    # import_torch has made torchvision importable; the import rule (only search/embeddings
    # imports torch libraries by name) is kept by going through it.
    torchvision = importlib.import_module("torchvision")
    if not importlib.import_module("torchvision.extension")._has_ops():
        _cpu_fallbacks(torch)
    return torch, torchvision


def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression in plain torch, as ``torchvision.ops.nms``: indices of
    the kept boxes (x0, y0, x1, y1), best score first."""
    torch, _ = import_torch()
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = (inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)).cpu().numpy()
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def _cpu_fallbacks(torch) -> None:
    """Without torchvision's compiled ops: ``nms`` gets a CPU kernel (when it has none) and
    RoIAlign runs its pure-torch version eagerly."""
    if getattr(_cpu_fallbacks, "done", False):
        return
    has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key("torchvision::nms", "CPU")
    if not has_kernel:
        lib = torch.library.Library("torchvision", "IMPL")
        lib.impl("nms", nms, "CPU")
        _cpu_fallbacks.library = lib  # the kernel lives as long as the Library object
    # torchvision.ops.nms checks for the compiled extension before calling the op; its
    # detection models call the module's nms by name, so that name now calls the op itself.
    boxes = importlib.import_module("torchvision.ops.boxes")
    boxes.nms = lambda b, s, t: torch.ops.torchvision.nms(b, s, t)
    # The pure-torch RoIAlign is wrapped in torch.compile, which took 15-40 s on the first
    # photo of a process here; the function it wraps runs a photo in about a second.
    roi_align = importlib.import_module("torchvision.ops.roi_align")
    roi_align._roi_align = getattr(roi_align._roi_align, "__wrapped__", roi_align._roi_align)
    _cpu_fallbacks.done = True


def build(name: str, weights: str = "", **model_kwargs):
    """(model in eval mode, category names or None) for a torchvision detection model;
    ``model_kwargs`` go to its builder (``box_score_thresh``, ``min_size``, ...)."""
    torch, torchvision = load_torchvision()
    models = torchvision.models
    available = models.list_models(module=importlib.import_module("torchvision.models.detection"))
    if name not in available:
        raise ValueError(
            f"{name!r} is not a torchvision detection model; one of: {', '.join(available)}"
        )
    builder = models.get_model_builder(name)
    value = weights.strip()
    if value.lower() == "none":
        return builder(weights=None, weights_backbone=None, **model_kwargs).eval(), None
    if value and Path(value).is_file():
        checkpoint = torch.load(value, map_location="cpu", weights_only=True)
        state = checkpoint.get("state_dict", checkpoint)
        num_classes = checkpoint.get("num_classes", 91)
        model = builder(
            weights=None, weights_backbone=None, num_classes=num_classes, **model_kwargs
        )
        model.load_state_dict(state)
        return model.eval(), checkpoint.get("categories")
    enum = models.get_model_weights(name)
    chosen = enum.DEFAULT if value in ("", "DEFAULT") else models.get_weight(value)
    model = builder(
        weights=chosen, **model_kwargs
    )  # downloads on first use (needs internet or TORCH_HOME)
    return model.eval(), list(chosen.meta.get("categories", [])) or None


class TorchvisionDetector:
    """Boxes (and the model's own class names) from a torchvision detection model."""

    def __init__(
        self, model_name: str, weights: str = "", *, min_score: float = MIN_SCORE, **model_kwargs
    ):
        self.name = f"torchvision:{model_name}"
        self.model, self.categories = build(model_name, weights, **model_kwargs)
        self.min_score = min_score

    def detect(self, image: Image.Image, *, max_items: int = 8) -> list[Detection]:
        torch, _ = import_torch()
        rgb = image.convert("RGB")
        x = torch.from_numpy(np.asarray(rgb, np.float32).transpose(2, 0, 1) / 255.0)
        with torch.inference_mode():
            out = self.model([x])[0]
        W, H = rgb.size
        found = []
        for (x0, y0, x1, y1), score, label in zip(
            out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist(), strict=True
        ):
            if score < self.min_score or x1 <= x0 or y1 <= y0:
                continue
            category = None
            if self.categories and 0 <= label < len(self.categories):
                category = self.categories[label]
            box = clamp_box((x0 / W, y0 / H, (x1 - x0) / W, (y1 - y0) / H))
            found.append(Detection(box, round(float(score), 4), category))
        found = sorted(found, key=lambda d: -d.confidence)[:max_items]
        return sorted(found, key=lambda d: -d.area)
