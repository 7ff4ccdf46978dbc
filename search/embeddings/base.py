"""The encoder interface the rest of the project codes against."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from search.embeddings.clip import ModelSpec


class Encoder(Protocol):
    """Turns texts and images into L2-normalised float32 vectors in one shared space.

    ``key`` identifies the weights (equal keys give equal vectors) and is stored with every
    vector; ``logit_scale`` is the temperature for zero-shot odds (softmax of scaled cosines).
    """

    spec: ModelSpec  # which model and weights (name, pretrained tag / checkpoint / folder)
    key: str
    dim: int
    batch_size: int
    device: str
    precision: str
    logit_scale: float

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    # The indexing pipeline splits ``embed_images`` in two, so that decoding and preprocessing
    # (CPU, worker processes or threads) overlap with the model (GPU, one stream).
    # ``pixel_transform``: ``preprocess_image`` as a picklable callable for decode worker
    # processes, or None (an encoder without one is fed by threads).
    pixel_transform: Callable[[Image.Image], object] | None

    def preprocess_image(self, image: Image.Image) -> object:
        """One image -> the model's input (thread-safe), for ``embed_pixels``."""

    def embed_pixels(self, pixels: Sequence[object]) -> np.ndarray:
        """A list of ``preprocess_image`` results -> unit vectors."""
