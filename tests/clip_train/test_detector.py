"""The detector's training (clip_train.detector, clip_train.scenes) and its contract with the
app's numpy runtime (search.detection.trained): same network, same boxes. No database."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from clip_train import scenes
from clip_train.detector import (
    CONFIG,
    WEIGHTS_FILE,
    DetectorOptions,
    build_model,
    letterbox,
    read_config,
    record_tuning,
    save,
    targets,
    train_detector,
)
from clip_train.fashion import load_split
from search.detection import trained
from search.detection.tuning import iou
from search.embeddings.clip import import_torch


def test_scenes_give_each_item_its_visible_box():
    images, _ = load_split("t10k")
    rng = np.random.default_rng(4)
    garments = [(images[i], (200, 30, 40)) for i in range(3)]
    photo, boxes = scenes.compose(garments, rng, kind="studio", layout="tiled", gaps=(0.1, 0.2))
    assert len(boxes) == 3
    arr = np.asarray(photo, np.float32)
    W, H = photo.size
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= 1.0001 and y + h <= 1.0001
        inside = arr[round(y * H) : round((y + h) * H), round(x * W) : round((x + w) * W)]
        # the red item is inside its box: many pixels far redder than the studio background
        assert ((inside[..., 0] - inside[..., 1]) > 60).mean() > 0.2
    # tiles overlapping by a fifth: neighbours touch or overlap
    photo, boxes = scenes.compose(
        garments, rng, kind="noise", layout="tiled", gaps=(-0.3, -0.2), scales=(0.9, 1.0)
    )
    assert any(_gap_px(a, b, photo.size) <= 1 for a in boxes for b in boxes if a is not b)


def _gap_px(a, b, size) -> float:
    gx = max(a[0] - (b[0] + b[2]), b[0] - (a[0] + a[2])) * size[0]
    gy = max(a[1] - (b[1] + b[3]), b[1] - (a[1] + a[3])) * size[1]
    return max(gx, gy)


def test_targets_decode_back_to_the_boxes():
    """A perfect network output (the targets themselves) decodes to the true boxes."""
    cfg = {**CONFIG, "threshold": 0.5}
    photo = Image.new("RGB", (300, 200))
    truth = [(0.1, 0.2, 0.3, 0.5), (0.5, 0.1, 0.4, 0.8), (0.05, 0.75, 0.2, 0.2)]
    _, scale = letterbox(photo, cfg["input"])
    heat, reg, mask = targets(truth, photo.size, scale, cfg)
    assert mask.sum() == 3
    logits = np.log(np.clip(heat, 1e-6, 1 - 1e-6) / (1 - np.clip(heat, 1e-6, 1 - 1e-6)))
    logits = np.where(mask > 0, 20.0, logits - 5)  # only the centres are peaks above 0.5
    found = trained.decode(np.concatenate([logits[None], reg]), cfg, photo.size, scale)
    assert len(found) == 3
    for box in truth:
        assert max(iou(box, f) for f, _ in found) > 0.97


def _perturbed_model(cfg):
    torch, _ = import_torch()
    torch.manual_seed(3)
    model = build_model(cfg)
    for module in model.modules():  # batch norm with statistics of its own, to be folded
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_the_numpy_runtime_computes_what_the_torch_network_does(tmp_path):
    torch, _ = import_torch()
    cfg = dict(CONFIG)
    model = _perturbed_model(cfg)
    save(tmp_path, model, cfg, {"seed": 3})
    weights = trained.Weights(tmp_path / WEIGHTS_FILE)
    x = np.random.default_rng(0).normal(size=(3, cfg["input"], cfg["input"])).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x[None]))[0].numpy()
    got = trained.forward(weights, x)
    assert got.shape == (5, cfg["input"] // 4, cfg["input"] // 4)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    # and the preprocessing is the training one
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 210, 3), np.uint8))
    np.testing.assert_array_equal(letterbox(photo, 160)[0], trained.letterbox(photo, 160)[0])


def test_a_tiny_training_run_saves_weights_the_app_loads(tmp_path):
    opts = DetectorOptions(
        out=str(tmp_path / "det"), steps=6, batch_size=4, val_scenes=4, seed=5, command="pytest"
    )
    result = train_detector(opts, log_fn=lambda msg: None)
    training = json.loads((tmp_path / "det" / "TRAINING.json").read_text())
    assert training["seed"] == 5 and training["command"] == "pytest"
    assert len(training["history"]) >= 2 and all(
        math.isfinite(r["loss"]) for r in training["history"]
    )
    assert math.isfinite(training["val_loss"]) and len(result.val_scenes) == 4
    path = tmp_path / "det" / WEIGHTS_FILE
    assert path.stat().st_size < 2_000_000
    record_tuning(result.out, 0.45, {"recall@0.5": 0.5})
    assert read_config(path)["threshold"] == 0.45
    assert json.loads((tmp_path / "det" / "TRAINING.json").read_text())["validation"]
    detector = trained.TrainedDetector(path)
    found = detector.detect(result.val_scenes[0][0])
    assert all(0 <= d.box[0] <= 1 and 0 < d.box[2] <= 1 for d in found)


def test_same_seed_same_scenes():
    images, _ = load_split("t10k")
    a = scenes.random_scene(images, np.random.default_rng(9))
    b = scenes.random_scene(images, np.random.default_rng(9))
    assert a[1] == b[1] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))


@pytest.mark.parametrize("kind", scenes.BACKGROUND_KINDS)
def test_every_background_kind_renders(kind):
    arr = scenes.background(64, 48, kind, np.random.default_rng(0))
    assert arr.shape == (48, 64, 3) and np.isfinite(arr).all()
