"""Save a trained model as a folder open_clip loads as ``local-dir:`` (and how it was made)."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from search.embeddings.clip import import_torch


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
    # safetensors.torch imports torch, so it waits for import_torch.
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
        (out / "TRAINING.json").write_text(json.dumps(jsonable(training), indent=2) + "\n")
    return out


def versions() -> dict[str, str]:
    """The versions that made a checkpoint (recorded in TRAINING.json)."""
    torch, open_clip = import_torch()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "open_clip": getattr(open_clip, "__version__", "?"),
        "numpy": np.__version__,
    }


def jsonable(value):
    """``value`` with tuples as lists, as JSON writes them (so a config compares equal)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
