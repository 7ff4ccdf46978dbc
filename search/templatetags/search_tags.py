"""Search on pages that belong to shop: ``{% load search_tags %}{% more_like_this product %}``,
and what result cards say instead of raw scores (``{% match_label response hit as label %}``)."""

from django import template

from search.api.serializers import default_text_weight
from search.errors import KNOWN_ERRORS
from search.query_terms import search_request_from, similar_terms
from search.services.query import ProductHit, SearchResponse, products_search
from search.services.relevance import hit_match_label
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
        "colours": context.get("colours", ()),
        "sorts": context.get("sorts", ()),
        "default_text_weight": default_text_weight(),
    }


@register.simple_tag
def match_label(response: SearchResponse, hit: ProductHit) -> str:
    """A shopper's word for how well ``hit`` matches (the API keeps the raw score)."""
    return hit_match_label(response, hit)


@register.filter
def weight_words(value) -> str:
    """The weight control's reading, as the page's script writes it (no script: the same)."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        return ""
    if not -2.0 <= w <= 2.0:  # NaN or inf: the form is shown again with its error (issue 12)
        return ""
    if w <= 0:
        words = "Only the look"
    elif w < 0.35:
        words = "Mostly the look"
    elif w <= 0.65:
        words = "Look and words equally"
    elif w < 1:
        words = "Mostly your words"
    else:
        words = "Only your words"
    return f"{words} (words {round(w * 100)}%)"
