from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from pgvector.django import VectorField

from search.synonyms import synonym_loop
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
    # Top similarities of in-catalog queries for this model (search.services.relevance):
    # what "a close match" means for it, relative to the catalog, not a fixed cosine.
    calibration = models.JSONField(default=dict, blank=True, editable=False)

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
    # The product's category, copied by database triggers (migration 0007) on every insert
    # and category change, so one category's vectors can have an HNSW graph of their own:
    # a category filter then walks a graph of that category instead of the whole catalog's.
    category_id = models.BigIntegerField(null=True, blank=True, editable=False)

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


class ProductDocument(models.Model):
    """The keyword leg's view of a product: a weighted English ``tsvector`` over title (A),
    category and colour (B), attribute values (C) and description (D).

    A table of search's own rather than a generated column on ``shop_product``: the document
    needs the category name (another table) and shop must not know about search. Rows are
    rewritten by ``search.catalog_sync`` on every catalog write and by the sweep
    (``updated_at`` older than the product's), see ``search/vectorstore/keyword.py``.
    """

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="search_document"
    )
    document = SearchVectorField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [GinIndex(fields=["document"], name="search_doc_gin")]

    def __str__(self) -> str:
        return f"document of product {self.product_id}"


class CatalogWord(models.Model):
    """A word of the catalog's own vocabulary (titles, categories, colours), the candidates
    for typo correction and "did you mean" (``pg_trgm`` similarity on the trigram index)."""

    word = models.CharField(max_length=100, unique=True)

    class Meta:
        indexes = [GinIndex(OpClass("word", name="gin_trgm_ops"), name="search_word_trgm")]

    def __str__(self) -> str:
        return self.word


class Synonym(models.Model):
    """A word (or phrase) a shopper types and what it means in this catalog, applied when a
    query is read, so editing one needs no re-indexing.

    One-way (``trainers`` -> ``sneaker``): the term also finds its targets. Two-way
    (``grey`` <-> ``gray``): each side finds the other. Targets may be categories or colours
    (``navy`` -> ``blue``), which the query parser then treats as such.

    An intent (``winter`` -> ``coat, pullover, ankle boot``) says what the shopper wants it
    for, not what it is: its categories are boosted, the first target first, unless the query
    also names a product that none of them is ("a gym bag"): the product named wins.
    """

    term = models.CharField(max_length=100, help_text="What a shopper types, e.g. 'trainers'")
    targets = models.CharField(
        max_length=300, help_text="Comma-separated catalog words it means, e.g. 'sneaker'"
    )
    two_way = models.BooleanField(
        default=False, help_text="The targets also find the term (equivalent words)"
    )
    intent = models.BooleanField(
        default=False,
        help_text="The term says what it is for ('winter', 'laptop'), not what it is: a "
        "product named in the same query wins over it ('gym bag' finds bags)",
    )

    class Meta:
        ordering = ["term"]
        constraints = [models.UniqueConstraint(fields=["term"], name="one_synonym_row_per_term")]

    def __str__(self) -> str:
        return f"{self.term} {'<->' if self.two_way else '->'} {self.targets}"

    @property
    def target_list(self) -> list[str]:
        return [t.strip().lower() for t in self.targets.split(",") if t.strip()]

    def clean(self) -> None:
        if self.intent and self.two_way:
            raise ValidationError(
                "An intent is one-way: 'winter' finds coats, but a coat is not 'winter'."
            )
        loop = synonym_loop(self, Synonym.objects.exclude(pk=self.pk))
        if loop:
            raise ValidationError(
                f"This synonym makes a loop ({' -> '.join(loop)}): a one-way synonym must "
                "not lead back to its own term. Make it two-way instead, or edit the other one."
            )
