"""An untrained copy of a model (same architecture, random weights): the floor for quality."""

from __future__ import annotations

import json
from pathlib import Path

from clip_train.checkpoint import save_model
from search.embeddings.clip import LOCAL_DIR_PREFIX, ModelSpec, import_torch


def untrained_like(spec: ModelSpec, out: Path, *, seed: int = 0) -> ModelSpec:
    """Save a randomly initialised model with ``spec``'s config to ``out`` (a local-dir)."""
    torch, open_clip = import_torch()

    out.mkdir(parents=True, exist_ok=True)
    source = spec.pretrained if spec.pretrained.startswith(LOCAL_DIR_PREFIX) else spec.name
    if source.startswith(LOCAL_DIR_PREFIX):
        folder = Path(source.removeprefix(LOCAL_DIR_PREFIX))
        config = json.loads((folder / "open_clip_config.json").read_text())
    else:
        config = {"model_cfg": open_clip.get_model_config(spec.name), "preprocess_cfg": {}}
    (out / "open_clip_config.json").write_text(json.dumps(config))
    for stale in out.glob("open_clip_model.*"):
        stale.unlink()
    torch.manual_seed(seed)
    model = open_clip.create_model(f"{LOCAL_DIR_PREFIX}{out}")  # config only: random weights
    save_model(out, model, config["model_cfg"], config.get("preprocess_cfg", {}), dtype="fp32")
    return ModelSpec(f"{spec.name}-untrained", f"{LOCAL_DIR_PREFIX}{out}")
