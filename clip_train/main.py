"""``train()``: a whole run, from options to a saved folder the app loads as ``local-dir:``.

The folder loads through the normal path, ``ClipEncoder(ModelSpec(label, "local-dir:" +
folder))`` (``open_clip.create_model_and_transforms("local-dir:" + folder)``):
``open_clip_config.json``, ``open_clip_model.safetensors`` and ``TRAINING.json`` (how it was made).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from clip_train.checkpoint import save_model, versions
from clip_train.data import SOURCES, DataSource
from clip_train.model import load_model
from clip_train.options import TrainOptions
from clip_train.trainer import Trainer, lr_at, make_optimizer, seed_everything
from search.embeddings.clip import LOCAL_DIR_PREFIX, import_torch, pick_device

log = logging.getLogger(__name__)


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


def train(
    opts: TrainOptions,
    *,
    sources: Mapping[str, DataSource] = SOURCES,
    log_fn: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict, Any], None] | None = None,
) -> TrainResult:
    """Train (or fine-tune) and save; returns the metrics and the in-memory model.

    ``on_epoch(row, model)`` is called after each epoch with that epoch's metrics (progress
    reporting, or keeping intermediate checkpoints with ``save_model``). ``sources`` maps
    ``opts.source`` names to where the pairs come from (an application adds its own).
    """
    torch, _ = import_torch()

    opts.validate(sources)
    say = log_fn or log.info
    started = time.time()
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    seed_everything(opts.seed)
    device = pick_device(opts.device)
    loaded = load_model(opts, device)
    model = loaded.model
    size = loaded.input_size

    train_data, val_data = sources[opts.source].load(opts, loaded)
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
            "versions": versions(),
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
