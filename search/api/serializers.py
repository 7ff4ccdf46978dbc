from django.conf import settings
from rest_framework import serializers

from shop.models import Category


class FiltersSerializer(serializers.Serializer):
    category = serializers.SlugField(required=False, help_text="Category slug")
    min_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, required=False, min_value=0
    )
    max_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, required=False, min_value=0
    )
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    colour = serializers.CharField(required=False, max_length=40)
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10_000, default=0)
    min_score = serializers.FloatField(required=False, min_value=-1.0, max_value=1.0)

    def validate_category(self, value: str) -> str:
        if not Category.objects.filter(slug=value).exists():
            known = ", ".join(Category.objects.values_list("slug", flat=True)[:50])
            raise serializers.ValidationError(f"Unknown category '{value}'. Known: {known}.")
        return value

    def validate_limit(self, value: int) -> int:
        if value > settings.SEARCH_MAX_LIMIT:
            raise serializers.ValidationError(f"limit must be at most {settings.SEARCH_MAX_LIMIT}.")
        return value

    def validate(self, attrs):
        lo, hi = attrs.get("min_price"), attrs.get("max_price")
        if lo is not None and hi is not None and lo > hi:
            raise serializers.ValidationError("min_price must not exceed max_price.")
        return attrs


class TextSearchInputSerializer(FiltersSerializer):
    q = serializers.CharField(max_length=2000, trim_whitespace=True, help_text="What to look for")


class ProductCardSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="product.id")
    title = serializers.CharField(source="product.title")
    slug = serializers.CharField(source="product.slug")
    price = serializers.DecimalField(source="product.price", max_digits=10, decimal_places=2)
    currency = serializers.CharField(source="product.currency")
    category = serializers.CharField(source="product.category.slug")
    colour = serializers.CharField(source="product.colour")
    in_stock = serializers.BooleanField(source="product.in_stock")
    image_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    score = serializers.FloatField()
    rank = serializers.IntegerField()

    def get_image_url(self, hit) -> str | None:
        return hit.image.image.url if hit.image else None

    def get_url(self, hit) -> str:
        return hit.product.get_absolute_url()


class SearchOutputSerializer(serializers.Serializer):
    model = serializers.CharField(source="model.key")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = ProductCardSerializer(source="hits", many=True)
