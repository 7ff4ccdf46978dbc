from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from shop import services
from shop.models import Category, Product, ProductImage


def _thumb(image: ProductImage | None, size: int = 64, alt: str = "") -> str:
    if not image or not image.image:
        return "—"
    return format_html(
        '<img src="{}" style="max-height:{}px;max-width:{}px;object-fit:contain" alt="{}">',
        image.image.url,
        size,
        size,
        alt,
    )


class LabelledInlineFormSet(BaseInlineFormSet):
    """A tabular inline names its columns in the table head only, which a screen reader does
    not tie to the inputs (axe: "Form elements must have labels"); each input gets an
    aria-label saying the field and the row, the Delete checkbox included."""

    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        row = f"image {index + 1}" if index is not None else "new image"
        for field in form.fields.values():
            if not field.widget.is_hidden:
                field.widget.attrs.setdefault("aria-label", f"{field.label} ({row})")


class ColourFilter(admin.AllValuesFieldListFilter):
    """Products without a colour get a named filter link: Django's draws an empty one, which a
    screen reader announces as a bare "link" (axe: "Links must have discernible text")."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "":
                choice = {**choice, "display": "(no colour)"}
            yield choice


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    formset = LabelledInlineFormSet
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
    ]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["category", "in_stock", ("colour", ColourFilter)]
    search_fields = ["title", "description"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [ProductImageInline]

    @admin.display(description="Image")
    def thumbnail(self, obj: Product) -> str:
        # The thumbnail is a link to the product: its alt text is the link's name.
        image = obj.primary_image
        return _thumb(image, alt=(image.alt_text if image else "") or obj.title)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("images").select_related("category")

    def save_model(self, request, obj, form, change):
        services.product_save(product=obj, changed_fields=form.changed_data)

    def save_formset(self, request, form, formset, change):
        """Images go through the catalog services, so search hears of every new or replaced
        file; other inlines (none today) save as Django would."""
        if formset.model is not ProductImage:
            return super().save_formset(request, form, formset, change)
        instances = formset.save(commit=False)
        for image in formset.deleted_objects:
            services.product_image_delete(image=image)
        replaced = {id(f.instance) for f in formset.forms if "image" in f.changed_data}
        added = []
        for image in instances:
            if image.pk is None:
                added.append(image)
            services.product_image_save(image=image, file_changed=id(image) in replaced)
        formset.save_m2m()
        if added:
            self.images_added(request, form.instance, added)

    def images_added(self, request, product: Product, images: list[ProductImage]) -> None:
        """Hook for apps that react to new photos in the admin (search suggests labels)."""
