from django.contrib import admin, messages

from search.models import EmbeddingModel
from search.selectors import embedding_models_with_coverage
from search.services.embedding_models import embedding_model_activate_if_covered


def coverage_text(done: int, total: int) -> str:
    percent = 100.0 * done / total if total else 100.0
    return f"{done} / {total} ({percent:.0f}%)"


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    """Read-only: models are created by indexing and removed with ``drop_model_vectors``,
    which also drops their HNSW indexes (a delete here would leave those behind)."""

    list_display = [
        "key",
        "dim",
        "is_active",
        "images_coverage",
        "texts_coverage",
        "created_at",
        "activated_at",
    ]
    readonly_fields = ["key", "name", "pretrained", "dim", "is_active", "created_at"]
    readonly_fields += ["activated_at", "images_coverage", "texts_coverage"]
    actions = ["activate_if_covered"]

    def get_queryset(self, request):
        return embedding_models_with_coverage()  # one query for the page, counts included

    @admin.display(description="images embedded")
    def images_coverage(self, obj: EmbeddingModel) -> str:
        return coverage_text(obj.images_embedded, obj.images_total)

    @admin.display(description="product texts embedded")
    def texts_coverage(self, obj: EmbeddingModel) -> str:
        return coverage_text(obj.texts_embedded, obj.texts_total)

    @admin.action(description="Switch search to this model (only if it covers every image)")
    def activate_if_covered(self, request, queryset) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one model.", messages.ERROR)
            return
        model = chosen[0]
        if embedding_model_activate_if_covered(model):
            self.message_user(request, f"Search now answers from {model.key}.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"{model.key} has embedded {coverage_text(model.images_embedded, model.images_total)}"
                " images; search switches once it covers them all.",
                messages.WARNING,
            )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
