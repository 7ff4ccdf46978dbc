"""Synthetic CLIP-like vectors, and an encoder that turns queries into them instantly."""

from __future__ import annotations

import hashlib

import numpy as np

MODIFIER = "modifier:"  # stand-in texts that modify a photo rather than describe a product


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class VectorSource:
    """CLIP-like synthetic unit vectors.

    Real CLIP vectors are not uniform on the sphere: they cluster by kind of product and vary
    along far fewer directions than their dimension. Uniform random 512-d vectors are the
    known worst case for any approximate index and would understate recall. Here: cluster
    centres plus a 32-d latent spread plus a little full-rank noise. Text-like queries carry
    a constant offset (CLIP's "modality gap") so they sit off the image manifold, as real
    text vectors do. ``uniform=True`` gives the worst case instead.
    """

    def __init__(self, dim: int, seed: int, *, uniform: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.dim, self.uniform = dim, uniform
        self.centres = unit(rng.standard_normal((200, dim)))
        self.basis = rng.standard_normal((32, dim)) / np.sqrt(dim)  # rows of norm ~1
        self.common = unit(rng.standard_normal(dim))
        self.gap = unit(rng.standard_normal(dim))

    def items(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.uniform:
            return unit(rng.standard_normal((n, self.dim)))
        centre = self.centres[rng.integers(len(self.centres), size=n)]
        latent = rng.standard_normal((n, 32)) @ self.basis / np.sqrt(32)
        noise = rng.standard_normal((n, self.dim)) / np.sqrt(self.dim)
        # Weights give CLIP-like statistics: mean cosine of two products ~0.4, ~0.8 within
        # a cluster.
        return unit(1.0 * self.common + 1.0 * centre + 0.6 * latent + 0.25 * noise)

    def text_like(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return unit(self.items(n, rng) + (0.0 if self.uniform else 0.7) * self.gap)

    def modifiers(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Texts that modify a photo ("in red", "longer"): one attribute direction of the
        latent space, plus the modality gap. A hybrid query adds one to a photo."""
        if self.uniform:
            return unit(rng.standard_normal((n, self.dim)))
        axis = self.basis[rng.integers(len(self.basis), size=n)] * rng.choice([-1, 1], (n, 1))
        return unit(unit(axis) + 0.7 * self.gap)


class StandInEncoder:
    """Stands in for CLIP (passed to the query service as its ``encoder``): a query's vector
    is a pure function of its text or pixels, computed in microseconds."""

    def __init__(self, source: VectorSource, dim: int) -> None:
        self.source, self.dim, self.batch_size = source, dim, 1

    def _rng(self, payload: bytes) -> np.random.Generator:
        return np.random.default_rng(int.from_bytes(hashlib.sha256(payload).digest()[:8]))

    def embed_texts(self, texts):
        return np.stack([self._text(t) for t in texts])

    def _text(self, text: str) -> np.ndarray:
        rng = self._rng(text.encode())
        if text.startswith(MODIFIER):
            return self.source.modifiers(1, rng)[0]
        return self.source.text_like(1, rng)[0]

    def embed_images(self, images):
        return np.stack([self.source.items(1, self._rng(im.tobytes()))[0] for im in images])
