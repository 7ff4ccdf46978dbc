from django.core.management.base import BaseCommand, CommandError

from search.embeddings.registry import configured_spec
from search.models import EmbeddingModel
from search.selectors import embedding_coverage
from search.services.embedding_models import ModelInUse, embedding_model_drop


class Command(BaseCommand):
    help = (
        "Drop the vectors and HNSW indexes of inactive embedding models (after a model switch). "
        "Without arguments, list the models and their coverage."
    )

    def add_arguments(self, parser):
        parser.add_argument("models", nargs="*", help="model ids or keys")
        parser.add_argument("--inactive", action="store_true", help="every inactive model")
        parser.add_argument(
            "--force",
            action="store_true",
            help="also drop the configured model (workers are writing its vectors)",
        )

    def handle(self, *args, models: list[str], inactive: bool, force: bool, **options):
        if not models and not inactive:
            self._list()
            return
        chosen = list(EmbeddingModel.objects.filter(is_active=False)) if inactive else []
        for ref in models:
            found = EmbeddingModel.objects.filter(
                **({"pk": int(ref)} if ref.isdigit() else {"key": ref})
            ).first()
            if found is None:
                raise CommandError(f"No embedding model {ref!r}; run without arguments to list.")
            if found.is_active:
                raise CommandError(
                    f"{found.key} is the active model: search reads it. Configure and index "
                    "another model first; search switches once it covers the catalog."
                )
            chosen.append(found)
        configured = configured_spec().key
        for model in {m.pk: m for m in chosen}.values():
            if model.key == configured and not force:
                self.stdout.write(
                    self.style.WARNING(
                        f"Skipped {model.key}: it is the configured model (CLIP_MODEL/"
                        "CLIP_PRETRAINED), still being indexed. --force drops it anyway."
                    )
                )
                continue
            try:
                dropped = embedding_model_drop(model)
            except ModelInUse as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                self.style.SUCCESS(
                    f"Dropped {model.key} ({model.dim}d): {dropped['images']} image and "
                    f"{dropped['texts']} text vectors, and its HNSW indexes."
                )
            )

    def _list(self) -> None:
        rows = embedding_coverage()
        if not rows:
            self.stdout.write("No embedding models yet.")
        for c in rows:
            state = "active" if c.is_active else "inactive"
            self.stdout.write(
                f"{c.model.pk:>4}  {state:<8}  {c.model.key} ({c.model.dim}d)  images "
                f"{c.images_embedded}/{c.images_total}  texts {c.texts_embedded}/{c.texts_total}"
            )
