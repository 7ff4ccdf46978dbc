"""DETECTOR=torchvision:<name>: a torchvision detection model builds and runs here, where
torchvision's compiled ops do not load (random weights: no download). Known answers for nms;
well-formed detections from the model; a saved checkpoint loads to the same model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from search.detection import Detection, Detector, get_detector
from search.detection.torchvision_models import TorchvisionDetector, load_torchvision, nms

MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def torch():
    return load_torchvision()[0]


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    arr = np.full((240, 320, 3), 235, np.uint8)
    arr[40:200, 30:140] = rng.integers(0, 120, (160, 110, 3))
    arr[60:180, 180:290] = (200, 30, 40)
    return Image.fromarray(arr)


def test_nms_keeps_the_best_of_each_overlapping_group(torch):
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [21, 21, 30, 30.0]]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.99).tolist() == [3, 0, 1, 2, 4]
    # the op torchvision's detectors call, and torchvision.ops' own entry point
    assert torch.ops.torchvision.nms(boxes, scores, 0.5).tolist() == [3, 2]
    import importlib

    ops = importlib.import_module("torchvision.ops")
    # per class: 0 keeps 3 and 2 (0 overlaps 3), 1 keeps 1 and 4 (apart); best score first
    classes = torch.tensor([0, 1, 0, 0, 1])
    assert ops.batched_nms(boxes, scores, classes, 0.5).tolist() == [3, 1, 2, 4]


def test_a_torchvision_detector_with_random_weights_gives_well_formed_detections(torch, photo):
    torch.manual_seed(0)
    detector = TorchvisionDetector(MODEL, "none", min_score=0.0, box_score_thresh=0.0)
    assert isinstance(detector, Detector) and detector.name == f"torchvision:{MODEL}"
    found = detector.detect(photo, max_items=5)
    assert 0 < len(found) <= 5
    for d in found:
        assert isinstance(d, Detection)
        x, y, w, h = d.box
        assert 0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-4 and 0 < h <= 1 - y + 1e-4
        assert 0 <= d.confidence <= 1
    areas = [d.area for d in found]
    assert areas == sorted(areas, reverse=True)


def test_a_local_checkpoint_loads_the_same_model(torch, photo, tmp_path):
    torch.manual_seed(1)
    source = TorchvisionDetector(MODEL, "none", min_score=0.0, box_score_thresh=0.0)
    path = tmp_path / "detector.pt"
    categories = ["__background__", "bag", "shoe"]
    model = TorchvisionDetector(MODEL, "none", num_classes=3).model
    torch.save({"state_dict": model.state_dict(), "num_classes": 3, "categories": categories}, path)
    loaded = TorchvisionDetector(MODEL, str(path), min_score=0.0, box_score_thresh=0.0)
    assert loaded.categories == categories
    plain = tmp_path / "plain.pt"
    torch.save(source.model.state_dict(), plain)
    again = TorchvisionDetector(MODEL, str(plain), min_score=0.0, box_score_thresh=0.0)
    assert again.detect(photo) == source.detect(photo)
    assert all(d.category in categories for d in loaded.detect(photo))


def test_detector_setting_picks_torchvision(settings):
    settings.DETECTOR = f"torchvision:{MODEL}"
    settings.DETECTOR_WEIGHTS = "none"
    detector = get_detector()
    assert isinstance(detector, TorchvisionDetector) and detector.model.training is False
    with pytest.raises(ValueError):
        get_detector("torchvision:no_such_model", "none")
