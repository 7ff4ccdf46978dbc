"""Train a CLIP model on the shop's own products, or fine-tune pretrained CLIP weights.

Two data sources give (image, caption) pairs:

* ``fashion-mnist``: the Fashion-MNIST product photos coloured on the fly (``shop.demo.fashion``).
  Every time an item is drawn it gets a random palette colour and one of its varied captions,
  so the model sees each garment in many colours. No database needed.
* ``catalog``: the products in the database, with their image files and captions made from the
  title, description, colour and category.

The result is a folder that loads through the normal path, ``ClipEncoder(ModelSpec(label,
"local-dir:" + folder))`` (``open_clip.create_model_and_transforms("local-dir:" + folder)``):
``open_clip_config.json``, ``open_clip_model.safetensors`` and ``TRAINING.json`` (how it was made).

torch and open_clip are imported only through ``search.embeddings.clip.import_torch``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from search.embeddings.clip import LOCAL_DIR_PREFIX, to_rgb, import_torch, pick_device

log = logging.getLogger(__name__)

SOURCES = ("fashion-mnist", "catalog")
DEFAULT_LR_SCRATCH = 5e-4
DEFAULT_LR_FINETUNE = 1e-5
MAX_LOGIT_SCALE = math.log(100)  # as in CLIP: the temperature never goes below 0.01


class TrainingError(ValueError):
    """The training run cannot start as configured; the message says what to change."""


@dataclass
class TrainOptions:
    """Everything a training run depends on (recorded in TRAINING.json)."""

    source: str = "fashion-mnist"
    model: str = "shop-clip-demo"  # an open_clip config name (the project's or built-in)
    pretrained: str = ""  # fine-tune from: a pretrained tag, a checkpoint file or local-dir:DIR
    out: str = ""  # output folder; default .data/models/<model>-<source>-s<seed>
    epochs: int = 10
    batch_size: int = 256
    lr: float | None = None  # default 5e-4 from scratch, 1e-5 when fine-tuning
    weight_decay: float = 0.1
    warmup: float = 0.05  # fraction of all steps (< 1) or a number of steps (>= 1)
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    seed: int = 0
    train_count: int = 20000  # items (fashion-mnist) or at most this many images (catalog)
    val_count: int = 1000  # held-out items/products for validation (catalog: at most 10%)
    image_size: int | None = None  # override the model config's input size
    augment: bool = True  # light random crops/zoom and horizontal flips; never colour
    # "This, but in red": a query 0.7 * image + 0.3 * text(colour) should find the same item in
    # that colour. Trained where the source can show an item in another colour (fashion-mnist).
    compose_weight: float = 0.0
    compose_image_share: float = 0.7
    # Also classify each image among the label prompts ("a dress", from the category), which
    # makes the category weigh more in image vectors (image -> similar image search).
    label_weight: float = 0.0
    # Image to image: images with the same label are neighbours whatever their colour
    # (supervised contrastive), so "more like this" finds the same kind of product.
    image_label_weight: float = 0.0
    split: str = "train"  # Fashion-MNIST split to train on
    device: str = "auto"
    precision: str = "auto"  # auto (bf16/fp16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16
    threads: int | None = None  # torch CPU threads
    save_dtype: str = "fp16"  # weights file dtype: fp16 (small) or fp32
    progress: bool = True
    command: str = ""  # recorded in TRAINING.json; default: this process's argv

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return DEFAULT_LR_FINETUNE if self.finetune else DEFAULT_LR_SCRATCH

    @property
    def finetune(self) -> bool:
        return bool(self.pretrained) or self.model.startswith(LOCAL_DIR_PREFIX)

    def resolved_out(self) -> Path:
        if self.out:
            return Path(self.out)
        name = Path(self.model.removeprefix(LOCAL_DIR_PREFIX)).name or "model"
        return Path(".data") / "models" / f"{name}-{self.source}-s{self.seed}"

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise TrainingError(f"Unknown source {self.source!r}; use one of {', '.join(SOURCES)}.")
        if self.epochs < 1 or self.batch_size < 2:
            raise TrainingError("Use at least 1 epoch and a batch size of at least 2.")
        if self.train_count < 2:
            raise TrainingError("Train on at least 2 items.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise TrainingError("precision must be auto, fp32, bf16 or fp16.")
        if self.save_dtype not in ("fp16", "fp32"):
            raise TrainingError("save_dtype must be fp16 or fp32.")


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, float]
    history: list[dict[str, float]]
    duration_s: float
    model: Any = field(repr=False, default=None)  # the trained model, in eval mode
    tokenizer: Any = field(repr=False, default=None)

    @property
    def env(self) -> dict[str, str]:
        """The settings that make the app search with this model."""
        return {
            "CLIP_MODEL": self.out.name,
            "CLIP_PRETRAINED": f"{LOCAL_DIR_PREFIX}{self.out.resolve()}",
        }


# --- data --------------------------------------------------------------------------------


class PairData(ABC):
    """(image, caption) pairs; ``batch`` gives pixels in [0, 1] at the model's input size."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def batch(
        self, idx: np.ndarray, rng: np.random.Generator, *, train: bool
    ) -> tuple[Any, list[str]]:
        """Pixels (float tensor [B, 3, S, S] in 0..1) and one caption per item.

        ``train=True`` draws a random caption (and colour, where the source can) per item;
        ``train=False`` gives each item's fixed validation caption.
        """

    #: Whether ``variant_batch`` can show the same items in another colour.
    has_variants = False
    #: Distinct label prompts ("a dress"); ``label_ids`` maps items to them. Empty: no labels.
    label_prompts: list[str] = []

    def label_ids(self, idx: np.ndarray) -> np.ndarray:
        """Index into ``label_prompts`` per item (only called when ``label_prompts`` is set)."""
        raise TypeError(f"{type(self).__name__} has no labels")

    def variant_batch(self, idx: np.ndarray, rng: np.random.Generator):
        """The n items twice, in two different colours: pixels [2n], captions [2n], and for
        each image the colour name of its partner (image j's partner is j + n mod 2n).
        Only called when ``has_variants``."""
        raise TypeError(f"{type(self).__name__} cannot show an item in another colour")


class ImageTextPairs(PairData):
    """Images decoded and resized once (kept as uint8), each with a list of captions."""

    def __init__(
        self,
        pixels,
        captions: Sequence[Sequence[str]],
        val_captions: Sequence[str],
        labels: Sequence[str] | None = None,
    ):
        if len(pixels) != len(captions) or len(captions) != len(val_captions):
            raise ValueError("pixels, captions and val_captions must have the same length")
        self.pixels = pixels  # uint8 [N, 3, S, S]
        self.captions = [list(c) for c in captions]
        self.val_captions = list(val_captions)
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and all(self.labels):
            self.label_prompts = sorted(set(self.labels))
            where = {p: i for i, p in enumerate(self.label_prompts)}
            self._label_ids = np.array([where[p] for p in self.labels])

    def label_ids(self, idx):
        return self._label_ids[np.asarray(idx)]

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def from_images(
        cls,
        images: Sequence[Image.Image],
        captions: Sequence[Sequence[str]],
        geometry: Callable,
        val_captions: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
    ) -> ImageTextPairs:
        torch, _ = import_torch()
        pixels = torch.stack([(geometry(to_rgb(im)) * 255).round().to(torch.uint8) for im in images])
        val = val_captions if val_captions is not None else [c[0] for c in captions]
        return cls(pixels, captions, val, labels)

    def subset(self, idx: Sequence[int]) -> ImageTextPairs:
        idx = list(idx)
        return ImageTextPairs(
            self.pixels[idx],
            [self.captions[i] for i in idx],
            [self.val_captions[i] for i in idx],
            [self.labels[i] for i in idx] if self.labels is not None else None,
        )

    def batch(self, idx, rng, *, train):
        pixels = self.pixels[list(idx)].float() / 255
        if train:
            caps = [self.captions[i][int(rng.integers(len(self.captions[i])))] for i in idx]
        else:
            caps = [self.val_captions[i] for i in idx]
        return pixels, caps


class FashionPairs(PairData):
    """Fashion-MNIST garments, coloured per draw exactly as ``shop.demo.fashion.colourise`` does.

    ``colourise`` blends a palette colour into a light background by the garment's ink ``a``
    (upscaled to 128 px and blurred): ``bg * (1 - a) + rgb * (0.75 a + 0.25 a^2)``. Resizing is
    linear, so resizing ``a`` and ``a^2`` once to the model's input size gives the same pixels
    as colouring at 128 px and then resizing (what the search sees), for any colour, for free.
    """

    PHOTO_SIZE = 128  # the demo catalog's photo size (shop.demo.catalog)

    def __init__(
        self,
        gray: np.ndarray,
        items: Sequence,
        size: int,
        *,
        resample: int = Image.Resampling.BICUBIC,
    ):
        from shop.demo.fashion import BACKGROUND, CATEGORIES, PALETTE

        torch, _ = import_torch()
        self.items = list(items)
        self.colours = list(PALETTE)
        self.palette = torch.tensor([PALETTE[c] for c in self.colours], dtype=torch.float32)
        self.background = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1)
        self.ink = torch.from_numpy(
            np.stack(
                [_ink_moments(gray[it.index], size, self.PHOTO_SIZE, resample) for it in self.items]
            )
        )  # float16 [N, 2, S, S]: a and a^2, resized
        self.label_prompts = [f"a {name.lower()}" for name, _, _ in CATEGORIES]
        self._labels = np.array([it.label for it in self.items])

    def __len__(self) -> int:
        return len(self.items)

    def label_ids(self, idx):
        return self._labels[np.asarray(idx)]

    @staticmethod
    def _describe(item, rng) -> str:
        from shop.demo.fashion import describe

        return describe(item, rng)[0]

    def render(self, idx: Sequence[int], colour_ids: Sequence[int]):
        torch, _ = import_torch()
        ink = self.ink[list(idx)].float()
        a, a2 = ink[:, :1], ink[:, 1:]
        rgb = self.palette[list(colour_ids)].view(-1, 3, 1, 1)
        out = self.background * (1 - a) + rgb * (0.75 * a + 0.25 * a2)
        return out.round().clamp_(0, 255) / 255

    has_variants = True

    def batch(self, idx, rng, *, train):
        if not train:
            colour_ids = [self.colours.index(self.items[i].colour) for i in idx]
            caps = [f"a {self.items[i].colour} {self.items[i].category_name.lower()}" for i in idx]
            return self.render(idx, colour_ids), caps
        colour_ids = rng.integers(len(self.colours), size=len(idx))
        return self.render(idx, colour_ids), self._captions(idx, colour_ids, rng)

    def variant_batch(self, idx, rng):
        n = len(idx)
        first = rng.integers(len(self.colours), size=n)
        second = (first + rng.integers(1, len(self.colours), size=n)) % len(self.colours)
        both_idx = np.concatenate([idx, idx])
        both = np.concatenate([first, second])
        words = [self.colours[int(c)] for c in np.concatenate([second, first])]
        return self.render(both_idx, both), self._captions(both_idx, both, rng), words

    def _captions(self, idx, colour_ids, rng) -> list[str]:
        """One of ``shop.demo.fashion.captions`` (varied phrasings) per item, in its drawn colour."""
        from dataclasses import replace

        from shop.demo.fashion import captions

        caps = []
        for i, c in zip(idx, colour_ids, strict=True):
            item = replace(self.items[i], colour=self.colours[int(c)])
            options = captions(item, self._describe(item, rng))
            caps.append(options[int(rng.integers(len(options)))])
        return caps


def _ink_moments(gray: np.ndarray, size: int, photo_size: int, resample: int) -> np.ndarray:
    """The garment's ink ``a`` at ``photo_size`` as colourise makes it, and a^2, resized to ``size``."""
    from PIL import ImageFilter

    ink = Image.fromarray(gray, "L").resize((photo_size, photo_size), Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=photo_size / 224))
    a = np.asarray(ink, dtype=np.float32) / 255.0
    out = []
    for moment in (a, a * a):
        img = Image.fromarray(moment, "F")
        if size != photo_size:
            img = img.resize((size, size), resample)
        out.append(np.asarray(img))
    return np.stack(out).astype(np.float16)  # bicubic over/undershoot kept, as in the photo


def fashion_data(opts: TrainOptions, size: int, resample: int) -> tuple[FashionPairs, FashionPairs]:
    """Train and validation sets from one Fashion-MNIST split (disjoint garments)."""
    from shop.demo.fashion import CATEGORIES, load_split, sample_items

    gray, labels = load_split(opts.split)
    per_class = int(np.bincount(labels, minlength=len(CATEGORIES)).min())
    limit = per_class * len(CATEGORIES)
    val_count = min(opts.val_count, limit // 10)
    train_count = min(opts.train_count, limit - val_count)
    items = sample_items(labels, train_count + val_count, opts.seed)
    # sample_items cycles through the categories, so both parts stay balanced.
    train = FashionPairs(gray, items[:train_count], size, resample=resample)
    val = FashionPairs(gray, items[train_count:], size, resample=resample)
    return train, val


def product_captions(product) -> list[str]:
    """Ways a shopper might describe a catalog product."""
    title = product.title.strip()
    category = product.category.name.strip().lower() if product.category_id else ""
    colour = (product.colour or "").strip().lower()
    caps = [title, f"a photo of a {title.lower()}", product.embedding_text]
    if product.description.strip():
        caps.append(product.description.strip())
    if category:
        caps += [f"a {category}", f"a photo of a {category}"]
        if colour:
            caps += [f"{colour} {category}", f"a {colour} {category}"]
    if colour:
        caps.append(f"something {colour}")
    return list(dict.fromkeys(c for c in caps if c))


def catalog_data(
    opts: TrainOptions, geometry: Callable
) -> tuple[ImageTextPairs, ImageTextPairs | None]:
    """Every image of the catalog's products; validation holds out whole products."""
    from django.core.files.storage import default_storage

    from search.images import InvalidImage, open_image
    from shop.models import Product

    products = list(Product.objects.with_images().order_by("id"))
    products = [p for p in products if p.images.all()]
    if len(products) < 2:
        raise TrainingError(
            "The catalog has fewer than 2 products with images; add products first "
            "(or use --source fashion-mnist)."
        )
    rng = np.random.default_rng(opts.seed)
    order = rng.permutation(len(products))
    n_val = min(opts.val_count, len(products) // 10) if len(products) >= 10 else 0
    val_ids = set(order[:n_val].tolist())

    def load(chosen: list, limit: int) -> ImageTextPairs | None:
        images, caps, val_caps, labels = [], [], [], []
        for product in chosen:
            captions = product_captions(product)
            for pimg in product.images.all():
                if len(images) >= limit:
                    break
                try:
                    with default_storage.open(pimg.image.name, "rb") as f:
                        images.append(open_image(f))
                except (OSError, InvalidImage) as exc:
                    log.warning("Skipping image %s of product %s: %s", pimg.pk, product.pk, exc)
                    continue
                caps.append(captions)
                val_caps.append(f"a photo of a {product.title.strip().lower()}")
                labels.append(f"a {product.category.name.strip().lower()}")
        if not images:
            return None
        return ImageTextPairs.from_images(images, caps, geometry, val_caps, labels)

    train = load([p for i, p in enumerate(products) if i not in val_ids], opts.train_count)
    if train is None or len(train) < 2:
        raise TrainingError("Fewer than 2 catalog images could be read; check MEDIA storage.")
    val = load([products[i] for i in sorted(val_ids)], 10**9)
    return train, val


# --- model -------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_cfg: dict
    preprocess_cfg: dict
    geometry: Callable  # PIL -> float tensor [3, S, S] in 0..1 (the preprocess without Normalize)
    mean: Any
    std: Any


def load_model(opts: TrainOptions, device: str) -> LoadedModel:
    """A fresh model from a config, or pretrained weights to fine-tune, as open_clip loads them."""
    torch, open_clip = import_torch()
    from torchvision.transforms import Compose, Normalize

    name, pretrained = opts.model, opts.pretrained or None
    if pretrained and pretrained.startswith(LOCAL_DIR_PREFIX):
        name, pretrained = pretrained, None
    base_cfg = open_clip.get_model_config(name)
    if base_cfg is None:
        raise TrainingError(
            f"No model config {name!r}. Use one of the project's configs "
            f"({', '.join(project_configs())}), an open_clip built-in name, or local-dir:DIR."
        )
    model_cfg = deepcopy(base_cfg)
    if opts.image_size:
        model_cfg["vision_cfg"]["image_size"] = int(opts.image_size)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name,
            pretrained=pretrained,
            device=device,
            force_image_size=opts.image_size or None,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise TrainingError(
            f"Could not create {name!r} with weights {pretrained!r}: {exc}. Offline, point "
            "--pretrained at a checkpoint file or local-dir:DIR instead of a tag."
        ) from exc
    tokenizer = open_clip.get_tokenizer(name)
    steps = list(preprocess.transforms)
    if not steps or not isinstance(steps[-1], Normalize):
        raise TrainingError("Unexpected open_clip preprocess: it should end with Normalize.")
    norm = steps[-1]
    preprocess_cfg = _jsonable(dict(model.visual.preprocess_cfg))
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_cfg=model_cfg,
        preprocess_cfg=preprocess_cfg,
        geometry=Compose(steps[:-1]),
        mean=torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1),
        std=torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1),
    )


def project_configs() -> list[str]:
    from search.embeddings.clip import MODEL_CONFIG_DIR

    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _resample(preprocess_cfg: dict) -> int:
    if preprocess_cfg.get("interpolation") == "bilinear":
        return Image.Resampling.BILINEAR
    return Image.Resampling.BICUBIC


def _input_size(preprocess_cfg: dict) -> int:
    size = preprocess_cfg.get("size", 224)
    if isinstance(size, (list, tuple)):
        if size[0] != size[1]:
            raise TrainingError("Only square model inputs are supported for training.")
        size = size[0]
    return int(size)


# --- training ----------------------------------------------------------------------------


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
        import torch.nn.functional as F

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


def compose_loss(img, word_txt, scale, image_share: float = 0.7, positives=None):
    """Cross-entropy of finding an item's other colour with ``image + text(other colour)``.

    ``img`` holds n items in one colour and then the same n items in another; ``word_txt[j]``
    is the text vector of the colour of image j's partner (j + n mod 2n). The query is
    ``image_share * image + (1 - image_share) * text``, re-normalised, as the search combines
    terms; candidates are all images of the batch, so the query's own image (same item, old
    colour) is the hardest negative. ``positives`` (bool [2n, 2n]), when given, spreads the
    target over every image that answers the query (e.g. same category in the new colour), as
    a shopper would; by default only the partner counts.
    """
    torch, _ = import_torch()
    import torch.nn.functional as F

    n2 = len(img)
    query = F.normalize(image_share * img + (1 - image_share) * word_txt, dim=-1)
    logits = scale * query @ img.T
    if positives is None:
        partner = (torch.arange(n2, device=img.device) + n2 // 2) % n2
        return F.cross_entropy(logits, partner)
    target = positives.float()
    target = target / target.sum(dim=1, keepdim=True).clamp_min(1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def same_label_loss(img, labels, scale):
    """Supervised contrastive loss on images: each image's neighbours should share its label."""
    torch, _ = import_torch()
    import torch.nn.functional as F

    n = len(img)
    eye = torch.eye(n, dtype=torch.bool, device=img.device)
    logits = (scale * img @ img.T).masked_fill(eye, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~eye
    has = positives.any(dim=1)
    if not bool(has.any()):
        return img.sum() * 0
    target = positives.float() / positives.sum(dim=1, keepdim=True).clamp_min(1)
    log_prob = F.log_softmax(logits, dim=1).masked_fill(eye, 0)
    return -(target * log_prob).sum(dim=1)[has].mean()


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


def train(
    opts: TrainOptions,
    *,
    log_fn: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict, Any], None] | None = None,
) -> TrainResult:
    """Train (or fine-tune) and save; returns the metrics and the in-memory model.

    ``on_epoch(row, model)`` is called after each epoch with that epoch's metrics (progress
    reporting, or keeping intermediate checkpoints with ``save_model``).
    """
    torch, _ = import_torch()
    from tqdm.auto import tqdm

    opts.validate()
    say = log_fn or log.info
    started = time.time()
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    seed_everything(opts.seed)
    device = pick_device(opts.device)
    loaded = load_model(opts, device)
    model = loaded.model
    size = _input_size(loaded.preprocess_cfg)

    if opts.source == "fashion-mnist":
        train_data, val_data = fashion_data(opts, size, _resample(loaded.preprocess_cfg))
    else:
        train_data, val_data = catalog_data(opts, loaded.geometry)
    say(
        f"Data: {len(train_data)} training and {len(val_data) if val_data else 0} validation "
        f"items from {opts.source} ({time.time() - started:.1f}s)"
    )

    batch_size = min(opts.batch_size, len(train_data))
    trainer = Trainer(opts, loaded, device)
    # With the "in another colour" loss a batch shows batch_size/2 items in two colours each.
    per_step = max(1, batch_size // 2) if trainer.compose_on(train_data) else batch_size
    steps_per_epoch = max(1, len(train_data) // per_step)
    total_steps = steps_per_epoch * opts.epochs
    warmup = int(opts.warmup if opts.warmup >= 1 else round(opts.warmup * total_steps))
    base_lr = opts.resolved_lr()
    optimizer = make_optimizer(model, base_lr, opts.weight_decay)
    rng = np.random.default_rng(opts.seed)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"Training {opts.model}{' from ' + opts.pretrained if opts.pretrained else ' from scratch'}"
        f" ({n_params / 1e6:.1f}M parameters) on {device}"
        f"{f' with {trainer.amp_dtype} autocast' if trainer.amp_dtype else ''}: {opts.epochs} "
        f"epochs x {steps_per_epoch} steps of {batch_size}, lr {base_lr:g}, input {size}px"
    )

    history: list[dict[str, float]] = []
    model.train()
    step = 0
    bar = tqdm(total=total_steps, disable=not opts.progress, unit="step", dynamic_ncols=True)
    try:
        for epoch in range(1, opts.epochs + 1):
            epoch_start = time.time()
            order = rng.permutation(len(train_data))
            losses = []
            for b in range(steps_per_epoch):
                lr = lr_at(step, total_steps, base_lr, warmup, opts.min_lr_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                idx = order[b * per_step : (b + 1) * per_step]
                losses.append(trainer.train_step(train_data, idx, rng, optimizer))
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}", lr=f"{lr:.2e}")
            row = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "logit_scale": float(model.logit_scale.detach().exp()),
                "epoch_s": round(time.time() - epoch_start, 1),
            }
            row.update(trainer.evaluate(val_data))
            history.append(row)
            say(_format_row(row))
            if on_epoch is not None:
                on_epoch(row, model)
    finally:
        bar.close()
    model.eval()
    duration = time.time() - started
    metrics = {k: v for k, v in history[-1].items() if k != "epoch"}
    metrics["first_epoch_train_loss"] = history[0]["train_loss"]
    out = opts.resolved_out()
    save_model(
        out,
        model,
        loaded.model_cfg,
        loaded.preprocess_cfg,
        dtype=opts.save_dtype,
        training={
            "command": opts.command or " ".join([Path(sys.executable).name, *sys.argv]),
            "seed": opts.seed,
            "options": asdict(opts),
            "model_cfg": loaded.model_cfg,
            "preprocess_cfg": loaded.preprocess_cfg,
            "epochs": opts.epochs,
            "steps": total_steps,
            "batch_size": batch_size,
            "lr": base_lr,
            "train_items": len(train_data),
            "val_items": len(val_data) if val_data else 0,
            "parameters": n_params,
            "final": metrics,
            "history": history,
            "duration_s": round(duration, 1),
            "device": device,
            "threads": torch.get_num_threads(),
            "versions": _versions(),
        },
    )
    say(f"Saved to {out} in {duration:.0f}s")
    return TrainResult(out, metrics, history, duration, model, loaded.tokenizer)


def _format_row(row: dict[str, float]) -> str:
    parts = [f"epoch {row['epoch']}", f"train loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts += [
            f"val loss {row['val_loss']:.4f}",
            f"val image->text acc {row['val_i2t_acc']:.3f}",
            f"text->image acc {row['val_t2i_acc']:.3f}",
        ]
    parts.append(f"{row['epoch_s']}s")
    return ", ".join(parts)


def _versions() -> dict[str, str]:
    torch, open_clip = import_torch()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "open_clip": getattr(open_clip, "__version__", "?"),
        "numpy": np.__version__,
    }


def save_model(
    out: Path,
    model,
    model_cfg: dict,
    preprocess_cfg: dict,
    *,
    dtype: str = "fp16",
    training: dict | None = None,
) -> Path:
    """Write a folder open_clip loads as ``local-dir:`` (weights replaced atomically)."""
    torch, _ = import_torch()
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype == "fp16" and value.is_floating_point():
            value = value.to(torch.float16)
        state[key] = value.contiguous().clone()
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".safetensors.tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt"})
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / "open_clip_model.safetensors")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    if training is not None:
        (out / "TRAINING.json").write_text(json.dumps(_jsonable(training), indent=2) + "\n")
    return out
