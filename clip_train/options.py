"""What a training run depends on (``TrainOptions``, recorded in TRAINING.json)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from search.embeddings.clip import LOCAL_DIR_PREFIX

DEFAULT_LR_SCRATCH = 5e-4
DEFAULT_LR_FINETUNE = 1e-5


class TrainingError(ValueError):
    """The training run cannot start as configured; the message says what to change."""


@dataclass
class TrainOptions:
    """Everything a training run depends on (recorded in TRAINING.json)."""

    source: str = "fashion-mnist"  # a name in the sources given to train()
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
    context_length: int | None = None  # grow the text context (trained positions kept)
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
    # Shoppers' photos (issue 11): this share of training images is re-framed (rotated,
    # smaller, off-centre), put on other backgrounds and relit; the caption keeps its colour.
    photo_share: float = 0.0
    # Photo to catalog: a shopper's photo of an item and its catalog shot should be each
    # other's nearest image (InfoNCE over the batch), so photo search matches real photos.
    view_weight: float = 0.0
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

    def validate(self, sources: Collection[str]) -> None:
        """Raise ``TrainingError`` unless these options can start a run on one of ``sources``."""
        if self.source not in sources:
            raise TrainingError(f"Unknown source {self.source!r}; use one of {', '.join(sources)}.")
        if self.epochs < 1 or self.batch_size < 2:
            raise TrainingError("Use at least 1 epoch and a batch size of at least 2.")
        if self.train_count < 2:
            raise TrainingError("Train on at least 2 items.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise TrainingError("precision must be auto, fp32, bf16 or fp16.")
        if not 0 <= self.photo_share <= 1:
            raise TrainingError("photo_share must be between 0 and 1.")
        if self.save_dtype not in ("fp16", "fp32"):
            raise TrainingError("save_dtype must be fp16 or fp32.")
