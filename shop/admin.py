from django.contrib import admin, messages
from django.utils.html import format_html

from search.coverage import embedding_coverage, products_with_index_state
from search.selectors import active_embedding_model
from search.services.indexing import (
    embeddings_request,
    image_embeddings_invalidate,
    text_embeddings_invalidate,
)
from shop.models import Category, Product, ProductImage


def _thumb(image: ProductImage | None, size: int = 64) -> str:
    if not image or not image.image:
        return "—"
    return format_html(
        '<img src="{}" style="max-height:{}px;max-width:{}px;object-fit:contain" alt="">',
        image.image.url,
        size,
        size,
    )


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


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 1
    fields = ["thumbnail", "image", "alt_text", "position"]
    readonly_fields = ["thumbnail"]

    @admin.display(description="Preview")
    def thumbnail(self, obj: ProductImage) -> str:
        return _thumb(obj, 96)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail",
        "title",
        "category",
        "colour",
        "price",
        "currency",
        "in_stock",
        "indexed",
    ]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["category", "in_stock", "colour"]
    search_fields = ["title", "description"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [ProductImageInline]

    @admin.display(description="Image")
    def thumbnail(self, obj: Product) -> str:
        return _thumb(obj.primary_image)

    @admin.display(description="Indexed")
    def indexed(self, obj: Product) -> str:
        """✓ once the active model has a vector for every image: the product is searchable."""
        if not obj.has_images:
            return "no images"
        return "pending" if obj.images_pending else "✓"

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("images").select_related("category")
        # Index state as subqueries of the page's query: no query per listed product.
        return products_with_index_state(qs, model=active_embedding_model())

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "index_coverage": _coverage_lines()}
        return super().changelist_view(request, extra_context=extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            embeddings_request(product_ids=[obj.pk])
        elif {"title", "description"} & set(form.changed_data):
            text_embeddings_invalidate(product_ids=[obj.pk])

    def save_formset(self, request, form, formset, change):
        instances = formset.save()
        new_ids, changed_ids = [], []
        for inline_form in formset.forms:
            obj = inline_form.instance
            if obj.pk is None or obj not in instances:
                continue
            if inline_form in formset.extra_forms or not inline_form.initial:
                new_ids.append(obj.pk)
            elif "image" in inline_form.changed_data:
                changed_ids.append(obj.pk)
        if changed_ids:
            image_embeddings_invalidate(image_ids=changed_ids)
        embeddings_request(image_ids=new_ids)
        if new_ids:
            self._suggest(request, form.instance, new_ids[0])

    def _suggest(self, request, product: Product, image_id: int) -> None:
        """Zero-shot category and colour for a newly added photo, as an admin message."""
        from search.embeddings import ModelLoadError
        from search.images import InvalidImage, open_image
        from search.services.describe import image_describe
        from search.services.query import SearchError

        image = ProductImage.objects.get(pk=image_id)
        try:
            with image.image.open("rb") as f:
                described = image_describe(image=open_image(f.read()), top=1)
        except (SearchError, ModelLoadError, InvalidImage, OSError):
            return  # no index yet, or no model: saving must not depend on search
        cat, col = described.categories[:1], described.colours[:1]
        if cat and col:
            messages.info(
                request,
                f"CLIP suggests for the new photo: category {cat[0].name} ({cat[0].score:.2f}), "
                f"colour {col[0].name} ({col[0].score:.2f}). Current: {product.category}, "
                f"{product.colour or 'no colour'}.",
            )
