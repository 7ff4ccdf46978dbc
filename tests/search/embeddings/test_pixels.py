"""Host-side pixels: reused staging buffers and the transform decode processes receive."""

import pickle

import numpy as np
import pytest
import skimage.data
from PIL import Image

from search.embeddings.clip import ClipEncoder, ModelSpec, import_torch
from search.embeddings.pixels import HostStaging, PixelTransform
from tests.factories import TINY_CONFIG


def _images(count: int, seed: int, shape=(8, 6, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(count)]


def _storage(tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def test_consecutive_batches_reuse_one_buffer_and_a_short_last_batch_its_first_rows():
    staging = HostStaging(pin=False)
    batches = [_images(4, 1), _images(4, 2), _images(3, 3)]
    seen = []
    for images in batches:
        with staging.stacked(images) as host:
            assert tuple(host.shape) == (len(images), 8, 6, 3)
            assert np.array_equal(host.numpy(), np.stack(images))  # this batch, not the last
            seen.append((_storage(host), host.data_ptr()))
    assert len({storage for storage, _ in seen}) == 1  # allocated once
    assert len({start for _, start in seen}) == 1  # the short batch: the same first rows


def test_a_new_buffer_only_for_a_larger_batch_or_another_image_size():
    staging = HostStaging(pin=False)
    with staging.stacked(_images(2, 1)) as host:
        small = _storage(host)
    with staging.stacked(_images(5, 2)) as host:
        larger = _storage(host)
    with staging.stacked(_images(2, 3, shape=(4, 4, 3))) as host:
        other_size = _storage(host)
    with staging.stacked(_images(5, 4)) as host:
        again = _storage(host)
        assert np.array_equal(host.numpy(), np.stack(_images(5, 4)))
    assert len({small, larger, other_size}) == 3
    assert again == larger  # the two kept slots: the larger batch and the other size


def test_a_buffer_in_use_is_never_handed_to_another_batch():
    staging = HostStaging(pin=False)
    first, second = _images(3, 1), _images(3, 2)
    with staging.stacked(first) as a, staging.stacked(second) as b:
        assert _storage(a) != _storage(b)
        assert np.array_equal(a.numpy(), np.stack(first))
        assert np.array_equal(b.numpy(), np.stack(second))


def test_pinned_buffers_are_allocated_once_and_reused_after_their_copy(monkeypatch):
    """The CUDA path on a CPU: pinning and events are recorded, not performed."""
    torch, _ = import_torch()
    allocations, events = [], []
    empty = torch.empty

    def fake_empty(*shape, pin_memory=False, **kwargs):
        allocations.append(pin_memory)
        return empty(*shape, **kwargs)

    class FakeEvent:
        def __init__(self):
            self.recorded = self.waited = 0
            events.append(self)

        def record(self):
            self.recorded += 1

        def synchronize(self):
            self.waited += 1

    monkeypatch.setattr(torch, "empty", fake_empty)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    staging = HostStaging(pin=True)
    for seed in range(3):
        with staging.stacked(_images(4, seed)) as host:
            assert np.array_equal(host.numpy(), np.stack(_images(4, seed)))
    assert allocations == [True]  # one pinned buffer for three batches
    assert [e.recorded for e in events] == [1, 1, 1]  # after each batch's copy
    assert [e.waited for e in events] == [1, 1, 0]  # before the buffer was reused


def test_the_pixel_transform_pickles_small_and_gives_the_encoders_pixels(tiny_model_dir):
    encoder = ClipEncoder(ModelSpec(TINY_CONFIG, f"local-dir:{tiny_model_dir}"), device="cpu")
    transform = encoder.pixel_transform
    assert isinstance(transform, PixelTransform)
    state = transform.__getstate__()
    assert list(state) == ["_blob"]  # torchvision objects travel only as bytes
    copy = pickle.loads(pickle.dumps(transform))
    photo = Image.fromarray(skimage.data.chelsea()).resize((301, 97))
    expected = encoder.preprocess_image(photo)
    assert copy(photo).dtype == np.uint8
    assert np.array_equal(copy(photo), expected)


@pytest.mark.parametrize("count", [4, 1])
def test_embedding_through_reused_buffers_equals_embedding_alone(count, tiny_model_dir):
    encoder = ClipEncoder(ModelSpec(TINY_CONFIG, f"local-dir:{tiny_model_dir}"), device="cpu")
    photos = [Image.fromarray(getattr(skimage.data, n)()) for n in ("astronaut", "coffee")]
    pixels = [encoder.preprocess_image(p) for p in photos * 2]
    encoder.embed_pixels(pixels)  # fills the buffer with other images first
    alone = ClipEncoder(ModelSpec(TINY_CONFIG, f"local-dir:{tiny_model_dir}"), device="cpu")
    assert np.allclose(
        encoder.embed_pixels(pixels[-count:][::-1]), alone.embed_pixels(pixels[-count:][::-1])
    )
