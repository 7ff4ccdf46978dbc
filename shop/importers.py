"""Bulk catalog import from CSV or JSON Lines.

Each row is validated and its images fetched and decoded before anything is written; a bad
row is reported (line number + reason) and the good ones still import. Products are created
through ``shop.services.product_create``, so indexing is requested after commit like any
other write. Every product carries an idempotency key in ``Product.external_id`` (the row's
``sku``, else a hash of title + category + image references): a row whose key exists is
skipped, so re-running an interrupted import only adds what is missing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from shop import services
from shop.images import InvalidImage, max_upload_bytes, open_image
from shop.models import Category, Product

Format = Literal["csv", "jsonl"]

REQUIRED = ("title", "price", "category", "images")
OPTIONAL = ("description", "currency", "colour", "attributes", "in_stock", "sku")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
# Remote images come from suppliers' servers: a slow one must not stall the import forever.
HTTP_TIMEOUT_SECONDS = 20
_FETCH_THREADS = 8
_MAX_PRICE = Decimal("99999999.99")  # Product.price is DECIMAL(10, 2)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (unknown format, missing columns)."""


class RowInvalid(ValueError):
    """One row cannot be imported; ``str()`` is the reason shown to the person importing."""


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass(frozen=True)
class CatalogRow:
    line: int
    title: str
    price: Decimal
    category: str
    images: tuple[str, ...]
    description: str = ""
    currency: str = "EUR"
    colour: str = ""
    attributes: dict = field(default_factory=dict)
    in_stock: bool = True
    sku: str | None = None

    @property
    def key(self) -> str:
        """The idempotency key stored in ``Product.external_id``.

        Without a SKU the key hashes what identifies a product to a person: its title, its
        category and its pictures. Editing any of those in the file makes a new product.
        """
        if self.sku:
            return self.sku
        payload = json.dumps([self.title, self.category, list(self.images)], ensure_ascii=False)
        return "auto:" + hashlib.sha256(payload.encode()).hexdigest()[:40]


@dataclass
class ImportResult:
    created: int = 0
    existing: int = 0
    images: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Products the file describes that now exist (created now or by an earlier run).
    product_ids: list[int] = field(default_factory=list)


def catalog_format_guess(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFileError(
        f"Cannot tell the format of {path.name!r} from its extension: use .csv or .jsonl, "
        "or pass --format csv|jsonl."
    )


def catalog_rows_read(path: Path, fmt: Format) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, raw field dict) per record, or a RowError for a record that is unreadable."""
    if fmt == "csv":
        yield from _csv_rows(path)
    else:
        yield from _jsonl_rows(path)


def catalog_rows_count(path: Path, fmt: Format) -> int:
    return sum(1 for _ in catalog_rows_read(path, fmt))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    # utf-8-sig: spreadsheets often save CSV with a byte order mark.
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise ImportFileError(
                f"{path.name}: the header has no column {', '.join(missing)} "
                f"(columns needed: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})."
            )
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: report where it begins
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RowError(start, f"unreadable CSV: {exc}")
                continue
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield (
                    start,
                    RowError(
                        start,
                        f"expected {len(header)} fields as in the header, found {len(values)}",
                    ),
                )
                continue
            yield start, dict(zip(header, values, strict=True))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, RowError(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield number, RowError(number, "each line must be a JSON object")
                continue
            yield number, {str(k).strip().lower(): v for k, v in record.items()}


def catalog_row_parse(line: int, raw: dict[str, Any]) -> CatalogRow:
    """Validate one record; raises RowInvalid with the first problem found."""
    title = _text(raw, "title", max_length=200, required=True)
    category = _text(raw, "category", max_length=100, required=True)
    if not slugify(category):
        raise RowInvalid(f"category: {category!r} needs at least one letter or digit")
    currency = (_text(raw, "currency", max_length=3) or "EUR").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RowInvalid(f"currency: {currency!r} is not a 3-letter code such as EUR")
    sku = _text(raw, "sku", max_length=255) or None
    return CatalogRow(
        line=line,
        title=title,
        price=_price(raw.get("price")),
        category=category,
        images=_image_refs(raw.get("images")),
        description=_text(raw, "description", max_length=None),
        currency=currency,
        colour=_text(raw, "colour", max_length=40),
        attributes=_attributes(raw.get("attributes")),
        in_stock=_bool(raw.get("in_stock"), name="in_stock", default=True),
        sku=sku,
    )


def _text(raw: dict, name: str, *, max_length: int | None, required: bool = False) -> str:
    value = raw.get(name)
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # JSON SKUs are often numbers
    if not isinstance(value, str):
        raise RowInvalid(f"{name}: expected text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise RowInvalid(f"{name}: missing")
    if max_length is not None and len(value) > max_length:
        raise RowInvalid(f"{name}: longer than {max_length} characters")
    return value


def _price(value: Any) -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        raise RowInvalid("price: missing")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowInvalid(f"price: {value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise RowInvalid(f"price: {value!r} must be zero or more")
    if price.as_tuple().exponent < -2:
        raise RowInvalid(f"price: {value!r} has more than 2 decimal places")
    if price > _MAX_PRICE:
        raise RowInvalid(f"price: {value!r} is above {_MAX_PRICE}")
    return price


def _bool(value: Any, *, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowInvalid(f"{name}: {value!r} is not true/false (or yes/no, 1/0)")


def _attributes(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowInvalid(f"attributes: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise RowInvalid('attributes: must be a JSON object such as {"size": "M"}')
    return value


def _image_refs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        refs = value.split("|")  # CSV: several images in one cell
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        refs = value
    elif value is None:
        refs = []
    else:
        raise RowInvalid("images: expected a list of paths or URLs")
    refs = [r.strip() for r in refs if r.strip()]
    if not refs:
        raise RowInvalid("images: at least one image path or URL is needed")
    return tuple(refs)


def image_fetch(ref: str, *, base_dir: Path) -> tuple[str, bytes]:
    """Read one image (local path relative to ``base_dir``, or http(s) URL) and check it decodes.

    Returns (file name, bytes). Raises RowInvalid saying what is wrong with that image.
    """
    limit = max_upload_bytes()
    scheme = urlparse(ref).scheme.lower()
    if scheme in ("http", "https"):
        data = _download(ref, limit)
        name = PurePosixPath(urlparse(ref).path).name
    elif scheme and len(scheme) > 1:  # "C:\\..." parses as scheme "c": a Windows path
        raise RowInvalid(f"image {ref!r}: only local paths and http(s) URLs are supported")
    else:
        path = Path(ref).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise RowInvalid(f"image {ref!r}: no such file ({path})") from None
        except OSError as exc:
            raise RowInvalid(f"image {ref!r}: cannot be read ({exc.strerror})") from None
        name = path.name
    if len(data) > limit:
        raise RowInvalid(f"image {ref!r}: larger than {limit // (1024 * 1024)} MB")
    try:
        decoded = open_image(data)  # the same checks a search upload gets
    except InvalidImage as exc:
        raise RowInvalid(f"image {ref!r}: {exc}") from None
    if not PurePosixPath(name).suffix:
        name = f"{name or 'image'}.{(decoded.format or 'png').lower()}"
    return name, data


def _download(url: str, limit: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "visual-shop-import/1"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise RowInvalid(f"image {url!r}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RowInvalid(f"image {url!r}: download failed ({reason})") from None


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
    with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
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
