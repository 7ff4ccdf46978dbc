from rest_framework import generics, serializers

from shop.models import Product, ProductImage
from shop.selectors import product_list


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


class ProductListApi(generics.ListAPIView):
    serializer_class = ProductOutput

    def get_queryset(self):
        return product_list(category_slug=self.request.query_params.get("category"))


class ProductDetailApi(generics.RetrieveAPIView):
    serializer_class = ProductOutput
    queryset = Product.objects.with_images()
