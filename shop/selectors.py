from django.db.models import QuerySet

from shop.models import Category, Product


def product_list(*, category_slug: str | None = None) -> QuerySet[Product]:
    qs = Product.objects.with_images().order_by("-created_at", "id")
    if category_slug:
        qs = qs.filter(category__slug=category_slug)
    return qs


def category_list() -> QuerySet[Category]:
    return Category.objects.all()
