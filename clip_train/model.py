"""The model a run trains: a fresh one from a config, or pretrained weights to fine-tune."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from PIL import Image

from clip_train.checkpoint import jsonable
from clip_train.options import TrainingError, TrainOptions
from search.embeddings.clip import LOCAL_DIR_PREFIX, MODEL_CONFIG_DIR, import_torch


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_cfg: dict
    preprocess_cfg: dict
    geometry: Any  # PIL -> float tensor [3, S, S] in 0..1 (the preprocess without Normalize)
    mean: Any
    std: Any

    @property
    def input_size(self) -> int:
        """The square input side in pixels."""
        size = self.preprocess_cfg.get("size", 224)
        if isinstance(size, (list, tuple)):
            if size[0] != size[1]:
                raise TrainingError("Only square model inputs are supported for training.")
            size = size[0]
        return int(size)

    @property
    def resample(self) -> int:
        """The PIL filter the model's preprocess resizes with."""
        if self.preprocess_cfg.get("interpolation") == "bilinear":
            return Image.Resampling.BILINEAR
        return Image.Resampling.BICUBIC


def load_model(opts: TrainOptions, device: str) -> LoadedModel:
    """A fresh model from a config, or pretrained weights to fine-tune, as open_clip loads them."""
    torch, open_clip = import_torch()
    # torchvision imports torch, so it waits for import_torch (which makes it importable).
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
    if opts.context_length and opts.context_length != model_cfg["text_cfg"].get("context_length"):
        extend_text_context(model, int(opts.context_length))
        model_cfg["text_cfg"]["context_length"] = int(opts.context_length)
        tokenizer = open_clip.get_tokenizer(name, context_length=int(opts.context_length))
    else:
        tokenizer = open_clip.get_tokenizer(name)
    steps = list(preprocess.transforms)
    if not steps or not isinstance(steps[-1], Normalize):
        raise TrainingError("Unexpected open_clip preprocess: it should end with Normalize.")
    norm = steps[-1]
    preprocess_cfg = jsonable(dict(model.visual.preprocess_cfg))
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_cfg=model_cfg,
        preprocess_cfg=preprocess_cfg,
        geometry=Compose(steps[:-1]),
        mean=torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1),
        std=torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1),
    )


def extend_text_context(model, length: int) -> None:
    """Give ``model``'s text tower ``length`` token positions, keeping the trained ones.

    open_clip's own checkpoint loading interpolates the position table, which moves every
    trained position; here positions 0..n-1 stay exactly as trained (a short query embeds as
    before) and the new ones start as copies of the last, for fine-tuning to adapt.
    """
    torch, _ = import_torch()
    old = getattr(model, "positional_embedding", None)
    if old is None or not hasattr(model, "attn_mask"):
        raise TrainingError("--context-length works for CLIP models with a built-in text tower.")
    n = old.shape[0]
    if length < n:
        raise TrainingError(f"--context-length can only grow the text context (it is {n}).")
    with torch.no_grad():
        grown = torch.cat([old.data, old.data[-1:].expand(length - n, -1)])
    model.positional_embedding = torch.nn.Parameter(grown)
    model.context_length = length
    mask = torch.full((length, length), float("-inf"), device=grown.device).triu_(1)
    model.register_buffer("attn_mask", mask, persistent=False)


def project_configs() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))
