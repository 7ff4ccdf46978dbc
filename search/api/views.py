from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from search.api.serializers import SearchOutputSerializer, TextSearchInputSerializer
from search.forms import search_request_from
from search.services.query import Term, products_search


class SearchAPIView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "search"


class TextSearchApi(SearchAPIView):
    @extend_schema(
        parameters=[TextSearchInputSerializer],
        responses=SearchOutputSerializer,
        examples=[
            OpenApiExample(
                "Red sneakers",
                value={
                    "model": "ViT-B-32/laion2b_s34b_b79k",
                    "limit": 24,
                    "offset": 0,
                    "results": [
                        {
                            "id": 7,
                            "title": "Red Sneaker",
                            "slug": "red-sneaker",
                            "price": "59.00",
                            "currency": "EUR",
                            "category": "sneaker",
                            "colour": "red",
                            "in_stock": True,
                            "image_url": "/media/products/7/a.png",
                            "url": "/products/red-sneaker/",
                            "score": 0.31,
                            "rank": 1,
                        }
                    ],
                },
                response_only=True,
            )
        ],
        summary="Text search: products ranked by CLIP similarity to the query",
    )
    def get(self, request):
        params = TextSearchInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        result = products_search(search_request_from(data, [Term(kind="text", text=data["q"])]))
        return Response(SearchOutputSerializer(result, context={"request": request}).data)
