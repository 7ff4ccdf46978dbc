"""Search on pages that belong to shop: ``{% load search_tags %}{% more_like_this product %}``."""

from django import template

from search.api.serializers import default_text_weight
from search.errors import KNOWN_ERRORS
from search.query_terms import search_request_from, similar_terms
from search.services.query import products_search
from shop.models import Product

register = template.Library()


@register.inclusion_tag("search/_more_like_this.html", takes_context=True)
def more_like_this(context: template.Context, product: Product, limit: int = 8) -> dict:
    """Similar products for the product page, or none while the product is not indexed."""
    try:
        similar = products_search(
            search_request_from({"limit": limit}, similar_terms(product.pk, {"text_weight": 0}))
        )
    except KNOWN_ERRORS:
        similar = None
    return {
        "product": product,
        "similar": similar,
        "params": {},
        "categories": context.get("categories", ()),
        "default_text_weight": default_text_weight(),
    }
