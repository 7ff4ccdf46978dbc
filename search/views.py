"""HTML search pages. Same serializers and query service as the API (search.api).

The pages speak to shoppers: a serializer's field errors become a sentence that says what to
do (``shopper_message``), raw scores become match labels (in the templates), and the query
photo is kept under a short-lived key (``search.services.query_photos``) so the region, the
words, the weights, the filters and the page can change without uploading it again.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from decimal import ROUND_DOWN, Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods
from PIL import Image
from rest_framework.exceptions import APIException

from search.api import serializers as s
from search.api.throttling import page_throttle
from search.errors import KNOWN_ERRORS, error_status
from search.query_terms import (
    image_terms,
    modifier_terms,
    search_request_from,
    similar_terms,
    text_terms,
)
from search.query_understanding import query_without
from search.services.describe import image_describe
from search.services.look import look_search
from search.services.query import SearchError, products_search
from search.services.query_photos import query_photo_get, query_photo_keep
from search.services.shopper_messages import CHOOSE_PHOTO, PHOTO_EXPIRED, shopper_message
from shop.models import Product
from shop.selectors import category_list

SORTS = [
    ("relevance", "Best match"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("newest", "Newest"),
]
# Parameters of a form that never go into a results link.
_NOT_IN_LINKS = ("csrfmiddlewaretoken", "image", "offset")


def _run(context: dict, serializer, action) -> int:
    """Validate and run ``action(validated_data)``; put result or a shopper message in context."""
    try:
        if not serializer.is_valid():
            context["error"] = shopper_message(serializer.errors)
            return 400
        context["result"] = action(serializer.validated_data)
        return 200
    except KNOWN_ERRORS as exc:
        context["error"] = str(exc)
        return error_status(exc)
    except APIException as exc:
        context["error"] = str(exc.detail)
        return exc.status_code


def _sends_photo(request) -> bool:
    return request.method == "POST" or "photo" in request.GET


def _similar_context(request, params, slug: str) -> dict:
    return _base_context(request, params) | {"product": get_object_or_404(Product, slug=slug)}


def _thumbnail_data_url(image: Image.Image, side: int = 320) -> str:
    """The query photo shown back on the page, inline: it is never written to disk."""
    thumb = image.convert("RGBA")
    canvas = Image.new("RGB", thumb.size, (255, 255, 255))
    canvas.paste(thumb, mask=thumb.getchannel("A"))  # transparent parts on white, not black
    canvas.thumbnail((side, side))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _colours() -> list[str]:
    return list(
        Product.objects.exclude(colour="")
        .order_by("colour")
        .values_list("colour", flat=True)
        .distinct()
    )


def _base_context(request, params) -> dict:
    return {
        "categories": category_list(),
        "colours": _colours(),
        "sorts": SORTS,
        "params": params,
        "default_text_weight": s.default_text_weight(),
        "default_negative_weight": s.DEFAULT_NEGATIVE_WEIGHT,
        "filters_active": any(
            params.get(k) for k in ("category", "colour", "min_price", "max_price", "in_stock")
        ),
    }


def _link(params, **changes) -> str:
    """``?query`` of a results link: the form's parameters with ``changes`` (None removes)."""
    query = QueryDict(mutable=True)
    for key, values in params.lists():
        if key not in _NOT_IN_LINKS and key not in changes:
            query.setlist(key, [v for v in values if v != ""])
    for key, value in changes.items():
        if value not in (None, ""):
            query[key] = str(value)
    return "?" + query.urlencode()


def _pager(context: dict, params) -> None:
    result = context.get("result")
    if result is None or not hasattr(result, "has_more"):
        return
    if result.offset:
        context["prev_url"] = _link(params, offset=result.prev_offset or None)
    if result.has_more:
        context["next_url"] = _link(params, offset=result.next_offset)


def _form_data(params, files=None) -> dict:
    data = {k: v for k, v in params.items() if v != "" and k != "photo"}
    if files and "image" in files:
        data["image"] = files["image"]
    return data


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


@page_throttle("search_text", "search/search.html", _base_context, when=lambda r: "q" in r.GET)
def search_view(request):
    context = _base_context(request, request.GET)
    context["q"] = request.GET.get("q", "").strip()
    status = 200
    if "q" in request.GET:
        form = s.TextSearchInputSerializer(data=_form_data(request.GET) | {"q": context["q"]})
        status = _run(
            context,
            form,
            lambda d: products_search(search_request_from(d, text_terms(d), query=d["q"])),
        )
        context["chips"] = _chips(request, getattr(context.get("result"), "parsed", None))
        _pager(context, request.GET)
    return render(request, "search/search.html", context, status=status)


def _query_photo(request, params) -> tuple[str, bytes] | None:
    """(key, PNG bytes) of the photo to search with: a new upload (kept under a fresh key) or
    the one kept under ``photo``; None when neither was sent."""
    upload = request.FILES.get("image")
    if upload is not None:
        image = s.ImageInputField().to_internal_value(upload)  # InvalidImage: a 4xx message
        return query_photo_keep(image=image)
    key = params.get("photo")
    if not key:
        return None
    data = query_photo_get(key=key)
    if data is None:
        raise SearchError(PHOTO_EXPIRED, status=410)
    return key, data


def _with_photo(context: dict, request, params) -> tuple[dict | None, int]:
    """The form data with the kept photo as its ``image``, or None and a status when there is
    no photo (a message in context when one was expected)."""
    try:
        photo = _query_photo(request, params)
    except KNOWN_ERRORS as exc:
        context["error"] = str(exc)
        return None, error_status(exc)
    if photo is None:
        if request.method == "POST":
            context["error"] = CHOOSE_PHOTO
            return None, 400
        return None, 200
    key, png = photo
    context["photo_key"] = key
    context["query_image"] = _thumbnail_data_url(Image.open(io.BytesIO(png)), 640)
    data = _form_data(params)
    data["image"] = SimpleUploadedFile("photo.png", png, "image/png")
    # Links (pages, chips, the other photo page) carry the key, never the file.
    context["link_params"] = params.copy()
    context["link_params"]["photo"] = key
    return data, 200


def _photo_suggestions(params, result, colours: list[str]) -> list[dict]:
    """One-tap refinements after a photo search: another colour, cheaper, one category."""
    hits = result.hits[:8]
    if not hits:
        return []
    chips = []
    top_colour = hits[0].product.colour
    preferred = [c for c in ("black", "white") if c in colours]
    for colour in [*preferred, *(c for c in colours if c not in preferred)]:
        if colour != top_colour and len(chips) < 3:
            chips.append({"label": f"in {colour}", "url": _link(params, text=f"in {colour}")})
    prices = sorted(h.product.price for h in hits)
    cheaper = prices[len(prices) // 2].quantize(Decimal("1"), rounding=ROUND_DOWN)
    if cheaper > 0 and cheaper > prices[0]:
        chips.append(
            {"label": f"cheaper (under €{cheaper})", "url": _link(params, max_price=cheaper)}
        )
    if not params.get("category"):
        category, n = Counter(h.product.category for h in hits[:5]).most_common(1)[0]
        if n >= 2:
            chips.append(
                {"label": f"only {category.name}", "url": _link(params, category=category.slug)}
            )
    return chips


@require_http_methods(["GET", "POST"])
@page_throttle("search_photo", "search/photo.html", _base_context, when=_sends_photo)
def photo_search_view(request):
    params = request.POST if request.method == "POST" else request.GET
    context = _base_context(request, params)
    data, status = _with_photo(context, request, params)
    if data is not None:
        form = s.ImageSearchInputSerializer(data=data)
        status = _run(
            context, form, lambda d: products_search(search_request_from(d, image_terms(d)))
        )
        links = context["link_params"]
        _pager(context, links)
        if "result" in context:
            context["suggestions"] = _photo_suggestions(
                links, context["result"], context["colours"]
            )
            context["look_url"] = _link(links, crop=None, text=None, negative=None)
    return render(request, "search/photo.html", context, status=status)


@require_http_methods(["GET", "POST"])
@page_throttle("search_look", "search/look.html", _base_context, when=_sends_photo)
def look_view(request):
    """Shop the look: a marker on each item found in the photo, each item with its results."""
    params = request.POST if request.method == "POST" else request.GET
    context = _base_context(request, params)
    data, status = _with_photo(context, request, params)
    if data is not None:
        form = s.DetectInputSerializer(data=data)

        def action(d):
            template = search_request_from({**d, "limit": d.get("limit") or 12}, modifier_terms(d))
            return look_search(d["image"], request=template, max_items=d.get("max_items"))

        status = _run(context, form, action)
        links = context["link_params"]
        context["photo_url"] = _link(links)
        if "result" in context:
            # Each item's further results (and paging): the photo page, cropped to its box.
            context["items"] = [
                {
                    "item": item,
                    "more_url": _link(links, crop=",".join(f"{v:.4f}" for v in item.box)),
                }
                for item in context["result"].items
            ]
    return render(request, "search/look.html", context, status=status)


@page_throttle("search_similar", "search/similar.html", _similar_context)
def similar_view(request, slug: str):
    """More like this, optionally 'but in red' (text + weight slider)."""
    product = get_object_or_404(Product.objects.with_images(), slug=slug)
    context = _base_context(request, request.GET)
    context["product"] = product
    form = s.SimilarInputSerializer(data=_form_data(request.GET))
    status = _run(
        context,
        form,
        lambda d: products_search(search_request_from(d, similar_terms(product.pk, d))),
    )
    _pager(context, request.GET)
    return render(request, "search/similar.html", context, status=status)


@require_http_methods(["GET", "POST"])
@page_throttle(
    "search_describe", "search/describe.html", _base_context, when=lambda r: r.method == "POST"
)
def describe_view(request):
    context = _base_context(request, request.POST)
    status = 200
    if request.method == "POST" and "image" not in request.FILES:
        context["error"] = "Choose a photo to describe: press “Choose a photo” first."
        status = 400
    elif request.method == "POST":
        form = s.DescribeInputSerializer(data=_form_data(request.POST, request.FILES))

        def action(d):
            if d.get("image") is not None:
                context["query_image"] = _thumbnail_data_url(d["image"])
            return image_describe(image=d.get("image"), product_id=d.get("product"), top=d["top"])

        status = _run(context, form, action)
    return render(request, "search/describe.html", context, status=status)
