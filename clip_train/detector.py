"""Train the small shop-the-look detector on synthetic scenes (``clip_train.scenes``), no Django.

CenterNet-style and anchor-free: a four-stage CNN (stride 2 each) with a light top-down path
back to stride 4, and one 1x1 head giving, per cell of a 40x40 grid (160 px input), an
"item centre here" logit, the box's log width/height (in cells) and the centre's offset in
its cell. The photo is letterboxed: its longer side resized to ``input`` px, the rest padded
with the edge pixels. Trained with a focal loss on a Gaussian heatmap and L1 on size and
offset at the centres; batch norm is folded into the convolutions when saving.

The saved file (``detector.safetensors``: float32 tensors named like the modules below, the
config as JSON metadata) is the contract with the app: ``search.detection.trained`` runs the
same network in numpy, so serving needs no torch. ``TRAINING.json`` beside it records the
command, seed, timings and losses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clip_train.checkpoint import versions
from clip_train.fashion import PALETTE, load_split
from clip_train.scenes import Box, compose, random_scene
from search.embeddings.clip import import_torch

WEIGHTS_FILE = "detector.safetensors"
CONFIG = {
    "input": 160,  # letterboxed side, px (a multiple of 16)
    "stride": 4,  # output cell, px
    "channels": [8, 24, 48, 64],  # per stride-2 stage
    "head": 24,
    "mean": 0.5,  # input = (rgb / 255 - mean) / std
    "std": 0.25,
    "threshold": 0.3,  # peak score kept as an item (tuned after training: tune_threshold)
}


@dataclass
class DetectorOptions:
    out: str = "search/detection/weights/shop-detector"
    steps: int = 2000
    batch_size: int = 24
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1  # the 2-core build machines are shared
    val_scenes: int = 200  # scenes of held-back train items: loss and threshold tuning
    command: str = ""
    config: dict = field(default_factory=lambda: dict(CONFIG))


def letterbox(image: Image.Image, side: int) -> tuple[np.ndarray, float]:
    """RGB uint8 [side, side, 3]: the photo scaled so its longer side is ``side``, top-left,
    the rest the edge pixels repeated; and the scale (input px per photo px)."""
    rgb = image.convert("RGB")
    scale = side / max(rgb.size)
    w, h = max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))
    arr = np.asarray(rgb.resize((w, h), Image.Resampling.BILINEAR))
    return np.pad(arr, ((0, side - h), (0, side - w), (0, 0)), mode="edge"), scale


def targets(
    boxes: list[Box], size: tuple[int, int], scale: float, cfg: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heatmap [g, g], regression [4, g, g], centre mask [g, g]) for one letterboxed photo;
    ``size`` is the photo's (W, H). Regression: log w, log h (cells), offset x, y in the cell."""
    g, stride = cfg["input"] // cfg["stride"], cfg["stride"]
    heat = np.zeros((g, g), np.float32)
    reg = np.zeros((4, g, g), np.float32)
    mask = np.zeros((g, g), np.float32)
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    for x, y, w, h in boxes:
        W, H = size
        bw, bh = w * W * scale / stride, h * H * scale / stride  # cells
        cx, cy = (x + w / 2) * W * scale / stride, (y + h / 2) * H * scale / stride
        i, j = min(int(cy), g - 1), min(int(cx), g - 1)
        sx, sy = max(bw / 6, 0.7), max(bh / 6, 0.7)
        blob = np.exp(-(((xx - j) ** 2) / (2 * sx * sx) + ((yy - i) ** 2) / (2 * sy * sy)))
        heat = np.maximum(heat, blob)
        heat[i, j] = 1.0
        reg[:, i, j] = (math.log(max(bw, 0.25)), math.log(max(bh, 0.25)), cx - j, cy - i)
        mask[i, j] = 1.0
    return heat, reg, mask


def build_model(cfg: dict):
    """The network, in torch (training); module names are the saved tensors' names."""
    torch, _ = import_torch()
    nn = torch.nn

    def conv_bn(cin: int, cout: int, stride: int):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            c, h = cfg["channels"], cfg["head"]
            ins = [3, *c[:-1]]
            self.stages = nn.ModuleList(
                nn.Sequential(conv_bn(i, o, 2), conv_bn(o, o, 1))
                for i, o in zip(ins, c, strict=True)
            )
            self.lat4, self.lat8, self.lat16 = (nn.Conv2d(ch, h, 1) for ch in c[1:])
            self.head = nn.Conv2d(h, h, 3, 1, 1)
            self.out = nn.Conv2d(h, 5, 1)

        def forward(self, x):
            feats = []
            for stage in self.stages:
                x = stage(x)
                feats.append(x)
            up = nn.functional.interpolate
            p = self.lat16(feats[3])
            p = up(p, scale_factor=2.0, mode="nearest") + self.lat8(feats[2])
            p = up(p, scale_factor=2.0, mode="nearest") + self.lat4(feats[1])
            return self.out(torch.relu(self.head(torch.relu(p))))

    return Net()


def loss_fn(pred, heat, reg, mask):
    """CenterNet's focal loss on the heatmap, L1 on size and offset at the centres."""
    torch, _ = import_torch()
    p = torch.sigmoid(pred[:, 0]).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    focal = -(
        pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)
    ).sum()
    n = pos.sum().clamp(min=1)
    l1 = (torch.abs(pred[:, 1:] - reg) * mask[:, None]).sum()
    return focal / n, l1 / n


def folded_state(model) -> dict[str, np.ndarray]:
    """Float32 arrays with every batch norm folded into its convolution (weight, bias)."""
    state = {}
    for name, module in model.named_modules():
        children = list(module.children())
        if len(children) == 3 and type(children[1]).__name__ == "BatchNorm2d":
            conv, bn = children[0], children[1]
            k = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach()
            state[f"{name}.weight"] = (conv.weight.detach() * k[:, None, None, None]).numpy()
            state[f"{name}.bias"] = (bn.bias - bn.running_mean * k).detach().numpy()
        elif type(module).__name__ == "Conv2d" and not name.startswith("stages"):
            state[f"{name}.weight"] = module.weight.detach().numpy()
            state[f"{name}.bias"] = module.bias.detach().numpy()
    return {k: np.ascontiguousarray(v, np.float32) for k, v in state.items()}


def save(out: Path, model, cfg: dict, training: dict) -> Path:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(folded_state(model), out / WEIGHTS_FILE, metadata={"config": json.dumps(cfg)})
    (out / "TRAINING.json").write_text(json.dumps(training, indent=2) + "\n")
    return out / WEIGHTS_FILE


def batch(
    images: np.ndarray, rng: np.random.Generator, n: int, cfg: dict
) -> tuple[np.ndarray, ...]:
    xs, hs, rs, ms = [], [], [], []
    for _ in range(n):
        photo, boxes = random_scene(images, rng)
        arr, scale = letterbox(photo, cfg["input"])
        heat, reg, mask = targets(boxes, photo.size, scale, cfg)
        xs.append((arr.astype(np.float32) / 255 - cfg["mean"]) / cfg["std"])
        hs.append(heat), rs.append(reg), ms.append(mask)
    x = np.stack(xs).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), np.stack(hs), np.stack(rs), np.stack(ms)


@dataclass
class DetectorResult:
    out: Path
    model: Any = field(repr=False)
    training: dict
    val_scenes: list[tuple[Image.Image, list[Box]]] = field(repr=False, default_factory=list)


def train_detector(
    opts: DetectorOptions, *, log_fn: Callable[[str], None] = print
) -> DetectorResult:
    """Train, save ``opts.out``; the validation scenes come back for threshold tuning."""
    torch, _ = import_torch()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    started = time.perf_counter()
    cfg = opts.config
    images, _ = load_split("train")
    order = np.random.default_rng(opts.seed).permutation(len(images))
    held = images[order[:1000]]  # validation items, never drawn for training
    train_images = images[order[1000:]]
    rng = np.random.default_rng(opts.seed + 1)
    val_scenes = validation_scenes(held, opts.seed + 2, opts.val_scenes)
    model = build_model(cfg)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    warmup = max(1, opts.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return opts.lr * (step + 1) / warmup
        return opts.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (opts.steps - warmup)))

    history = []
    window: list[float] = []
    for step in range(opts.steps):
        for group in optim.param_groups:
            group["lr"] = lr_at(step)
        x, heat, reg, mask = (
            torch.from_numpy(a) for a in batch(train_images, rng, opts.batch_size, cfg)
        )
        focal, l1 = loss_fn(model(x), heat, reg, mask)
        loss = focal + l1
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        window.append(loss.item())
        if (step + 1) % max(1, opts.steps // 10) == 0 or step + 1 == opts.steps:
            row = {"step": step + 1, "loss": round(float(np.mean(window)), 4)}
            row["seconds"] = round(time.perf_counter() - started, 1)
            history.append(row)
            window = []
            log_fn(f"step {row['step']}/{opts.steps} loss {row['loss']} ({row['seconds']} s)")
    model.eval()
    with torch.no_grad():
        val = [_val_loss(model, photo, boxes, cfg) for photo, boxes in val_scenes]
    training = {
        "command": opts.command,
        "seed": opts.seed,
        "options": asdict(opts),
        "config": cfg,
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history,
        "val_loss": round(float(np.mean(val)), 4),
        "train_seconds": round(time.perf_counter() - started, 1),
        "data": "Fashion-MNIST train split: 59,000 items for training scenes "
        "(clip_train.scenes.random_scene), 1,000 held back for the validation scenes "
        "(validation_scenes: 2 to 4 items in catalog colours)",
        "versions": versions(),
    }
    out = save(Path(opts.out), model, cfg, training)
    return DetectorResult(out.parent, model, training, val_scenes)


def validation_scenes(
    held: np.ndarray, seed: int, count: int
) -> list[tuple[Image.Image, list[Box]]]:
    """The shop's case, from items training never sees: 2 to 4 garments in catalog colours at
    catalog size (tiles of 128 px), any background and layout. They give the validation loss
    and choose the peak threshold (their own random stream: the training data and weights do
    not depend on them)."""
    rng = np.random.default_rng(seed)
    colours = list(PALETTE.values())
    out = []
    for _ in range(count):
        n = int(rng.integers(2, 5))
        picked = rng.choice(len(held), n, replace=False)
        garments = [(held[i], colours[int(rng.integers(len(colours)))]) for i in picked]
        out.append(compose(garments, rng, tile=128))
    return out


def _val_loss(model, photo: Image.Image, boxes: list[Box], cfg: dict) -> float:
    torch, _ = import_torch()
    arr, scale = letterbox(photo, cfg["input"])
    x = (arr.astype(np.float32) / 255 - cfg["mean"]) / cfg["std"]
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    heat, reg, mask = (torch.from_numpy(a[None]) for a in targets(boxes, photo.size, scale, cfg))
    focal, l1 = loss_fn(model(x), heat, reg, mask)
    return float(focal + l1)


def record_tuning(out: Path, threshold: float, metrics: dict[str, Any]) -> None:
    """Store the tuned peak threshold in the weights' config and the metrics in TRAINING.json."""
    from safetensors.numpy import load_file, save_file

    path = Path(out) / WEIGHTS_FILE
    cfg = read_config(path)
    cfg["threshold"] = threshold
    save_file(load_file(path), path, metadata={"config": json.dumps(cfg)})
    training_path = Path(out) / "TRAINING.json"
    training = json.loads(training_path.read_text())
    training["config"] = cfg
    training["validation"] = metrics
    training_path.write_text(json.dumps(training, indent=2) + "\n")


def read_config(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return json.loads(f.metadata()["config"])
