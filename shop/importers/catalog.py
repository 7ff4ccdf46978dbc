"""Running an import: chunks of validated rows written through the catalog services."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from shop import services
from shop.importers.rows import (
    FETCH_THREADS,
    CatalogRow,
    Format,
    RowError,
    RowInvalid,
    catalog_format_guess,
    catalog_row_parse,
    catalog_rows_read,
    image_fetch,
)
from shop.models import Category, Product


@dataclass
class ImportResult:
    created: int = 0
    existing: int = 0
    images: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Products the file describes that now exist (created now or by an earlier run).
    product_ids: list[int] = field(default_factory=list)


def catalog_import(
    *,
    path: Path,
    fmt: Format | None = None,
    images_root: Path | None = None,
    index: bool = False,
    chunk_size: int | None = None,
    on_error: Callable[[RowError], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a catalog file; see the module docstring for the contract.

    ``index=True`` embeds each chunk's images and texts in this process (with the configured
    model) instead of queueing them for workers. Relative image paths are resolved against
    ``images_root`` (default: the file's folder).
    """
    fmt = fmt or catalog_format_guess(path)
    base_dir = images_root or path.parent
    chunk_size = chunk_size or settings.CLIP_BATCH_SIZE * 4
    result = ImportResult()

    def reject(error: RowError) -> None:
        result.errors.append(error)
        if on_error:
            on_error(error)

    chunk: list[CatalogRow] = []
    categories: dict[str, Category] = {}
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        for line, raw in catalog_rows_read(path, fmt):
            if isinstance(raw, RowError):
                reject(raw)
                if progress:
                    progress(1)
                continue
            try:
                chunk.append(catalog_row_parse(line, raw))
            except RowInvalid as exc:
                reject(RowError(line, str(exc)))
                if progress:
                    progress(1)
                continue
            if len(chunk) >= chunk_size:
                _import_chunk(chunk, base_dir, pool, categories, index, result, reject)
                if progress:
                    progress(len(chunk))
                chunk = []
        if chunk:
            _import_chunk(chunk, base_dir, pool, categories, index, result, reject)
            if progress:
                progress(len(chunk))
    result.errors.sort(key=lambda e: e.line)  # image errors surface a chunk after parse errors
    return result


def _import_chunk(
    rows: list[CatalogRow],
    base_dir: Path,
    pool: ThreadPoolExecutor,
    categories: dict[str, Category],
    index: bool,
    result: ImportResult,
    reject: Callable[[RowError], None],
) -> None:
    existing = dict(
        Product.objects.filter(external_id__in=[r.key for r in rows]).values_list(
            "external_id", "id"
        )
    )
    touched = [existing[r.key] for r in rows if r.key in existing]
    result.existing += len(touched)
    todo = [r for r in rows if r.key not in existing]
    # Downloads and decodes overlap (I/O and PIL release the GIL); writes stay in this thread.
    fetched = pool.map(lambda row: _fetch_all(row, base_dir), todo)
    with services.catalog_bulk_write() as requested:
        for row, images in zip(todo, fetched, strict=True):
            if isinstance(images, RowInvalid):
                reject(RowError(row.line, str(images)))
                continue
            product_id = _create(row, images, categories, result, reject)
            if product_id is not None:
                touched.append(product_id)
        if index:
            # Embedded right here; what stays pending (say, the model failed) the sweep finds.
            services.catalog_index_now(product_ids=touched)
        else:
            requested.enqueue()  # full batches for the workers instead of one task per product
    result.product_ids.extend(touched)


def _fetch_all(row: CatalogRow, base_dir: Path) -> list[tuple[str, bytes]] | RowInvalid:
    try:
        return [image_fetch(ref, base_dir=base_dir) for ref in row.images]
    except RowInvalid as exc:
        return exc


def _create(
    row: CatalogRow,
    images: list[tuple[str, bytes]],
    categories: dict[str, Category],
    result: ImportResult,
    reject: Callable[[RowError], None],
) -> int | None:
    try:
        with transaction.atomic():
            category = categories.get(row.category)
            if category is None:
                category = services.category_get_or_create(name=row.category)
            product = services.product_create(
                title=row.title,
                price=row.price,
                category=category,
                description=row.description,
                currency=row.currency,
                colour=row.colour,
                attributes=row.attributes,
                in_stock=row.in_stock,
                images=[(name, io.BytesIO(data)) for name, data in images],
                external_id=row.key,
            )
    except IntegrityError as exc:
        # Another import (or an earlier row of this file) created the same key meanwhile.
        product_id = (
            Product.objects.filter(external_id=row.key).values_list("id", flat=True).first()
        )
        if product_id is None:
            reject(RowError(row.line, f"could not be saved: {exc}"))
            return None
        result.existing += 1
        return product_id
    categories[row.category] = category
    result.created += 1
    result.images += len(images)
    return product.pk
