"""Train the shop-the-look detector on synthetic Fashion-MNIST scenes (``clip_train.detector``),
then choose its peak threshold on the validation scenes (``search.detection.tuning``)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from clip_train.detector import WEIGHTS_FILE, DetectorOptions, record_tuning, train_detector
from search.detection.trained import TrainedDetector, load
from search.detection.tuning import tune_threshold


class Command(BaseCommand):
    help = (
        "Train the small detector DETECTOR=trained uses, on scenes composed from the "
        "Fashion-MNIST train split, and save detector.safetensors + TRAINING.json in --out "
        "(the shipped weights' exact command is in search/detection/weights/shop-detector/"
        "TRAINING.json)."
    )

    def add_arguments(self, parser):
        d = DetectorOptions()
        parser.add_argument("--out", default=d.out, help="output folder (default %(default)s)")
        parser.add_argument("--steps", type=int, default=d.steps)
        parser.add_argument("--batch-size", type=int, default=d.batch_size)
        parser.add_argument("--lr", type=float, default=d.lr)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument(
            "--threads", type=int, default=d.threads, help="torch CPU threads (default 1)"
        )
        parser.add_argument(
            "--val-scenes",
            type=int,
            default=d.val_scenes,
            help="validation scenes (held-back train items) that choose the threshold",
        )

    def handle(self, *args, **o):
        names = {f.name for f in dataclasses.fields(DetectorOptions)}
        argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train_detector" else []
        opts = DetectorOptions(
            **{k: v for k, v in o.items() if k in names},
            command=" ".join(["python", "manage.py", "train_detector", *argv]),
        )
        result = train_detector(opts, log_fn=self.stdout.write)
        path = Path(result.out) / WEIGHTS_FILE
        threshold, metrics = tune_threshold(TrainedDetector(path), result.val_scenes)
        record_tuning(result.out, threshold, metrics)
        load.cache_clear()  # the file now carries the tuned threshold
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained in {result.training['train_seconds']:.0f}s; threshold {threshold}: "
                f"validation recall {metrics['recall@0.5']:.3f}, "
                f"precision {metrics['precision@0.5']:.3f} at IoU 0.5"
            )
        )
        self.stdout.write(f"Saved {path}. To use it: DETECTOR=trained DETECTOR_WEIGHTS={path}")
