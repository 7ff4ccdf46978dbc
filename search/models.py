from django.db import models
from pgvector.django import VectorField

from shop.models import Product, ProductImage


class EmbeddingModel(models.Model):
    """One CLIP model whose vectors are stored. Vectors of different models never meet.

    ``key`` is the identity (name + weights fingerprint). Exactly one row is ``is_active``:
    the one searches read from. A newly configured model starts inactive and is switched to
    once it covers the catalog, so search keeps answering during a re-index.
    """

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=200)
    pretrained = models.CharField(max_length=500, blank=True)
    dim = models.PositiveIntegerField()
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_model",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.dim}d)"


class Embedding(models.Model):
    """One vector of one model. The column has no dimension, so models of 512, 768 and 1024
    dims live side by side; each model gets its own partial HNSW index on
    ``embedding::vector(dim)`` (search.vectorstore.pgvector)."""

    embedding = VectorField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class ImageEmbedding(Embedding):
    image = models.ForeignKey(ProductImage, on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey(
        EmbeddingModel, on_delete=models.CASCADE, related_name="image_embeddings"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model"], name="one_vector_per_image_and_model"
            )
        ]

    def __str__(self) -> str:
        return f"image {self.image_id} / model {self.model_id}"


class TextEmbedding(Embedding):
    """Embedding of a product's title + description, for image -> description matching."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="text_embeddings")
    model = models.ForeignKey(
        EmbeddingModel, on_delete=models.CASCADE, related_name="text_embeddings"
    )
    source_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "model"], name="one_vector_per_product_and_model"
            )
        ]

    def __str__(self) -> str:
        return f"product {self.product_id} / model {self.model_id}"
