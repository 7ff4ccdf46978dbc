import time

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from search.selectors import image_ids_pending, product_ids_text_pending
from search.services import indexing
from search.services.embedding_models import (
    configured_embedding_model,
    embedding_model_activate_if_covered,
)
from search.vectorstore import keyword


class Command(BaseCommand):
    help = "Embed every image and product text the configured CLIP model has not embedded yet."

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="send batches to the embeddings queue instead of embedding here",
        )
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, enqueue: bool, batch_size: int | None, **options):
        model = configured_embedding_model()
        batch = batch_size or settings.CLIP_BATCH_SIZE * 8
        image_ids = image_ids_pending(model=model)
        product_ids = product_ids_text_pending(model=model)
        self.stdout.write(
            f"Model {model.key} ({model.dim}d): {len(image_ids)} images and "
            f"{len(product_ids)} product texts to embed."
        )
        if enqueue:
            indexing.embeddings_enqueue(image_ids, product_ids)
            self.stdout.write(self.style.SUCCESS("Queued."))
            return
        started = time.perf_counter()
        quiet = options["verbosity"] < 1
        written = 0
        with tqdm(total=len(image_ids), desc="images", unit="img", disable=quiet) as bar:
            for i in range(0, len(image_ids), batch):
                chunk = image_ids[i : i + batch]
                written += indexing.images_embed(image_ids=chunk)
                bar.update(len(chunk))
        with tqdm(total=len(product_ids), desc="texts", unit="txt", disable=quiet) as bar:
            for i in range(0, len(product_ids), batch):
                chunk = product_ids[i : i + batch]
                indexing.product_texts_embed(product_ids=chunk)
                bar.update(len(chunk))
        embedding_model_activate_if_covered(model)
        documents = 0
        while stale := keyword.product_ids_stale(batch):
            documents += keyword.documents_refresh(stale)
        elapsed = time.perf_counter() - started
        rate = written / elapsed if elapsed else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"Embedded {written} images and {len(product_ids)} texts, wrote {documents} "
                f"keyword documents in {elapsed:.1f}s ({rate:.1f} images/s)."
            )
        )
