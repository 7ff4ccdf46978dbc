"""Thin API views: validate, call one service, serialize. Errors are JSON (search.api.errors)."""

from collections.abc import Mapping

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from search.api import serializers as s
from search.api.errors import ErrorSerializer
from search.api.throttling import ModeRateThrottle, rate_limit_headers_add
from search.query_terms import (
    hybrid_terms,
    image_terms,
    modifier_terms,
    search_request_from,
    similar_terms,
    text_terms,
)
from search.selectors import index_stats
from search.services.describe import image_describe, text_image_similarity
from search.services.indexing import pending_sweep
from search.services.look import look_search
from search.services.query import products_search
from search.services.suggest import suggestions_for
from shop.models import Product
from shop.parsers import SafeJSONParser

CARD = {
    "id": 7,
    "title": "Red Sneaker",
    "slug": "red-sneaker",
    "price": "59.00",
    "currency": "EUR",
    "category": "sneaker",
    "colour": "red",
    "in_stock": True,
    "image_url": "/media/products/7/red-sneaker.png",
    "url": "/products/red-sneaker/",
    "score": 0.31,
    "rank": 1,
    "matched": ["keyword", "vector"],
}
RESULTS_EXAMPLE = OpenApiExample(
    "Ranked products",
    value={
        "model": "ViT-B-32/laion2b_s34b_b79k",
        "limit": 24,
        "offset": 0,
        "sort": "relevance",
        "total": 100,
        "total_exact": False,
        "has_more": True,
        "next": "https://shop.example/api/v1/search/text/?q=red+sneaker&offset=24",
        "previous": None,
        "understood": [],
        "did_you_mean": None,
        "close_match": True,
        "confidence": 0.83,
        "results": [CARD],
    },
    response_only=True,
)
ERROR_EXAMPLE = OpenApiExample(
    "Error",
    value={"error": "Unknown category 'shoez'. Known: bag, coat, dress."},
    response_only=True,
    status_codes=["400"],
)
TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AA"
    "AAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


RATE_LIMIT_HEADERS = [
    OpenApiParameter(
        name,
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description=description,
    )
    for name, description in [
        ("RateLimit-Limit", "Requests allowed per window (IETF RateLimit header fields draft)"),
        ("RateLimit-Remaining", "Requests left in the current window"),
        ("RateLimit-Reset", "Seconds until a request is allowed again / the window frees up"),
        ("Retry-After", "On 429: seconds to wait before the next request"),
    ]
]


def errors(*codes: int) -> dict:
    """Documented error answers: every error is ``{"error": ..., "detail": ...}`` (errors.py).
    A database outage is a 503 anywhere, so every operation lists it."""
    return {code: ErrorSerializer for code in sorted({*codes, 503})}


SEARCH_ERRORS = errors(400, 404, 409, 413, 415, 429)
OFFSET_QUERY = OpenApiParameter(
    "offset",
    OpenApiTypes.INT,
    OpenApiParameter.QUERY,
    required=False,
    description="Page offset, over the body's: the answer's next / previous links carry it",
)


def body(json_serializer, upload_serializer=None) -> dict:
    """One request component per content type: JSON (photos as data URLs) and, where a file
    upload is offered, a multipart form whose image field is a file."""
    content = {"application/json": json_serializer}
    if upload_serializer is not None:
        content["multipart/form-data"] = upload_serializer
    return content


class SearchAPIView(APIView):
    """Public and throttled, one budget per mode (rate-limit headers on every answer:
    search.api.throttling)."""

    throttle_classes = [ModeRateThrottle]
    throttle_scope = "search"
    parser_classes = [SafeJSONParser, MultiPartParser]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        return rate_limit_headers_add(request, response)

    def input_for(self, request, json_serializer, upload_serializer):
        """The serializer of the request's content type (both read files and data URLs; the
        two exist so that the schema tells generated clients what to send)."""
        multipart = request.content_type.startswith("multipart/")
        return upload_serializer if multipart else json_serializer

    def paged_body(self, request):
        """The POST body, with ``offset`` from the query string when given: a POST search's
        ``next`` / ``previous`` links are its own URL with ``?offset=N``, for the same body."""
        offset = request.query_params.get("offset")
        data = request.data
        if offset is None or not isinstance(data, Mapping):
            return data
        return {**(data.dict() if hasattr(data, "dict") else data), "offset": offset}

    def run_search(self, request, data, terms, **extra):
        result = products_search(search_request_from(data, terms, **extra))
        return Response(s.SearchOutputSerializer(result, context={"request": request}).data)


class TextSearchApi(SearchAPIView):
    throttle_scope = "search_text"

    @extend_schema(
        operation_id="search_text",
        tags=["search"],
        summary="Text -> products, ranked by CLIP similarity",
        parameters=[s.TextSearchInputSerializer, *RATE_LIMIT_HEADERS],
        responses={200: s.SearchOutputSerializer, **errors(400, 429)},
        examples=[RESULTS_EXAMPLE, ERROR_EXAMPLE],
    )
    def get(self, request):
        params = s.TextSearchInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return self.run_search(request, data, text_terms(data), query=data["q"])


class ImageSearchApi(SearchAPIView):
    throttle_scope = "search_photo"

    @extend_schema(
        summary="Photo -> products (shop the look), optionally 'this, but in red'",
        description=(
            "Multipart (`image` file) or JSON (`image` as a base64 data URL). `crop` selects "
            "the item in the photo. `text` steers with weight `text_weight` (the photo gets "
            "1 - text_weight); `negative` pushes away with `negative_weight`. The photo is not "
            "stored."
        ),
        operation_id="search_image",
        tags=["search"],
        request=body(s.ImageSearchInputSerializer, s.ImageSearchUploadSerializer),
        parameters=[OFFSET_QUERY, *RATE_LIMIT_HEADERS],
        responses={200: s.SearchOutputSerializer, **SEARCH_ERRORS},
        examples=[
            OpenApiExample(
                "This, but in red",
                value={
                    "image": TINY_PNG,
                    "text": "red",
                    "text_weight": 0.3,
                    "crop": "0,0,1,1",
                    "negative": "leather",
                    "negative_weight": 0.2,
                    "category": "sneaker",
                },
                request_only=True,
            ),
            RESULTS_EXAMPLE,
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        serializer = self.input_for(
            request, s.ImageSearchInputSerializer, s.ImageSearchUploadSerializer
        )
        params = serializer(data=self.paged_body(request))
        params.is_valid(raise_exception=True)
        return self.run_search(request, params.validated_data, image_terms(params.validated_data))


class HybridSearchApi(SearchAPIView):
    throttle_scope = "search_photo"  # the photo budget: hybrid queries embed photos too
    # JSON only: weighted text terms are an object, photos a list of data URLs; neither has
    # a faithful form encoding.
    parser_classes = [SafeJSONParser]

    @extend_schema(
        summary="Several weighted terms at once (text, photos, products; negatives too)",
        operation_id="search_hybrid",
        tags=["search"],
        request=body(s.HybridSearchInputSerializer),
        parameters=[OFFSET_QUERY, *RATE_LIMIT_HEADERS],
        responses={200: s.SearchOutputSerializer, **errors(400, 404, 409, 413, 415, 429)},
        examples=[
            OpenApiExample(
                "Red, not striped, looking like product 12",
                value={
                    "text": {"red": 1.0, "stripes": -0.3},
                    "products": [{"product": 12, "weight": 0.7}],
                    "images": [{"image": TINY_PNG, "weight": 0.5}],
                    "limit": 12,
                },
                request_only=True,
            ),
            RESULTS_EXAMPLE,
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        params = s.HybridSearchInputSerializer(data=self.paged_body(request))
        params.is_valid(raise_exception=True)
        return self.run_search(request, params.validated_data, hybrid_terms(params.validated_data))


class SimilarProductsApi(SearchAPIView):
    throttle_scope = "search_similar"

    @extend_schema(
        operation_id="search_similar",
        tags=["search"],
        summary="More like this: visually similar products (never the product itself)",
        parameters=[s.SimilarInputSerializer, *RATE_LIMIT_HEADERS],
        responses={200: s.SearchOutputSerializer, **errors(400, 404, 409, 429)},
        examples=[RESULTS_EXAMPLE],
    )
    def get(self, request, pk: int):
        product = get_object_or_404(Product, pk=pk)
        params = s.SimilarInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return self.run_search(
            request, params.validated_data, similar_terms(product.pk, params.validated_data)
        )


class DescribeApi(SearchAPIView):
    throttle_scope = "search_describe"

    @extend_schema(
        operation_id="describe",
        tags=["search"],
        summary="Describe a photo: zero-shot category and colour, best-matching descriptions",
        request=body(s.DescribeInputSerializer, s.DescribeUploadSerializer),
        parameters=RATE_LIMIT_HEADERS,
        responses={200: s.DescribeOutputSerializer, **SEARCH_ERRORS},
        examples=[
            OpenApiExample("A photo", value={"image": TINY_PNG, "top": 3}, request_only=True),
            OpenApiExample(
                "Description",
                value={
                    "model": "ViT-B-32/laion2b_s34b_b79k",
                    "suggestion": "red sneaker",
                    "categories": [{"name": "Sneaker", "score": 0.91}],
                    "colours": [{"name": "red", "score": 0.88}],
                    "descriptions": [
                        {
                            "id": 7,
                            "title": "Red Sneaker",
                            "score": 0.29,
                            "description": "Classic sneaker in red.",
                            "url": "/products/red-sneaker/",
                        }
                    ],
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = self.input_for(request, s.DescribeInputSerializer, s.DescribeUploadSerializer)
        params = serializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        result = image_describe(
            image=data.get("image"), product_id=data.get("product"), top=data["top"]
        )
        return Response(s.DescribeOutputSerializer(result).data)


class DetectApi(SearchAPIView):
    throttle_scope = "search_look"

    @extend_schema(
        operation_id="search_look",
        tags=["search"],
        summary="Shop the look: every item in a photo, each with its own results",
        description=(
            "Multipart (`image` file) or JSON (`image` as a base64 data URL). The detector "
            "(`DETECTOR`) finds the items, largest first (at most `max_items`); each box is "
            "searched by itself, with the filters. A photo without items answers an empty "
            "`items` list and a `message`. `text` / `negative` steer every item's search "
            'as in photo search ("this, but in red": each item\'s photo gets '
            "1 - `text_weight`)."
        ),
        request=body(s.DetectInputSerializer, s.DetectUploadSerializer),
        parameters=RATE_LIMIT_HEADERS,
        responses={200: s.DetectOutputSerializer, **errors(400, 413, 415, 429)},
        examples=[
            OpenApiExample("A photo", value={"image": TINY_PNG, "limit": 10}, request_only=True),
            OpenApiExample(
                "Each item, but in red",
                value={"image": TINY_PNG, "text": "red", "text_weight": 0.3, "limit": 10},
                request_only=True,
            ),
            OpenApiExample(
                "Two items",
                value={
                    "items": [
                        {
                            "box": [0.05, 0.1, 0.4, 0.8],
                            "category": "Sneaker",
                            "confidence": 0.93,
                            "results": [CARD],
                        }
                    ],
                    "message": "",
                },
                response_only=True,
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        serializer = self.input_for(request, s.DetectInputSerializer, s.DetectUploadSerializer)
        params = serializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        template = search_request_from(
            {**data, "limit": data.get("limit") or 10}, modifier_terms(data)
        )
        look = look_search(data["image"], request=template, max_items=data.get("max_items"))
        return Response(s.DetectOutputSerializer(look, context={"request": request}).data)


class SimilarityApi(SearchAPIView):
    throttle_scope = "search_describe"

    @extend_schema(
        operation_id="similarity",
        tags=["search"],
        summary="CLIP similarity of a text and a photo (cosine, -1..1)",
        request=body(s.SimilarityInputSerializer, s.SimilarityUploadSerializer),
        parameters=RATE_LIMIT_HEADERS,
        responses={200: s.SimilarityOutputSerializer, **errors(400, 413, 415, 429)},
        examples=[
            OpenApiExample(
                "Input", value={"text": "a red sneaker", "image": TINY_PNG}, request_only=True
            ),
            OpenApiExample(
                "Output",
                value={"score": 0.27, "model": "ViT-B-32/laion2b_s34b_b79k"},
                response_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = self.input_for(
            request, s.SimilarityInputSerializer, s.SimilarityUploadSerializer
        )
        params = serializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = text_image_similarity(**params.validated_data)
        return Response(s.SimilarityOutputSerializer(result).data)


class StatsApi(APIView):
    @extend_schema(
        operation_id="index_stats",
        tags=["index"],
        summary="Index status: active model, dimension, counts",
        responses={
            200: inline_serializer(
                "IndexStats",
                {
                    "active_model": serializers.CharField(allow_null=True),
                    "dimension": serializers.IntegerField(allow_null=True),
                    "products": serializers.IntegerField(),
                    "images": serializers.IntegerField(),
                    "embedded_images": serializers.IntegerField(),
                    "pending_images": serializers.IntegerField(),
                    "embedded_texts": serializers.IntegerField(),
                },
            ),
            **errors(),
        },
        examples=[
            OpenApiExample(
                "Stats",
                value={
                    "active_model": "ViT-B-32/laion2b_s34b_b79k",
                    "dimension": 512,
                    "products": 1200,
                    "images": 3400,
                    "embedded_images": 3390,
                    "pending_images": 10,
                    "embedded_texts": 1200,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        return Response(index_stats())


class SuggestApi(SearchAPIView):
    throttle_scope = "search_suggest"

    @extend_schema(
        operation_id="suggest",
        tags=["search"],
        summary="Autocomplete: categories, synonyms, titles and catalog words for what is typed",
        parameters=[s.SuggestInputSerializer, *RATE_LIMIT_HEADERS],
        responses={200: s.SuggestOutputSerializer, **errors(400, 429)},
        examples=[
            OpenApiExample(
                "Suggestions",
                value={"suggestions": [{"text": "red sneaker", "kind": "category"}]},
                response_only=True,
            )
        ],
    )
    def get(self, request):
        params = s.SuggestInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        found = suggestions_for(
            text=params.validated_data["q"], limit=params.validated_data["limit"]
        )
        return Response(s.SuggestOutputSerializer({"suggestions": found}).data)


class ReindexApi(APIView):
    """Staff only (token auth): queue every image/text the configured model lacks."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="index_reindex",
        tags=["index"],
        summary="Queue indexing of everything pending (staff)",
        request=None,
        responses={
            202: inline_serializer(
                "ReindexQueued",
                {"images": serializers.IntegerField(), "products": serializers.IntegerField()},
            ),
            **errors(401, 403),
        },
        examples=[
            OpenApiExample("Queued", value={"images": 120, "products": 40}, response_only=True)
        ],
    )
    def post(self, request):
        return Response(pending_sweep(limit=1_000_000), status=202)
