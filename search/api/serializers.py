import math

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.utils.urls import remove_query_param, replace_query_param

from search.services.query import DEFAULT_NEGATIVE_WEIGHT, SORTS
from shop.images import InvalidImage, crop_fraction, decode_data_url, max_upload_bytes, open_image
from shop.models import Category, Product


def default_text_weight() -> float:
    """The hybrid slider's default text share (``SEARCH_HYBRID_TEXT_WEIGHT``; see settings)."""
    return settings.SEARCH_HYBRID_TEXT_WEIGHT


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: DRF's FloatField takes "nan", "inf" and "1e309" (Python's
    ``float`` does), and NaN passes every min/max check, so ``min_score=nan`` was a query
    (issue 12). The message names the parameter."""

    default_error_messages = {"not_finite": "{name} must be a finite number, not '{value}'."}

    def to_internal_value(self, data) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            # A DictField's child has no name of its own: it is one of its parent's values.
            name = self.field_name or f"each weight of {getattr(self.parent, 'field_name', '')}"
            self.fail("not_finite", name=name, value=str(data)[:40])
        return value


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
    min_score = FiniteFloatField(required=False, min_value=-1.0, max_value=1.0)
    sort = serializers.ChoiceField(
        choices=SORTS,
        required=False,
        default="relevance",
        error_messages={"invalid_choice": f"Unknown sort. Known: {', '.join(SORTS)}."},
        help_text=(
            "relevance (default); price_asc, price_desc and newest order the most relevant "
            "results (the first SEARCH_FUSION_CANDIDATES), not the whole catalog"
        ),
    )

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


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^data:image/",
        "description": "The photo as a 'data:image/...;base64,' URL",
    }
)
class ImageInputField(serializers.Field):
    """A multipart file or a ``data:image/...;base64,`` URL -> a decoded, upright PIL image.

    Image errors raise InvalidImage (400, or 413 for size) with a message for the user.
    """

    def to_internal_value(self, data):
        if isinstance(data, UploadedFile):
            if data.size is not None and data.size > max_upload_bytes():
                raise InvalidImage(
                    f"The image is larger than {max_upload_bytes() // (1024 * 1024)} MB. "
                    "Upload a smaller photo.",
                    status=413,
                )
            return open_image(data.read())
        if isinstance(data, str) and data:
            return open_image(decode_data_url(data))
        raise serializers.ValidationError(
            "Send the photo as a multipart file or as a 'data:image/...;base64,' string."
        )

    def to_representation(self, value):  # write-only in practice
        return None


@extend_schema_field({"type": "string", "format": "binary", "description": "The photo file"})
class ImageUploadField(ImageInputField):
    """The same field in a multipart form: its schema says file, so that a generated client
    sends a file part (the JSON form's schema says data URL, and a generator cannot tell which
    to send when one component serves both)."""


@extend_schema_field(OpenApiTypes.STR)
class CropField(serializers.Field):
    """``"x,y,w,h"`` or ``[x, y, w, h]``: the selected region, as fractions of the photo."""

    default_error_messages = {
        "invalid": "crop must be four numbers x,y,w,h between 0 and 1 (fractions of the photo).",
    }

    def to_internal_value(self, data):
        parts = data.split(",") if isinstance(data, str) else data
        try:
            x, y, w, h = (float(p) for p in parts)
        except (TypeError, ValueError):
            self.fail("invalid")
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1):
            self.fail("invalid")
        if x + w > 1.0001 or y + h > 1.0001:
            self.fail("invalid")
        return (x, y, w, h)

    def to_representation(self, value):
        return list(value)


class ProductRefMixin:
    def validate_product(self, value: int) -> int:
        if not Product.objects.filter(pk=value).exists():
            raise NotFound(f"Product {value} does not exist.")
        return value


class ImageOrProductMixin(ProductRefMixin):
    """A query photo (optionally cropped) or a catalog product, exactly one of them."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if (attrs.get("image") is None) == (attrs.get("product") is None):
            raise serializers.ValidationError("Send exactly one of 'image' or 'product'.")
        if attrs.get("image") is not None:
            attrs["image"] = crop_fraction(attrs["image"], attrs.get("crop"))
        return attrs


class TextModifierSerializer(serializers.Serializer):
    """Words steering a photo search or each item of a look: "this, but in red", "not
    leather" (``query_terms.modifier_terms``)."""

    text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Modifier: 'in red' for 'this, but in red'",
    )
    text_weight = FiniteFloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        default=default_text_weight,
        help_text="Share of the text modifier; the photo gets 1 - text_weight",
    )
    negative = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Push away from: leather"
    )
    negative_weight = FiniteFloatField(
        required=False, min_value=0.0, max_value=1.0, default=DEFAULT_NEGATIVE_WEIGHT
    )


class ImageSearchInputSerializer(ImageOrProductMixin, TextModifierSerializer, FiltersSerializer):
    """Photo search, optionally steered by words: "this, but in red", "not leather"."""

    image = ImageInputField(required=False)
    product = serializers.IntegerField(
        required=False, help_text="Use this catalog product's look instead of a photo"
    )
    crop = CropField(required=False, help_text="Selected region x,y,w,h as fractions")
    auto_crop = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Crop to the main item and show it like a catalog shot before searching",
    )


class ImageSearchUploadSerializer(ImageSearchInputSerializer):
    """Photo search as a multipart form (the schema's file upload)."""

    image = ImageUploadField(required=False, help_text="Photo file")


MAX_TERM_CHARS = 500


def max_terms() -> int:
    """Text terms, and separately photos and products, per hybrid query (``SEARCH_MAX_TERMS``)."""
    return settings.SEARCH_MAX_TERMS


class BoundedListSerializer(serializers.ListSerializer):
    """A list of at most ``SEARCH_MAX_TERMS`` items, read when validating (DRF's ``max_length``
    is fixed when the class is defined, before a test or deployment sets the limit)."""

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > max_terms():
            raise serializers.ValidationError(
                f"At most {max_terms()} {self.field_name} per query (got {len(data)}; "
                "SEARCH_MAX_TERMS)."
            )
        return super().to_internal_value(data)


class WeightedImageSerializer(serializers.Serializer):
    image = ImageInputField()
    weight = FiniteFloatField(min_value=-2.0, max_value=2.0, default=1.0)
    crop = CropField(required=False)

    class Meta:
        list_serializer_class = BoundedListSerializer


class WeightedProductSerializer(ProductRefMixin, serializers.Serializer):
    product = serializers.IntegerField()
    weight = FiniteFloatField(min_value=-2.0, max_value=2.0, default=1.0)

    class Meta:
        list_serializer_class = BoundedListSerializer


class HybridSearchInputSerializer(FiltersSerializer):
    """Several weighted terms at once: ``{"text": {"red": 1.0, "stripes": -0.3}}``."""

    text = serializers.DictField(
        child=FiniteFloatField(min_value=-2.0, max_value=2.0),
        required=False,
        default=dict,
        help_text="text -> weight in [-2, 2]; negative weights push away",
    )
    images = WeightedImageSerializer(many=True, required=False, default=list)
    products = WeightedProductSerializer(many=True, required=False, default=list)

    def validate_text(self, value: dict) -> dict:
        # Each text term costs an encoder call and a cache entry: a few thousand in one
        # request kept a worker busy for minutes (issue 12), so the query is bounded.
        if len(value) > max_terms():
            raise serializers.ValidationError(
                f"At most {max_terms()} text terms per query (got {len(value)}; SEARCH_MAX_TERMS)."
            )
        for key in value:
            if not key.strip():
                raise serializers.ValidationError("Text terms must not be empty.")
            if "\x00" in key:
                raise serializers.ValidationError("Text terms must not contain NUL characters.")
            if len(key) > MAX_TERM_CHARS:
                raise serializers.ValidationError(
                    f"A text term may have at most {MAX_TERM_CHARS} characters."
                )
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        weights = [
            *attrs["text"].values(),
            *(i["weight"] for i in attrs["images"]),
            *(p["weight"] for p in attrs["products"]),
        ]
        if not weights:
            raise serializers.ValidationError("Give at least one term: text, images or products.")
        if not any(w > 0 for w in weights):
            raise serializers.ValidationError("At least one term needs a positive weight.")
        for item in attrs["images"]:
            item["image"] = crop_fraction(item["image"], item.get("crop"))
        return attrs


class SimilarInputSerializer(FiltersSerializer):
    text = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    text_weight = FiniteFloatField(
        required=False, min_value=0.0, max_value=1.0, default=default_text_weight
    )


class DescribeInputSerializer(ImageOrProductMixin, serializers.Serializer):
    image = ImageInputField(required=False)
    product = serializers.IntegerField(required=False)
    crop = CropField(required=False)
    top = serializers.IntegerField(required=False, min_value=1, max_value=20, default=5)


class DescribeUploadSerializer(DescribeInputSerializer):
    image = ImageUploadField(required=False)


class SimilarityInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=2000)
    image = ImageInputField()


class SimilarityUploadSerializer(SimilarityInputSerializer):
    image = ImageUploadField()


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
    matched = serializers.ListField(
        child=serializers.CharField(),
        help_text="Legs that found this product: 'keyword' (full text), 'vector' (CLIP)",
    )

    def get_image_url(self, hit) -> str | None:
        return hit.image.image.url if hit.image else None

    def get_url(self, hit) -> str:
        return hit.product.get_absolute_url()


class UnderstoodSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="price, colour, category or not")
    label = serializers.CharField(help_text="What the page's chip says, e.g. 'under €50'")
    span = serializers.CharField(help_text="The words of the query it was read from")
    value = serializers.CharField()


class SearchOutputSerializer(serializers.Serializer):
    model = serializers.CharField(source="model.key")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    sort = serializers.CharField()
    total = serializers.IntegerField(
        help_text="How many results; with total_exact false a lower bound ('more than N')"
    )
    total_exact = serializers.BooleanField()
    has_more = serializers.BooleanField(help_text="Whether a next page has results")
    next = serializers.SerializerMethodField()
    previous = serializers.SerializerMethodField()
    understood = serializers.SerializerMethodField()
    did_you_mean = serializers.SerializerMethodField()
    close_match = serializers.SerializerMethodField()
    confidence = serializers.SerializerMethodField()
    results = ProductCardSerializer(source="hits", many=True)

    def get_next(self, response) -> str | None:
        """The next page: GET it, or POST the same body to it (photo and hybrid search)."""
        if not response.has_more:
            return None
        return _page_link(self.context.get("request"), response.next_offset)

    def get_previous(self, response) -> str | None:
        if not response.offset:
            return None
        return _page_link(self.context.get("request"), response.prev_offset)

    @extend_schema_field(UnderstoodSerializer(many=True))
    def get_understood(self, response) -> list[dict]:
        """What text search read from the query (empty for photo and hybrid queries)."""
        parsed = response.parsed
        return UnderstoodSerializer(parsed.understood if parsed else [], many=True).data

    def get_did_you_mean(self, response) -> str | None:
        return response.parsed.did_you_mean if response.parsed else None

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_close_match(self, response) -> bool | None:
        """Whether the best result is a close match for this model and catalog."""
        return response.relevance.close_match if response.relevance else None

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_confidence(self, response) -> float | None:
        """0..1: the share of in-catalog queries whose best similarity this one reaches."""
        return response.relevance.confidence if response.relevance else None


def _page_link(request, offset: int) -> str | None:
    """This request's URL with ``offset`` replaced (query string only: a POST body is the
    client's to send again, and the search views read ``offset`` from the query string)."""
    if request is None:
        return None
    url = request.build_absolute_uri()
    return (
        replace_query_param(url, "offset", offset) if offset else remove_query_param(url, "offset")
    )


class LabelSerializer(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.FloatField()


class DescribedProductSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="product.id")
    title = serializers.CharField(source="product.title")
    description = serializers.CharField(source="product.description")
    url = serializers.CharField(source="product.get_absolute_url")
    score = serializers.FloatField()


class DescribeOutputSerializer(serializers.Serializer):
    model = serializers.CharField(source="model.key")
    suggestion = serializers.CharField()
    categories = LabelSerializer(many=True)
    colours = LabelSerializer(many=True)
    descriptions = DescribedProductSerializer(source="products", many=True)


class SimilarityOutputSerializer(serializers.Serializer):
    score = serializers.FloatField(help_text="cosine similarity, -1..1")
    model = serializers.CharField(source="model.key")


class SuggestInputSerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=200, trim_whitespace=True, help_text="What is typed so far"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=20, default=8)


class SuggestionSerializer(serializers.Serializer):
    text = serializers.CharField()
    kind = serializers.CharField(help_text="category, synonym, title or word")


class SuggestOutputSerializer(serializers.Serializer):
    suggestions = SuggestionSerializer(many=True)


class DetectInputSerializer(TextModifierSerializer, FiltersSerializer):
    """Shop the look: a photo; every item found gets its own results (with these filters and
    words: "this, but in red" applies to each item)."""

    image = ImageInputField()
    max_items = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=30,
        help_text="Most items (default DETECTOR_MAX_ITEMS)",
    )


class DetectUploadSerializer(DetectInputSerializer):
    image = ImageUploadField(help_text="Photo file")


class DetectedItemSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.FloatField(), help_text="x, y, w, h as fractions of the photo"
    )
    category = serializers.CharField(source="detection.category", allow_null=True)
    confidence = serializers.FloatField(source="detection.confidence", help_text="0..1")
    results = ProductCardSerializer(source="results.hits", many=True)


class DetectOutputSerializer(serializers.Serializer):
    items = DetectedItemSerializer(many=True)
    message = serializers.CharField(help_text="Why the list is empty, else ''")
