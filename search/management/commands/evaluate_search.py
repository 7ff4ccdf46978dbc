"""Measure search quality through the query service, trained model vs an untrained floor.

Run it on a throwaway database (the test settings start one) so a real catalog is untouched:
    DJANGO_SETTINGS_MODULE=config.settings.test python manage.py evaluate_search
"""

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from search.embeddings import ModelSpec, get_encoder
from search.embeddings.baseline import untrained_like
from search.evaluation import evaluate
from search.selectors import image_ids_pending, product_ids_text_pending
from search.services.indexing import images_embed, product_texts_embed
from search.services.models import embedding_model_activate, embedding_model_for
from shop.demo.catalog import demo_catalog_build
from shop.models import Product

DEMO_DIR = Path(settings.BASE_DIR) / "search" / "embeddings" / "weights" / "shop-clip-demo"


class Command(BaseCommand):
    help = "Evaluate text, photo and hybrid search quality on a held-out demo catalog."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="shop-clip-demo")
        parser.add_argument("--pretrained", default=f"local-dir:{DEMO_DIR}")
        parser.add_argument(
            "--per-pair",
            type=int,
            default=10,
            help="items per (colour, category) pair: 10 -> 1,100 products",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--photo-queries", type=int, default=200)
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--no-baseline", action="store_true")
        parser.add_argument("--json", dest="json_path", default=None)

    def handle(self, *args, **o):
        from shop.demo.fashion import CATEGORIES, PALETTE

        call_command("migrate", verbosity=0)  # a throwaway database starts empty
        count = o["per_pair"] * len(CATEGORIES) * len(PALETTE)
        if Product.objects.count() < count:
            with tqdm(total=count, desc="catalog (t10k)", unit="p") as bar:
                demo_catalog_build(
                    count=count, seed=o["seed"], split="t10k", balanced=True, progress=bar.update
                )
        specs = [("trained", ModelSpec(o["model"], o["pretrained"]))]
        tmp = Path(tempfile.mkdtemp(prefix="untrained-"))
        if not o["no_baseline"]:
            specs.append(("untrained", untrained_like(specs[0][1], tmp, seed=o["seed"])))
        report = {"catalog_products": Product.objects.count(), "k": o["k"], "models": {}}
        for label, spec in specs:
            started = time.perf_counter()
            self._index(spec)
            with tqdm(total=None, desc=f"queries ({label})", unit="q") as bar:
                metrics = evaluate(k=o["k"], photo_queries=o["photo_queries"], progress=bar.update)
            report["models"][label] = {
                "model": spec.name,
                "weights": spec.pretrained,
                "seconds": round(time.perf_counter() - started, 1),
                **metrics,
            }
        self._print(report)
        if o["json_path"]:
            Path(o["json_path"]).write_text(json.dumps(report, indent=2) + "\n")
            self.stdout.write(f"wrote {o['json_path']}")

    def _index(self, spec: ModelSpec) -> None:
        encoder = get_encoder(spec)
        model = embedding_model_for(encoder)
        pending = image_ids_pending(model=model)
        for i in tqdm(range(0, len(pending), 256), desc=f"index {spec.name}", unit="batch"):
            images_embed(image_ids=pending[i : i + 256], encoder=encoder)
        product_texts_embed(product_ids=product_ids_text_pending(model=model), encoder=encoder)
        embedding_model_activate(model)

    def _print(self, report: dict) -> None:
        labels = list(report["models"])
        names = [n for n in report["models"][labels[0]] if n not in ("model", "weights", "seconds")]
        width = max(len(n) for n in names)
        self.stdout.write(
            f"\nCatalog: {report['catalog_products']} held-out products (Fashion-MNIST t10k)\n"
        )
        self.stdout.write(
            f"| {'metric'.ljust(width)} | " + " | ".join(f"{lbl:>9}" for lbl in labels) + " |"
        )
        self.stdout.write(f"|{'-' * (width + 2)}|" + "|".join("-" * 11 for _ in labels) + "|")
        for n in names:
            vals = " | ".join(f"{report['models'][lbl][n]:9.3f}" for lbl in labels)
            self.stdout.write(f"| {n.ljust(width)} | {vals} |")
