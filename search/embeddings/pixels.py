"""The host side of feeding pixels to a model: preprocessing that can run in another process,
and reusable batch buffers for the copy to the device."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from PIL import Image

from search.embeddings.clip import import_torch, to_rgb


class PixelTransform:
    """An encoder's resize and crop, PIL image -> uint8 (H, W, 3); picklable.

    What ``ClipEncoder.preprocess_image`` runs, shipped to decode worker processes. The
    torchvision transforms travel pickled inside it and are unpickled on first use, after
    ``import_torch`` has made torchvision importable (on CPU-only torch, unpickling them first
    would import torchvision and fail); each process unpickles a given transform once.
    """

    def __init__(self, geometry) -> None:
        self._blob = pickle.dumps(geometry)
        self._geometry = geometry

    def __getstate__(self) -> dict:
        return {"_blob": self._blob}

    def __setstate__(self, state: dict) -> None:
        self._blob = state["_blob"]
        self._geometry = None

    def __call__(self, image: Image.Image) -> np.ndarray:
        geometry = self._geometry
        if geometry is None:
            geometry = self._geometry = _unpickled(self._blob)
        return np.asarray(geometry(to_rgb(image)), dtype=np.uint8)


_geometries: dict[bytes, object] = {}


def _unpickled(blob: bytes):
    geometry = _geometries.get(blob)
    if geometry is None:
        import_torch()
        geometry = _geometries[blob] = pickle.loads(blob)
    return geometry


def decode_process_init() -> None:
    """Prepare a decode worker process: one torch thread, torchvision importable.

    The pool's processes are the parallelism; torch's default of one intra-op thread per core
    in each of them would oversubscribe the cores (the issue 14 profile: each image cost 6.2 ms
    in a pool against 2 ms alone).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read when torch loads its OpenMP runtime
    torch, _ = import_torch()
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before any parallel work; the default is harmless
        pass


class _Slot:
    def __init__(self, tensor, ready) -> None:
        self.tensor = tensor  # (capacity, H, W, 3) uint8
        self.ready = ready  # CUDA event: the last copy out of this buffer is done


class HostStaging:
    """Host buffers that uint8 image batches are stacked into before the device copy.

    A buffer per batch in flight is allocated once and reused while the image shape stays,
    instead of a new batch tensor each time: pinning (page-locking) a fresh one per batch of
    512 cost 16.9 ms against 19.5 ms for the model (issue 14). Pinned only when ``pin``
    (copies to a CUDA device); on a CPU the buffer is plain memory. A shorter last batch uses
    the first rows of a buffer. Thread-safe: each caller gets a buffer of its own.
    """

    def __init__(self, *, pin: bool, slots: int = 2) -> None:
        self.pin = pin
        self.slots = slots
        self._free: list[_Slot] = []
        self._lock = threading.Lock()

    @contextmanager
    def stacked(self, images: Sequence[np.ndarray]) -> Iterator[object]:
        """A (N, H, W, 3) uint8 tensor holding ``images``, valid inside the block.

        Copy it to the device inside the block; on CUDA the buffer is not handed out again
        until that copy has finished (an event recorded when the block ends), so the copy may
        be ``non_blocking``.
        """
        torch, _ = import_torch()
        first = images[0]
        slot = self._take(len(images), first.shape)
        batch = slot.tensor[: len(images)]
        try:
            # One copy, straight into the (pinned) buffer: no intermediate stacked array.
            np.stack(images, out=batch.numpy())
            yield batch
        finally:
            if self.pin:
                slot.ready = torch.cuda.Event()
                slot.ready.record()
            self._give_back(slot)

    def _take(self, count: int, shape: tuple[int, ...]) -> _Slot:
        torch, _ = import_torch()
        with self._lock:
            for i, slot in enumerate(self._free):
                if slot.tensor.shape[1:] == shape and slot.tensor.shape[0] >= count:
                    slot = self._free.pop(i)
                    break
            else:
                slot = None
        if slot is None:
            # A larger batch or another image size: a new buffer (the old ones age out).
            tensor = torch.empty((count, *shape), dtype=torch.uint8, pin_memory=self.pin)
            return _Slot(tensor, None)
        if slot.ready is not None:
            slot.ready.synchronize()
        return slot

    def _give_back(self, slot: _Slot) -> None:
        with self._lock:
            self._free.insert(0, slot)  # the most recent first: it is the likeliest fit
            del self._free[self.slots :]
