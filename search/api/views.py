"""Thin API views: validate, call one service, serialize. Errors are JSON (search.api.errors)."""

from collections.abc import Mapping

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from search.api import serializers as s
from search.query_terms import (
    hybrid_terms,
    image_terms,
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
    value={"model": "ViT-B-32/laion2b_s34b_b79k", "limit": 24, "offset": 0, "results": [CARD]},
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


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()


ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 413: ErrorSerializer, 503: ErrorSerializer}


class SearchAPIView(APIView):
    """Public and throttled."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "search"
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]

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
    @extend_schema(
        summary="Text -> products, ranked by CLIP similarity",
        parameters=[s.TextSearchInputSerializer],
        responses={200: s.SearchOutputSerializer, **ERRORS},
        examples=[RESULTS_EXAMPLE, ERROR_EXAMPLE],
    )
    def get(self, request):
        params = s.TextSearchInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return self.run_search(request, data, text_terms(data), query=data["q"])


class ImageSearchApi(SearchAPIView):
    @extend_schema(
        summary="Photo -> products (shop the look), optionally 'this, but in red'",
        description=(
            "Multipart (`image` file) or JSON (`image` as a base64 data URL). `crop` selects "
            "the item in the photo. `text` steers with weight `text_weight` (the photo gets "
            "1 - text_weight); `negative` pushes away with `negative_weight`. The photo is not "
            "stored."
        ),
        request=s.ImageSearchInputSerializer,
        responses={200: s.SearchOutputSerializer, **ERRORS},
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
        params = s.ImageSearchInputSerializer(data=self.paged_body(request))
        params.is_valid(raise_exception=True)
        return self.run_search(request, params.validated_data, image_terms(params.validated_data))


class HybridSearchApi(SearchAPIView):
    @extend_schema(
        summary="Several weighted terms at once (text, photos, products; negatives too)",
        request=s.HybridSearchInputSerializer,
        responses={200: s.SearchOutputSerializer, **ERRORS},
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
    @extend_schema(
        summary="More like this: visually similar products (never the product itself)",
        parameters=[s.SimilarInputSerializer],
        responses={200: s.SearchOutputSerializer, **ERRORS},
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
    @extend_schema(
        summary="Describe a photo: zero-shot category and colour, best-matching descriptions",
        request=s.DescribeInputSerializer,
        responses={200: s.DescribeOutputSerializer, **ERRORS},
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
        params = s.DescribeInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        result = image_describe(
            image=data.get("image"), product_id=data.get("product"), top=data["top"]
        )
        return Response(s.DescribeOutputSerializer(result).data)


class DetectApi(SearchAPIView):
    @extend_schema(
        summary="Shop the look: every item in a photo, each with its own results",
        description=(
            "Multipart (`image` file) or JSON (`image` as a base64 data URL). The detector "
            "(`DETECTOR`) finds the items, largest first (at most `max_items`); each box is "
            "searched by itself, with the filters. A photo without items answers an empty "
            "`items` list and a `message`."
        ),
        request=s.DetectInputSerializer,
        responses={200: s.DetectOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample("A photo", value={"image": TINY_PNG, "limit": 10}, request_only=True),
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
        params = s.DetectInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        template = search_request_from({**data, "limit": data.get("limit") or 10}, [])
        look = look_search(data["image"], request=template, max_items=data.get("max_items"))
        return Response(s.DetectOutputSerializer(look, context={"request": request}).data)


class SimilarityApi(SearchAPIView):
    @extend_schema(
        summary="CLIP similarity of a text and a photo (cosine, -1..1)",
        request=s.SimilarityInputSerializer,
        responses={200: s.SimilarityOutputSerializer, **ERRORS},
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
        params = s.SimilarityInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = text_image_similarity(**params.validated_data)
        return Response(s.SimilarityOutputSerializer(result).data)


class StatsApi(APIView):
    @extend_schema(
        summary="Index status: active model, dimension, counts",
        responses=inline_serializer(
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
    @extend_schema(
        summary="Autocomplete: categories, synonyms, titles and catalog words for what is typed",
        parameters=[s.SuggestInputSerializer],
        responses={200: s.SuggestOutputSerializer, 400: ErrorSerializer},
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
        summary="Queue indexing of everything pending (staff)",
        request=None,
        responses={
            202: inline_serializer(
                "ReindexQueued",
                {"images": serializers.IntegerField(), "products": serializers.IntegerField()},
            )
        },
        examples=[
            OpenApiExample("Queued", value={"images": 120, "products": 40}, response_only=True)
        ],
    )
    def post(self, request):
        return Response(pending_sweep(limit=1_000_000), status=202)
