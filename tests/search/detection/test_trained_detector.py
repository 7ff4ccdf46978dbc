"""DETECTOR=trained with the shipped weights, on held-out scenes with known boxes: Fashion-MNIST
t10k items (the detector trained on the train split) touching or overlapping on textured
backgrounds (search/benchmarks/scenes.busy), where the foreground detector merges items."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clip_train.scenes import background
from search.benchmarks import scenes
from search.detection import get_detector
from search.detection.foreground import ForegroundDetector
from search.detection.trained import SHIPPED, TrainedDetector
from search.detection.tuning import counts, recall_precision

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"]
SEED = 21  # not a seed the benchmark uses (0 tuning, 1 held out)


@pytest.fixture(scope="module")
def busy_scenes():
    rng = np.random.default_rng(SEED)
    out = []
    for index in range(24):
        n = int(rng.integers(2, 5))
        items = rng.choice(10000, n, replace=False)
        slugs = [f"t10k-{i}-{COLOURS[int(rng.integers(len(COLOURS)))]}" for i in items]
        out.append(scenes.busy(slugs, rng, index))
    return out


def _measure(detector, scene_list):
    return recall_precision([counts(truth, detector.detect(photo)) for photo, truth in scene_list])


def test_shipped_weights_find_touching_items_on_busy_backgrounds(busy_scenes):
    recall, precision = _measure(TrainedDetector(), busy_scenes)
    assert recall >= 0.85 and precision >= 0.85, (recall, precision)
    fg_recall, _ = _measure(ForegroundDetector(), busy_scenes)
    assert recall > fg_recall + 0.2, (recall, fg_recall)


@pytest.mark.parametrize("layout", scenes.LAYOUTS)
def test_shipped_weights_find_each_item_of_a_collage(layout):
    slugs = ["t10k-0-red", "t10k-1-blue", "t10k-2-green"]
    photo, truth = scenes.collage(slugs, layout, np.random.default_rng(3), "textured")
    hit, n, found = counts(truth, TrainedDetector().detect(photo))
    assert hit == n == found == 3


@pytest.mark.parametrize("kind", ["studio", "noise", "stripes", "checks", "blobs"])
def test_nothing_is_found_on_a_background_without_items(kind):
    arr = background(320, 240, kind, np.random.default_rng(2))
    photo = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    assert TrainedDetector().detect(photo) == []


def test_max_items_keeps_the_surest_then_orders_by_size(busy_scenes):
    photo, truth = max(busy_scenes, key=lambda s: len(s[1]))
    every = TrainedDetector().detect(photo)
    two = TrainedDetector().detect(photo, max_items=2)
    surest = sorted(every, key=lambda d: -d.confidence)[:2]
    assert set(two) == set(surest) and [d.area for d in two] == sorted(
        (d.area for d in two), reverse=True
    )


def test_detector_setting_picks_trained_and_its_weights(settings, tmp_path):
    settings.DETECTOR, settings.DETECTOR_WEIGHTS = "trained", ""
    assert isinstance(get_detector(), TrainedDetector)
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(SHIPPED.read_bytes())
    settings.DETECTOR_WEIGHTS = str(copy)
    assert get_detector().weights is not TrainedDetector().weights
    settings.DETECTOR_WEIGHTS = str(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="train_detector"):
        get_detector()


def test_the_shipped_weights_are_small_and_say_how_they_were_made():
    import json

    assert SHIPPED.stat().st_size < 3_000_000
    training = json.loads((SHIPPED.parent / "TRAINING.json").read_text())
    assert training["command"].startswith("python manage.py train_detector")
    assert training["seed"] == 0 and training["validation"]["threshold"] > 0
