"""Train a CLIP model on the demo data or the catalog, or fine-tune pretrained weights."""

from __future__ import annotations

import dataclasses
import sys

from django.core.management.base import BaseCommand, CommandError

from clip_train.main import train
from clip_train.options import TrainingError, TrainOptions
from search.training_data import SOURCES


class Command(BaseCommand):
    help = (
        "Train a CLIP model from scratch (a project model config such as shop-clip-demo) or "
        "fine-tune pretrained weights (--pretrained), on Fashion-MNIST or the catalog, and save "
        "a folder that CLIP_PRETRAINED=local-dir:DIR loads. The bundled demo model's exact "
        "command is in search/embeddings/weights/shop-clip-demo/TRAINING.json."
    )

    def add_arguments(self, parser):
        d = TrainOptions()
        parser.add_argument("--source", choices=list(SOURCES), default=d.source)
        parser.add_argument(
            "--model",
            default=d.model,
            help="open_clip model config: a project config (search/embeddings/model_configs), "
            "a built-in name such as ViT-B-32, or local-dir:DIR (default %(default)s)",
        )
        parser.add_argument(
            "--pretrained",
            default="",
            help="fine-tune these weights: an open_clip tag (needs internet), a checkpoint file, "
            "or local-dir:DIR (open_clip_config.json + open_clip_model.safetensors)",
        )
        parser.add_argument("--epochs", type=int, default=d.epochs)
        parser.add_argument("--batch-size", type=int, default=d.batch_size)
        parser.add_argument(
            "--lr", type=float, default=None, help="default 5e-4 from scratch, 1e-5 fine-tuning"
        )
        parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
        parser.add_argument(
            "--warmup",
            type=float,
            default=d.warmup,
            help="warmup as a fraction of all steps (<1) or a number of steps",
        )
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument(
            "--train-count",
            type=int,
            default=d.train_count,
            help="training items (fashion-mnist) or at most this many images (catalog)",
        )
        parser.add_argument("--val-count", type=int, default=d.val_count)
        parser.add_argument(
            "--image-size", type=int, default=None, help="override the config's input size"
        )
        parser.add_argument(
            "--context-length",
            type=int,
            default=None,
            help="grow the text context to this many tokens (fine-tuning keeps trained positions)",
        )
        parser.add_argument("--out", default="", help="output folder")
        parser.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, mps")
        parser.add_argument(
            "--precision", choices=("auto", "fp32", "bf16", "fp16"), default=d.precision
        )
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        parser.add_argument("--save-dtype", choices=("fp16", "fp32"), default=d.save_dtype)
        parser.add_argument(
            "--no-augment", action="store_true", help="no random crops/flips (colour never changes)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--compose-weight",
            type=float,
            default=d.compose_weight,
            help="weight of the 'this, but in {colour}' loss (fashion-mnist source)",
        )
        parser.add_argument(
            "--compose-image-share",
            type=float,
            default=d.compose_image_share,
            help="image share of the composed query in that loss (the search's hybrid weight)",
        )
        parser.add_argument(
            "--label-weight",
            type=float,
            default=d.label_weight,
            help="weight of classifying images among category prompts ('a dress')",
        )
        parser.add_argument(
            "--image-label-weight",
            type=float,
            default=d.image_label_weight,
            help="weight of pulling same-category images together whatever their colour",
        )
        parser.add_argument(
            "--photo-share",
            type=float,
            default=d.photo_share,
            help="share of training images shown as shoppers' photos (fashion-mnist source)",
        )
        parser.add_argument(
            "--view-weight",
            type=float,
            default=d.view_weight,
            help="weight of matching a shopper's photo of an item to its catalog shot",
        )

    def handle(self, *args, **o):
        # Options named like TrainOptions fields map straight through.
        names = {f.name for f in dataclasses.fields(TrainOptions)}
        opts = TrainOptions(
            **{k: v for k, v in o.items() if k in names},
            augment=not o["no_augment"],
            progress=not o["no_progress"],
            command=" ".join(["python", "manage.py", "train_clip", *sys.argv[2:]])
            if len(sys.argv) > 1 and sys.argv[1] == "train_clip"
            else "",
        )
        try:
            result = train(opts, sources=SOURCES, log_fn=lambda msg: self.stdout.write(msg))
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        m = result.metrics
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained in {result.duration_s:.0f}s: train loss "
                f"{m['first_epoch_train_loss']:.3f} -> {m['train_loss']:.3f}"
                + (
                    f", val loss {m['val_loss']:.3f}, val image->text accuracy "
                    f"{m['val_i2t_acc']:.3f}, text->image {m['val_t2i_acc']:.3f}"
                    if "val_loss" in m
                    else ""
                )
            )
        )
        self.stdout.write(f"Saved to {result.out} (see TRAINING.json there). To search with it:")
        for key, value in result.env.items():
            self.stdout.write(f"  {key}={value}")
        self.stdout.write(
            "then re-embed the catalog (vectors are stored per model, so old ones are not mixed in)."
        )
