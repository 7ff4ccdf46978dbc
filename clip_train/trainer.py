"""One optimisation step and validation (``Trainer``), and what a step needs: seeding,
autocast, the learning-rate schedule, the optimizer, augmentation and token caching."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from clip_train.data import PairData
from clip_train.losses import compose_loss, same_label_loss
from clip_train.model import LoadedModel
from clip_train.options import TrainOptions
from search.embeddings.clip import import_torch

MAX_LOGIT_SCALE = math.log(100)  # as in CLIP: the temperature never goes below 0.01


def seed_everything(seed: int) -> None:
    torch, _ = import_torch()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def autocast_dtype(device: str, precision: str):
    """The autocast dtype for ``precision`` on ``device`` (None = full fp32)."""
    torch, _ = import_torch()
    if precision == "fp32":
        return None
    if precision == "auto":
        if device != "cuda":
            return None  # CPUs have no fast half matmuls worth the accuracy loss here
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def lr_at(step: int, total: int, base_lr: float, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warmup to ``base_lr`` over ``warmup`` steps, then cosine decay to ``base_lr*min_ratio``."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base_lr * (min_ratio + (1 - min_ratio) * cosine)


def param_groups(model, weight_decay: float) -> list[dict]:
    """No weight decay on gains, biases, norms, embeddings' scale (as open_clip's trainer)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = (
            p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        )
        (no_decay if exclude else decay).append(p)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]


def make_optimizer(model, lr: float, weight_decay: float):
    """AdamW with CLIP's betas; the fused kernel where this torch has one (much faster on CPU)."""
    torch, _ = import_torch()
    groups = param_groups(model, weight_decay)
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def is_convnet(visual) -> bool:
    """A convolutional image tower (ResNet, timm CNN): it runs faster in channels-last layout."""
    torch, _ = import_torch()
    convs = [m for m in visual.modules() if isinstance(m, torch.nn.Conv2d)]
    return len(convs) > 1 and not hasattr(visual, "transformer")


class Augment:
    """Light geometric augmentation on a batch: random zoom/shift and horizontal flips.

    Colour is never touched: colour is what shoppers search for. Edges are extended from the
    border (product photos have a plain background), so zooming out adds background.
    """

    def __init__(
        self, zoom: tuple[float, float] = (0.9, 1.1), shift: float = 0.06, flip: float = 0.5
    ):
        self.zoom, self.shift, self.flip = zoom, shift, flip

    def __call__(self, pixels, generator):
        torch, _ = import_torch()
        F = torch.nn.functional

        n = pixels.shape[0]
        u = torch.rand(n, 4, generator=generator)
        scale = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * u[:, 0]
        sign = torch.where(u[:, 1] < self.flip, -1.0, 1.0)
        tx = (u[:, 2] * 2 - 1) * self.shift * 2
        ty = (u[:, 3] * 2 - 1) * self.shift * 2
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = scale * sign
        theta[:, 1, 1] = scale
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        return F.grid_sample(
            pixels, grid, mode="bilinear", padding_mode="border", align_corners=False
        )


class TokenCache:
    """Tokenise each distinct caption once (captions repeat a lot)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, Any] = {}

    def __call__(self, texts: Sequence[str]):
        torch, _ = import_torch()
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, row in zip(missing, self.tokenizer(missing), strict=True):
                self.cache[text] = row
        return torch.stack([self.cache[t] for t in texts])


class Trainer:
    def __init__(self, opts: TrainOptions, loaded: LoadedModel, device: str):
        torch, open_clip = import_torch()
        self.opts, self.loaded, self.device = opts, loaded, device
        self.model = loaded.model
        self.tokens = TokenCache(loaded.tokenizer)
        self.mean, self.std = loaded.mean.to(device), loaded.std.to(device)
        self.loss_fn = open_clip.ClipLoss()
        self.amp_dtype = autocast_dtype(device, opts.precision)
        self.scaler = (
            torch.amp.GradScaler("cuda")
            if self.amp_dtype == torch.float16 and device == "cuda"
            else None
        )
        self.augment = Augment() if opts.augment else None
        self.generator = torch.Generator().manual_seed(opts.seed)
        self.channels_last = is_convnet(self.model.visual)
        if self.channels_last:
            self.model.visual.to(memory_format=torch.channels_last)

    def _autocast(self):
        torch, _ = import_torch()
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=self.amp_dtype)

    def _to_device(self, pixels, tokens):
        torch, _ = import_torch()
        if self.device == "cuda":
            pixels = pixels.pin_memory().to(self.device, non_blocking=True)
            tokens = tokens.pin_memory().to(self.device, non_blocking=True)
        else:
            pixels, tokens = pixels.to(self.device), tokens.to(self.device)
        pixels = (pixels - self.mean) / self.std
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return pixels, tokens

    def compose_on(self, data: PairData) -> bool:
        return self.opts.compose_weight > 0 and data.has_variants

    def label_on(self, data: PairData) -> bool:
        return self.opts.label_weight > 0 and len(data.label_prompts) > 1

    def features(self, pixels, tokens):
        with self._autocast():
            img = self.model.encode_image(pixels, normalize=True)
            txt = self.model.encode_text(tokens, normalize=True)
        return img.float(), txt.float()

    def train_step(self, data: PairData, idx: np.ndarray, rng, optimizer) -> float:
        torch, _ = import_torch()
        compose = self.compose_on(data)
        if compose:
            pixels, caps, words = data.variant_batch(idx, rng)
        else:
            pixels, caps = data.batch(idx, rng, train=True)
        if self.augment is not None:
            pixels = self.augment(pixels, self.generator)
        pixels, tokens = self._to_device(pixels, self.tokens(caps))
        scale = self.model.logit_scale.exp().float()
        # Extra texts encoded with the captions: colour words, label prompts.
        words = words if compose else []
        labels = self.label_on(data)
        extra = list(dict.fromkeys(words + (data.label_prompts if labels else [])))
        n = len(caps)
        if extra:
            tokens = torch.cat([tokens, self.tokens(extra).to(self.device)])
        img, txt = self.features(pixels, tokens)
        txt, extra_txt = txt[:n], txt[n:]
        loss = self.loss_fn(img, txt, scale)
        item_idx = np.concatenate([idx, idx]) if compose else np.asarray(idx)
        if compose:
            where = torch.tensor([extra.index(w) for w in words], device=self.device)
            positives = None
            if labels:
                # Any image of the same label in the asked-for colour answers the query.
                target_colour = np.array(words)
                own_colour = np.roll(target_colour, n // 2)
                cats = data.label_ids(item_idx)
                pos = (cats[None, :] == cats[:, None]) & (
                    own_colour[None, :] == target_colour[:, None]
                )
                positives = torch.from_numpy(pos).to(self.device)
            loss = loss + self.opts.compose_weight * compose_loss(
                img, extra_txt[where], scale, self.opts.compose_image_share, positives
            )
        if self.opts.image_label_weight > 0 and len(data.label_prompts) > 1:
            same = torch.from_numpy(data.label_ids(item_idx)).to(self.device)
            loss = loss + self.opts.image_label_weight * same_label_loss(img, same, scale)
        if labels:
            prompts = extra_txt[[extra.index(p) for p in data.label_prompts]]
            target = torch.from_numpy(data.label_ids(item_idx)).to(self.device)
            loss = loss + self.opts.label_weight * torch.nn.functional.cross_entropy(
                scale * img @ prompts.T, target
            )
        if self.opts.view_weight > 0 and data.has_views:
            loss = loss + self.opts.view_weight * self._view_loss(data, idx, rng, scale)
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
        else:
            loss.backward()
        if self.opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.grad_clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return float(loss.detach())

    def _view_loss(self, data: PairData, idx: np.ndarray, rng, scale):
        """Shoppers' photos and catalog shots of the same items find each other (both ways)."""
        torch, _ = import_torch()
        F = torch.nn.functional
        half = np.asarray(idx)[: max(2, len(idx) // 2)]
        photos, shots = data.views(half, rng)
        pixels = torch.cat([photos, shots])
        if self.augment is not None:
            pixels = self.augment(pixels, self.generator)
        pixels, _ = self._to_device(pixels, torch.zeros(0, dtype=torch.long))
        with self._autocast():
            img = self.model.encode_image(pixels, normalize=True).float()
        a, b = img[: len(half)], img[len(half) :]
        target = torch.arange(len(half), device=img.device)
        logits = scale * a @ b.T
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    def evaluate(self, data: PairData | None) -> dict[str, float]:
        """Validation loss (contrastive, in training-size batches) and retrieval accuracy.

        Captions can repeat (two red dresses), so retrieval counts a hit when the retrieved
        caption text (image -> text, among the distinct captions) or the retrieved image's
        caption (text -> image) is the right one.
        """
        torch, _ = import_torch()
        if data is None or len(data) < 2:
            return {}
        self.model.eval()
        rng = np.random.default_rng(0)
        imgs, txts, caps_all, losses, weights = [], [], [], [], []
        bs = self.opts.batch_size
        with torch.inference_mode():
            for start in range(0, len(data), bs):
                idx = np.arange(start, min(len(data), start + bs))
                pixels, caps = data.batch(idx, rng, train=False)
                pixels, tokens = self._to_device(pixels, self.tokens(caps))
                img, txt = self.features(pixels, tokens)
                if len(idx) > 1:
                    scale = self.model.logit_scale.exp().float()
                    losses.append(float(self.loss_fn(img, txt, scale)))
                    weights.append(len(idx))
                imgs.append(img.cpu())
                txts.append(txt.cpu())
                caps_all += caps
        self.model.train()
        img = torch.cat(imgs)
        unique = list(dict.fromkeys(caps_all))
        where = {c: i for i, c in enumerate(unique)}
        target = torch.tensor([where[c] for c in caps_all])
        first = torch.tensor([caps_all.index(c) for c in unique])
        txt_unique = torch.cat(txts)[first]
        sims = img @ txt_unique.T  # [images, distinct captions]
        i2t = float((sims.argmax(dim=1) == target).float().mean())
        t2i = float((target[sims.argmax(dim=0)] == torch.arange(len(unique))).float().mean())
        return {
            "val_loss": float(np.average(losses, weights=weights)) if losses else float("nan"),
            "val_i2t_acc": i2t,
            "val_t2i_acc": t2i,
            "val_items": float(len(data)),
            "val_captions": float(len(unique)),
        }
