"""Which encoder a process uses: the one place that reads the ``CLIP_*`` settings.

Loaded encoders are kept per process (loading ViT-B-32 takes seconds), least recently used
evicted first.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict

from django.conf import settings

from search.embeddings.base import Encoder
from search.embeddings.clip import ClipEncoder, ModelSpec, import_torch

log = logging.getLogger(__name__)


def configured_spec() -> ModelSpec:
    """The model new vectors are written with (``CLIP_MODEL`` + ``CLIP_PRETRAINED``)."""
    return ModelSpec(settings.CLIP_MODEL, settings.CLIP_PRETRAINED)


_encoders: OrderedDict[tuple, ClipEncoder] = OrderedDict()  # least recently used first
_encoders_lock = threading.Lock()


def get_encoder(spec: ModelSpec | None = None) -> Encoder:
    """The process-wide encoder for ``spec`` (default: the configured model), loaded once.

    At most ``CLIP_MAX_LOADED_MODELS`` stay loaded: during a model switch a process needs the
    old model (search) and the new one (indexing); after it, the old one is dropped instead of
    holding its memory (gigabytes for large CLIPs, on the GPU too) until the process restarts.
    """
    spec = spec or configured_spec()
    cache_key = (spec, spec.key)
    with _encoders_lock:
        encoder = _encoders.get(cache_key)
        if encoder is None:
            if settings.CLIP_TORCH_THREADS:
                import_torch()[0].set_num_threads(settings.CLIP_TORCH_THREADS)
            encoder = ClipEncoder(
                spec,
                device=settings.CLIP_DEVICE,
                batch_size=settings.CLIP_BATCH_SIZE,
                cache_dir=settings.CLIP_CACHE_DIR,
            )
            _encoders[cache_key] = encoder
            _evict(max(1, settings.CLIP_MAX_LOADED_MODELS))
            # The model's modules and tensors live as long as the process: out of the
            # collector's generations, a full collection no longer walks them (each one was a
            # pause of a few hundred ms in a web worker, the p99 of every search).
            gc.freeze()
        _encoders.move_to_end(cache_key)
    return encoder


def loaded_encoders() -> list[ModelSpec]:
    """The models this process holds in memory, least recently used first."""
    with _encoders_lock:
        return [spec for spec, _key in _encoders]


def _evict(keep: int) -> None:
    evicted = False
    while len(_encoders) > keep:
        (spec, _key), encoder = _encoders.popitem(last=False)
        log.info(
            "Unloading CLIP model %s (%s) to stay within %d loaded",
            spec.name,
            spec.pretrained,
            keep,
        )
        evicted = evicted or encoder.device == "cuda"
        del encoder
    if evicted:
        import_torch()[0].cuda.empty_cache()


def clear_encoders() -> None:
    with _encoders_lock:
        _encoders.clear()
