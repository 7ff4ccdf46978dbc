import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from shop.importers.catalog import catalog_import
from shop.importers.rows import ImportFileError, RowError, catalog_format_guess, catalog_rows_count


class Command(BaseCommand):
    help = (
        "Import products from CSV or JSON Lines (title, description, price, currency, category, "
        "colour, attributes, in_stock, images, sku). Bad rows are reported and skipped; rows "
        "imported before (same sku, or same title+category+images) are skipped, so re-running "
        "is safe."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=["csv", "jsonl"], default=None)
        parser.add_argument(
            "--images-root",
            type=Path,
            default=None,
            help="folder relative image paths start from (default: the file's folder)",
        )
        parser.add_argument("--report", type=Path, default=None, help="write bad rows to CSV")
        parser.add_argument(
            "--index",
            action="store_true",
            help="embed the imported products here instead of queueing them for workers",
        )
        parser.add_argument("--chunk-size", type=int, default=None)

    def handle(self, *args, path: Path, report: Path | None, index: bool, **options):
        if not path.is_file():
            raise CommandError(f"{path} does not exist.")
        try:
            fmt = options["format"] or catalog_format_guess(path)
            total = catalog_rows_count(path, fmt)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        quiet = options["verbosity"] < 1
        with tqdm(total=total, desc="rows", unit="row", disable=quiet) as bar:

            def on_error(error: RowError) -> None:
                # Clear the bar, print, redraw: errors scroll above an intact bar.
                with tqdm.external_write_mode():
                    self.stdout.write(f"line {error.line}: {error.reason}")

            try:
                result = catalog_import(
                    path=path,
                    fmt=fmt,
                    images_root=options["images_root"],
                    index=index,
                    chunk_size=options["chunk_size"],
                    on_error=on_error,
                    progress=bar.update,
                )
            except ImportFileError as exc:
                raise CommandError(str(exc)) from None
        if report is not None:
            with report.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["line", "reason"])
                writer.writerows((e.line, e.reason) for e in result.errors)
        summary = (
            f"Imported {result.created} products ({result.images} images); "
            f"{result.existing} already imported; {len(result.errors)} rows rejected."
        )
        if index:
            summary += " Embedded inline."
        style = self.style.WARNING if result.errors else self.style.SUCCESS
        self.stdout.write(style(summary))
        if report is not None and result.errors:
            self.stdout.write(f"Rejected rows written to {report}.")
