"""Item detection: which detector ``DETECTOR`` names (with ``DETECTOR_WEIGHTS``), built once
per process: ``foreground`` (no weights), ``trained`` (the project's own, shipped weights by
default), ``torchvision:<model name>`` or a dotted path to a class."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from search.detection.base import Detection, Detector
from search.detection.foreground import ForegroundDetector
from search.detection.normalise import catalog_look

# Short names for the shipped detectors; anything else is a dotted path to a class.
DETECTORS = {
    "foreground": "search.detection.foreground.ForegroundDetector",
    "trained": "search.detection.trained.TrainedDetector",
}
TORCHVISION = "torchvision:"

__all__ = ["Detection", "Detector", "get_detector", "query_photo"]


def get_detector(name: str | None = None, weights: str | None = None) -> Detector:
    """The configured detector (``DETECTOR``: a short name, ``torchvision:<model>`` or a
    dotted class path; ``DETECTOR_WEIGHTS`` for the trained and torchvision ones)."""
    return _build(
        name or settings.DETECTOR, settings.DETECTOR_WEIGHTS if weights is None else weights
    )


@cache
def _build(name: str, weights: str) -> Detector:
    if name.startswith(TORCHVISION):
        from search.detection.torchvision_models import TorchvisionDetector

        detector = TorchvisionDetector(name.removeprefix(TORCHVISION), weights)
    elif name == "trained":
        from search.detection.trained import TrainedDetector

        detector = TrainedDetector(weights or None)
    else:
        detector = import_string(DETECTORS.get(name, name))()
    if not isinstance(detector, Detector):
        raise TypeError(f"DETECTOR {name!r} has no detect(image, max_items=...) method")
    return detector


def query_photo(image: Image.Image) -> Image.Image:
    """A query photo as the catalog would show its main item (``catalog_look``): what photo
    search embeds unless the request turns ``auto_crop`` off."""
    detector = get_detector()
    return catalog_look(image, None if isinstance(detector, ForegroundDetector) else detector)
