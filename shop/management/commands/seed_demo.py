from django.core.management.base import BaseCommand
from tqdm import tqdm

from shop.demo.catalog import demo_catalog_build
from shop.models import Product


class Command(BaseCommand):
    help = "Create a demo catalog of colourised Fashion-MNIST product photos (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=300)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--split", choices=["train", "t10k"], default="t10k")
        parser.add_argument("--size", type=int, default=128, help="image side in pixels")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if products exist")

    def handle(self, *args, count, seed, split, size, if_empty, **options):
        if if_empty and Product.objects.exists():
            self.stdout.write(
                f"Catalog already has {Product.objects.count()} products; not seeding."
            )
            return
        with tqdm(total=count, desc="products", unit="p", disable=options["verbosity"] < 1) as bar:
            created = demo_catalog_build(
                count=count, seed=seed, split=split, size=size, progress=bar.update
            )
        self.stdout.write(
            self.style.SUCCESS(f"Created {created} products ({Product.objects.count()} in total).")
        )
