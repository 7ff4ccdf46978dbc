"""The indexing pipeline's uint8 + on-device normalisation gives the reference vectors."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from search.embeddings.clip import ClipEncoder, ModelSpec
from tests.factories import DEMO_MODEL_DIR, TINY_CONFIG


def _photos() -> list[Image.Image]:
    # Real photos of odd sizes and modes: colour, greyscale, a transparent cut-out.
    photos = [Image.fromarray(getattr(skimage.data, n)()) for n in ("astronaut", "coffee")]
    photos.append(Image.fromarray(skimage.data.camera()))  # mode L
    photos.append(Image.fromarray(skimage.data.rocket()).convert("RGBA"))
    photos.append(Image.fromarray(skimage.data.chelsea()).resize((301, 97)))
    return photos


@pytest.mark.parametrize("which", ["tiny", "demo"])
def test_uint8_pixels_give_the_vectors_of_open_clips_preprocessing(which, tiny_model_dir):
    folder = tiny_model_dir if which == "tiny" else DEMO_MODEL_DIR
    name = TINY_CONFIG if which == "tiny" else "shop-clip-demo"
    encoder = ClipEncoder(ModelSpec(name, f"local-dir:{folder}"), device="cpu")
    photos = _photos()
    pixels = [encoder.preprocess_image(p) for p in photos]
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in pixels)
    reference = encoder.embed_pixels(encoder.preprocess_images(photos))
    pipeline = encoder.embed_pixels(pixels)
    assert np.abs(reference - pipeline).max() < 1e-5
    # And the vectors say something: different photos are not the same vector.
    assert float(reference[0] @ reference[1]) < 0.9999
