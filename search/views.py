"""HTML search pages. Same serializers and query service as the API (search.api)."""

from __future__ import annotations

import base64
import io

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import APIException

from search.api import serializers as s
from search.errors import KNOWN_ERRORS, error_status
from search.query_terms import image_terms, search_request_from, similar_terms, text_terms
from search.query_understanding import query_without
from search.services.describe import image_describe
from search.services.query import products_search
from shop.models import Product
from shop.selectors import category_list


def _form_data(request) -> dict:
    data = {k: v for k, v in request.POST.items() if v != ""}
    if "image" in request.FILES:
        data["image"] = request.FILES["image"]
    return data


def _run(context: dict, serializer, action) -> int:
    """Validate and run ``action(validated_data)``; put result or a readable error in context."""
    try:
        if not serializer.is_valid():
            context["errors"] = serializer.errors
            return 400
        context["result"] = action(serializer.validated_data)
        return 200
    except KNOWN_ERRORS as exc:
        context["error"] = str(exc)
        return error_status(exc)
    except APIException as exc:
        context["error"] = str(exc.detail)
        return exc.status_code


def _thumbnail_data_url(image) -> str:
    """The query photo shown back on the page, inline: it is never written to disk."""
    thumb = image.convert("RGB")
    thumb.thumbnail((320, 320))
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _base_context(request, params) -> dict:
    return {
        "categories": category_list(),
        "params": params,
        "default_text_weight": s.default_text_weight(),
        "default_negative_weight": s.DEFAULT_NEGATIVE_WEIGHT,
    }


def _chips(request, parsed) -> list[dict]:
    """Each understood part of the query as a chip whose × searches the query without it
    (filters and other parameters kept, back to the first page)."""
    if parsed is None:
        return []
    chips = []
    for part in parsed.understood:
        params = request.GET.copy()
        params.pop("offset", None)
        rest = query_without(parsed.did_you_mean or parsed.query, part.span)
        if rest:
            params["q"] = rest
        else:  # nothing left to search for: back to the empty search page
            params.pop("q", None)
        chips.append(
            {"kind": part.kind, "label": part.label, "remove_url": "?" + params.urlencode()}
        )
    return chips


def search_view(request):
    context = _base_context(request, request.GET)
    context["q"] = request.GET.get("q", "")
    status = 200
    if "q" in request.GET:
        form = s.TextSearchInputSerializer(data=request.GET)
        status = _run(
            context,
            form,
            lambda d: products_search(search_request_from(d, text_terms(d), query=d["q"])),
        )
        context["chips"] = _chips(request, getattr(context.get("result"), "parsed", None))
    return render(request, "search/search.html", context, status=status)


@require_http_methods(["GET", "POST"])
def photo_search_view(request):
    context = _base_context(request, request.POST or request.GET)
    status = 200
    if request.method == "POST":
        form = s.ImageSearchInputSerializer(data=_form_data(request))

        def action(d):
            context["query_image"] = _thumbnail_data_url(d["image"]) if d.get("image") else None
            return products_search(search_request_from(d, image_terms(d)))

        status = _run(context, form, action)
    return render(request, "search/photo.html", context, status=status)


def similar_view(request, slug: str):
    """More like this, optionally 'but in red' (text + weight slider)."""
    product = get_object_or_404(Product.objects.with_images(), slug=slug)
    context = _base_context(request, request.GET)
    context["product"] = product
    form = s.SimilarInputSerializer(data=request.GET)
    status = _run(
        context,
        form,
        lambda d: products_search(search_request_from(d, similar_terms(product.pk, d))),
    )
    return render(request, "search/similar.html", context, status=status)


@require_http_methods(["GET", "POST"])
def describe_view(request):
    context = _base_context(request, request.POST)
    status = 200
    if request.method == "POST":
        form = s.DescribeInputSerializer(data=_form_data(request))

        def action(d):
            if d.get("image") is not None:
                context["query_image"] = _thumbnail_data_url(d["image"])
            return image_describe(image=d.get("image"), product_id=d.get("product"), top=d["top"])

        status = _run(context, form, action)
    return render(request, "search/describe.html", context, status=status)
