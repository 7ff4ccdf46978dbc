"""Search's side of the admin: the model switch, and index state on the product pages.

Shop's ProductAdmin knows nothing of search; it is replaced here by a subclass that adds an
"Indexed" column, per-model coverage above the list, CLIP label suggestions for new photos and
re-indexing (an action on the list, a button on the change form) through the catalog service.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

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
from search.services.indexing import Reindexing
from search.services.understanding import lexicon_forget
from shop import services as catalog
from shop.admin import ProductAdmin
from shop.images import open_image
from shop.models import Product, ProductImage


def coverage_text(done: int, total: int, noun: str = "") -> str:
    """ "300 of 301 images indexed (99%) · 1 pending": the share is rounded down and the
    pending count said, so one image left is never shown as 100%."""
    done = min(done, total)
    what = f" {noun} indexed" if noun else ""
    text = f"{done:,} of {total:,}{what}"
    pending = total - done
    if pending:
        text += f" ({100 * done // total}%) · {pending:,} pending"
    return text


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


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
                f"{model.key} has not embedded every image yet "
                f"({coverage_text(model.images_embedded, model.images_total, 'images')}); "
                "search switches once it covers them all.",
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

    list_display = ["term", "targets", "two_way", "intent"]
    list_filter = ["two_way", "intent"]
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


def _coverage_lines() -> list[dict[str, str]]:
    """One line per model for the product list: the key apart (a long unbroken string, set
    in code and allowed to wrap anywhere), then how much of the catalog it has embedded."""
    lines = []
    for c in embedding_coverage():
        role = "search reads" if c.is_active else "being indexed, not searched yet"
        lines.append(
            {
                "model": c.model.key,
                "about": f"{c.model.dim}d, {role}",
                "images": coverage_text(c.images_embedded, c.images_total, "images"),
                "texts": coverage_text(c.texts_embedded, c.texts_total, "product texts"),
            }
        )
    return lines


_INDEX_STATE = {  # the change form's line for each value of the list's "Indexed" column
    "✓": "Indexed: every image has a vector from the model search reads.",
    "pending": "Pending: an image has no vector yet from the model search reads; a worker "
    "(or the periodic sweep) embeds it.",
    "no images": "No images: photo search cannot find this product.",
}


def _sweep_every() -> str:
    """ " (every 60 s)": the sweep's period as the beat schedule has it (SWEEP_INTERVAL_SECONDS)."""
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry.get("task") == "search.tasks.sweep_pending":
            return f" (every {entry['schedule']:g} s)"
    return ""


def reindex_message(done: Reindexing) -> tuple[int, str]:
    """The admin message after a re-index: what was queued, or why nothing is lost."""
    if not done.product_ids:
        return messages.WARNING, "Nothing to re-index: the products no longer exist."
    what = (
        f"{_plural(len(done.product_ids), 'product')} ({_plural(len(done.image_ids), 'image')}, "
        f"{_plural(len(done.product_ids), 'product text')})"
    )
    if done.queued:
        return messages.SUCCESS, (
            f"Queued {what} for re-indexing with {done.model_key}: pending until an "
            "embedding worker has written their new vectors."
        )
    if done.queued is False:
        return messages.WARNING, (
            f"Re-indexing {what} with {done.model_key}: the task queue is unreachable, so "
            "nothing was queued now. Nothing is lost: they are pending in the database and "
            f"the periodic sweep{_sweep_every()} queues them once the queue is back."
        )
    return messages.INFO, (
        f"{what} will be queued for re-indexing with {done.model_key} when the transaction commits."
    )


class IndexedProductAdmin(ProductAdmin):
    list_display = [*ProductAdmin.list_display, "indexed"]
    actions = ["reindex_selected"]

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

    @admin.action(description="Re-index selected products", permissions=["change"])
    def reindex_selected(self, request, queryset) -> None:
        self._reindex(request, list(queryset.values_list("pk", flat=True)))

    def _reindex(self, request: HttpRequest, product_ids: list[int]) -> None:
        level, text = reindex_message(catalog.products_reindex(product_ids=product_ids))
        self.message_user(request, text, level)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_reindex"
        view = self.admin_site.admin_view(self.reindex_view)
        # Before the defaults: their "<path:object_id>/" catch-all would take this path.
        return [path("<path:object_id>/reindex/", view, name=name), *super().get_urls()]

    def reindex_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change form's "Re-index" button (a POST; admin_view checks CSRF and staff)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        product = self.get_object(request, unquote(object_id))
        if product is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, product):
            raise PermissionDenied
        self._reindex(request, [product.pk])
        change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return HttpResponseRedirect(reverse(change, args=[quote(product.pk)]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        product = self.get_object(request, unquote(object_id))
        if product is not None and self.has_change_permission(request, product):
            name = f"admin:{self.opts.app_label}_{self.opts.model_name}_reindex"
            extra_context["reindex_url"] = reverse(name, args=[quote(product.pk)])
            extra_context["index_state"] = _INDEX_STATE[self.indexed(product)]
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

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
