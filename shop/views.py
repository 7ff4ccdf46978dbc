from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from shop.models import Product
from shop.selectors import category_list, product_list


def product_list_view(request):
    category = request.GET.get("category") or None
    categories = category_list()
    page = Paginator(product_list(category_slug=category), 24).get_page(request.GET.get("page"))
    names = {c.slug: c.name for c in categories}
    return render(
        request,
        "shop/product_list.html",
        {
            "page": page,
            "categories": categories,
            "category": category,
            "category_name": names.get(category),
        },
    )


def product_detail_view(request, slug: str):
    product = get_object_or_404(Product.objects.with_images(), slug=slug)
    return render(
        request,
        "shop/product_detail.html",
        {
            "product": product,
            "categories": category_list(),
        },
    )
