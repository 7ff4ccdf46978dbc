"""Catalog API: public reads; writes need a staff user's token (Authorization: Token <key>)."""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from shop import services
from shop.images import open_image
from shop.models import Product, ProductImage
from shop.parsers import SafeJSONParser
from shop.selectors import product_list

# Every API error is the project's ``Error`` answer (rendered by the exception handler in
# search/api/errors.py, which defines the component; the catalog does not import search, so
# it refers to the component by name: a schema without it fails validation).
ERROR = {"$ref": "#/components/schemas/Error"}


def errors(*codes: int) -> dict:
    """Documented error answers; a database outage is a 503 anywhere."""
    return {code: ERROR for code in sorted({*codes, 503})}


@extend_schema_field(OpenApiTypes.BINARY)
class ImageUploadField(serializers.ImageField):
    """An image file of a multipart form: the schema says file (DRF's own mapping is the URL
    it answers with), so that a generated client sends a file part."""


class ProductImageOutput(serializers.ModelSerializer):
    url = serializers.ImageField(source="image", use_url=True)

    class Meta:
        model = ProductImage
        fields = ["id", "url", "width", "height", "alt_text", "position"]


class ProductOutput(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    images = ProductImageOutput(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "title",
            "slug",
            "description",
            "price",
            "currency",
            "category",
            "colour",
            "attributes",
            "in_stock",
            "images",
            "created_at",
            "updated_at",
        ]


class ProductFilters(serializers.Serializer):
    """The list's filter, checked before it reaches SQL (an unknown slug is an empty page)."""

    category = serializers.SlugField(
        required=False, max_length=100, help_text="Category slug: only its products"
    )


@extend_schema_view(
    get=extend_schema(
        operation_id="products_list",
        tags=["products"],
        parameters=[ProductFilters],
        responses={200: ProductOutput, **errors(400)},
    )
)
class ProductListApi(generics.ListCreateAPIView):
    serializer_class = ProductOutput
    parser_classes = [MultiPartParser, FormParser, SafeJSONParser]

    @extend_schema_serializer(component_name="ProductCreateInput")
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
        currency = serializers.CharField(max_length=3, default="EUR")
        category = serializers.CharField(max_length=100, help_text="name; created if new")
        colour = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
        in_stock = serializers.BooleanField(default=True)
        images = serializers.ListField(child=ImageUploadField(), required=False, default=list)

    def get_permissions(self):
        return [IsAdminUser()] if self.request.method == "POST" else []

    def get_queryset(self):
        filters = ProductFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return product_list(category_slug=filters.validated_data.get("category"))

    @extend_schema(
        operation_id="products_create",
        tags=["products"],
        summary="Create a product with images (staff); its images are indexed in the background",
        request={"multipart/form-data": InputSerializer},
        responses={201: ProductOutput, **errors(400, 401, 403, 413, 415)},
        examples=[
            OpenApiExample(
                "New product",
                request_only=True,
                value={
                    "title": "Red Sneaker",
                    "price": "59.00",
                    "category": "Sneaker",
                    "colour": "red",
                },
            )
        ],
    )
    def post(self, request):
        if not isinstance(request.data, Mapping):  # a JSON list or number, not an object
            raise serializers.ValidationError("Send the product as a form or a JSON object.")
        data = {k: v for k, v in request.data.items() if k != "images"}
        data["images"] = request.FILES.getlist("images")
        params = self.InputSerializer(data=data)
        params.is_valid(raise_exception=True)
        d = params.validated_data
        for f in d["images"]:
            open_image(f.read())  # reject what the indexer could not read, before saving
            f.seek(0)
        product = services.product_create(
            title=d["title"],
            description=d["description"],
            price=d["price"],
            currency=d["currency"],
            category=services.category_get_or_create(name=d["category"]),
            colour=d["colour"],
            in_stock=d["in_stock"],
            images=[(f.name, f) for f in d["images"]],
        )
        return Response(
            ProductOutput(product, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="products_retrieve",
        tags=["products"],
        responses={200: ProductOutput, **errors(404)},
    )
)
class ProductDetailApi(generics.RetrieveAPIView):
    serializer_class = ProductOutput
    queryset = Product.objects.with_images()


class ProductImageAddApi(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="ProductImageAddInput")
    class InputSerializer(serializers.Serializer):
        image = ImageUploadField()

    @extend_schema(
        operation_id="products_image_add",
        tags=["products"],
        summary="Add an image to a product (staff)",
        request={"multipart/form-data": InputSerializer},
        responses={201: ProductImageOutput, **errors(400, 401, 403, 404, 413, 415)},
    )
    def post(self, request, pk: int):
        product = generics.get_object_or_404(Product, pk=pk)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        upload = params.validated_data["image"]
        open_image(upload.read())
        upload.seek(0)
        image = services.product_image_add(product=product, name=upload.name, fileobj=upload)
        return Response(
            ProductImageOutput(image, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )
