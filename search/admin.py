"""Search's side of the admin: the model switch, and index state on the product pages.

Shop's ProductAdmin knows nothing of search; it is replaced here by a subclass that adds an
"Indexed" column, per-model coverage above the list and CLIP label suggestions for new photos.
"""

from django.contrib import admin, messages

from search.errors import KNOWN_ERRORS
from search.models import EmbeddingModel, Synonym
from search.selectors import (
    active_embedding_model,
    embedding_coverage,
    embedding_models_with_coverage,
    products_with_index_state,
)
from search.services.describe import image_describe
from search.services.embedding_models import embedding_model_activate_if_covered
from search.services.understanding import lexicon_forget
from shop.admin import ProductAdmin
from shop.images import open_image
from shop.models import Product, ProductImage


def coverage_text(done: int, total: int) -> str:
    percent = 100.0 * done / total if total else 100.0
    return f"{done} / {total} ({percent:.0f}%)"


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    """Read-only: models are created by indexing and removed with ``drop_model_vectors``,
    which also drops their HNSW indexes (a delete here would leave those behind)."""

    list_display = [
        "key",
        "dim",
        "is_active",
        "images_coverage",
        "texts_coverage",
        "created_at",
        "activated_at",
    ]
    readonly_fields = ["key", "name", "pretrained", "dim", "is_active", "created_at"]
    readonly_fields += ["activated_at", "images_coverage", "texts_coverage"]
    actions = ["activate_if_covered"]

    def get_queryset(self, request):
        return embedding_models_with_coverage()  # one query for the page, counts included

    @admin.display(description="images embedded")
    def images_coverage(self, obj: EmbeddingModel) -> str:
        return coverage_text(obj.images_embedded, obj.images_total)

    @admin.display(description="product texts embedded")
    def texts_coverage(self, obj: EmbeddingModel) -> str:
        return coverage_text(obj.texts_embedded, obj.texts_total)

    @admin.action(description="Switch search to this model (only if it covers every image)")
    def activate_if_covered(self, request, queryset) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one model.", messages.ERROR)
            return
        model = chosen[0]
        if embedding_model_activate_if_covered(model):
            self.message_user(request, f"Search now answers from {model.key}.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"{model.key} has embedded {coverage_text(model.images_embedded, model.images_total)}"
                " images; search switches once it covers them all.",
                messages.WARNING,
            )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Synonym)
class SynonymAdmin(admin.ModelAdmin):
    """Synonyms and shade names apply when a query is read: a change here is live at once,
    nothing is re-indexed. A loop (a -> b -> a) is refused by ``Synonym.clean``."""

    list_display = ["term", "targets", "two_way"]
    list_filter = ["two_way"]
    search_fields = ["term", "targets"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        lexicon_forget()  # live at the next query, in every process

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        lexicon_forget()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        lexicon_forget()


def _coverage_lines() -> list[str]:
    lines = []
    for c in embedding_coverage():
        role = "search reads" if c.is_active else "being indexed, not searched yet"
        lines.append(
            f"{c.model.key} ({c.model.dim}d, {role}): {c.images_embedded} of {c.images_total} "
            f"images ({100 * c.images_ratio:.0f}%), {c.texts_embedded} of {c.texts_total} "
            "product texts embedded."
        )
    return lines or ["Search index empty: no model has embedded anything yet (start a worker)."]


class IndexedProductAdmin(ProductAdmin):
    list_display = [*ProductAdmin.list_display, "indexed"]

    @admin.display(description="Indexed")
    def indexed(self, obj: Product) -> str:
        """✓ once the active model has a vector for every image: the product is searchable."""
        if not obj.has_images:
            return "no images"
        return "pending" if obj.images_pending else "✓"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        # Index state as subqueries of the page's query: no query per listed product.
        return products_with_index_state(qs, model=active_embedding_model())

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "index_coverage": _coverage_lines()}
        return super().changelist_view(request, extra_context=extra_context)

    def images_added(self, request, product: Product, images: list[ProductImage]) -> None:
        """Zero-shot category and colour for the first new photo, as an admin message."""
        try:
            with images[0].image.open("rb") as f:
                described = image_describe(image=open_image(f.read()), top=1)
        except (*KNOWN_ERRORS, OSError):
            return  # no index yet, or no model: saving must not depend on search
        cat, col = described.categories[:1], described.colours[:1]
        if cat and col:
            messages.info(
                request,
                f"CLIP suggests for the new photo: category {cat[0].name} ({cat[0].score:.2f}), "
                f"colour {col[0].name} ({col[0].score:.2f}). Current: {product.category}, "
                f"{product.colour or 'no colour'}.",
            )


admin.site.unregister(Product)
admin.site.register(Product, IndexedProductAdmin)
