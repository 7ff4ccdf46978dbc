"""Image -> text: zero-shot attributes from the catalog's own vocabulary, best descriptions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from search.filters import CatalogFilters
from search.models import EmbeddingModel
from search.services.query import (
    image_vector,
    model_encoder,
    product_vector,
    require_active_model,
    text_vector,
    text_vectors,
)
from search.vectorstore import vector_store
from shop.models import Category, Product

# Common colour words; the catalog's own colours are added to these.
COLOURS = [
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "beige",
    "navy",
    "gold",
    "silver",
]
# Several phrasings per label, averaged (prompt ensembling): steadier than one prompt.
CATEGORY_PROMPTS = ["a photo of a {}", "a {}", "a product photo of a {}"]
COLOUR_PROMPTS = ["something {}", "a photo of something {}", "a {} product"]


@dataclass(frozen=True)
class Label:
    name: str
    score: float


@dataclass(frozen=True)
class DescribedProduct:
    product: Product
    score: float


@dataclass
class Description:
    categories: list[Label]
    colours: list[Label]
    products: list[DescribedProduct]
    model: EmbeddingModel

    @property
    def suggestion(self) -> str:
        parts = []
        if self.colours:
            parts.append(self.colours[0].name)
        if self.categories:
            parts.append(self.categories[0].name.lower())
        return " ".join(parts)


def _label_vectors(model: EmbeddingModel, labels: list[str], prompts: list[str]) -> np.ndarray:
    """One prompt-ensembled unit vector per label, all prompts embedded in one batch."""
    vectors = text_vectors(model, [p.format(label) for label in labels for p in prompts])
    means = vectors.reshape(len(labels), len(prompts), -1).mean(axis=1)
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def zero_shot(
    model: EmbeddingModel, vector: np.ndarray, labels: list[str], prompts: list[str], top: int = 5
) -> list[Label]:
    if not labels:
        return []
    sims = _label_vectors(model, labels, prompts) @ vector
    logits = model_encoder(model).logit_scale * sims
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs)[:top]
    return [Label(labels[i], round(float(probs[i]), 4)) for i in order]


def colour_vocabulary() -> list[str]:
    """The catalog's own colours when it has them (the words its model knows), else a list."""
    catalog = Product.objects.exclude(colour="").values_list("colour", flat=True).distinct()
    return sorted({c.lower() for c in catalog}) or COLOURS


def image_describe(
    *, image: Image.Image | None = None, product_id: int | None = None, top: int = 5
) -> Description:
    """Best categories and colours (zero-shot, with probabilities) and closest descriptions."""
    model = require_active_model()
    vector = image_vector(model, image) if image is not None else product_vector(model, product_id)
    categories = list(Category.objects.values_list("name", flat=True))
    hits = vector_store().nearest_texts(
        model=model, vector=vector, filters=CatalogFilters(), limit=top
    )
    products = Product.objects.with_images().in_bulk([h.product_id for h in hits])
    return Description(
        categories=zero_shot(model, vector, categories, CATEGORY_PROMPTS, top),
        colours=zero_shot(model, vector, colour_vocabulary(), COLOUR_PROMPTS, top),
        products=[
            DescribedProduct(products[h.product_id], round(h.similarity, 4))
            for h in hits
            if h.product_id in products
        ],
        model=model,
    )


@dataclass(frozen=True)
class Similarity:
    score: float
    model: EmbeddingModel


def text_image_similarity(*, text: str, image: Image.Image) -> Similarity:
    """Raw CLIP cosine similarity between a text and an image, in [-1, 1]."""
    model = require_active_model()
    return Similarity(round(float(text_vector(model, text) @ image_vector(model, image)), 4), model)
